use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};

use super::Output;
use crate::app::{App, InProcess};
use crate::delivery::{DeliverySummary, Observer, Stop, Unobserved};
use crate::domain::EmailAddress;
use crate::error::Error;

/// The delivery engine's progress, drawn on the terminal.
struct Bar(ProgressBar);

impl Observer for Bar {
    fn started(&self, due: u64) {
        self.0.set_length(due);
    }

    fn recorded(&self, batch: &DeliverySummary) {
        self.0.inc(batch.total());
    }
}

pub async fn run(
    app: &App,
    out: &Output,
    slug: &str,
    to: Option<&str>,
    dry_run: bool,
    yes: bool,
) -> Result<ExitCode, Error> {
    let now = Utc::now();
    let publishing = app.publishing();
    if let Some(to) = to {
        let post = publishing.find(slug, now).await?;
        let to = EmailAddress::parse(to).map_err(|e| Error::Invalid(format!("--to: {e}")))?;
        if dry_run {
            out.print(
                &serde_json::json!({ "slug": slug, "test_copy_to": to }),
                || format!("would send a test copy of `{slug}` to {to}"),
            );
            return Ok(ExitCode::SUCCESS);
        }
        let reply = publishing.send_test_copy(&post, &to).await?;
        out.print(
            &serde_json::json!({ "slug": slug, "test_copy_to": to, "reply": reply }),
            || format!("test copy of `{slug}` sent to {to}: {reply}"),
        );
        return Ok(ExitCode::SUCCESS);
    }

    if dry_run || !yes {
        let post = publishing.find(slug, now).await?;
        let plan = publishing.plan(&post, now).await?;
        if dry_run {
            out.print(
                &serde_json::json!({ "slug": slug, "would_send": plan.new_recipients, "active_subscribers": plan.active_subscribers }),
                || {
                    format!(
                        "would send `{}` to {} of {} active subscribers (the others already have it)",
                        post.title, plan.new_recipients, plan.active_subscribers
                    )
                },
            );
            return Ok(ExitCode::SUCCESS);
        }
        if !confirmed(&post.title, plan.new_recipients)? {
            eprintln!("nothing sent");
            return Ok(ExitCode::SUCCESS);
        }
    }

    // `posts/` is read again: the file may have changed while the question waited.
    let enqueued = publishing.queue(slug, now, &InProcess).await?;
    let bar = (!out.json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} sent  {per_sec}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let observer: Arc<dyn Observer> = match &bar {
        Some(bar) => Arc::new(Bar(bar.clone())),
        None => Arc::new(Unobserved),
    };
    let report = publishing
        .deliver(enqueued.issue_id, now, observer, Stop::default())
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let queued = enqueued.queued;
    out.print(
        &serde_json::json!({ "slug": slug, "issue_id": enqueued.issue_id, "queued": queued, "deliveries": report }),
        || {
            format!(
                "`{slug}`: {} sent, {} retrying, {} failed, {} skipped, {} deferred ({queued} newly queued)",
                report.sent, report.retrying, report.failed, report.skipped, report.deferred
            )
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; refuses when no one is there to answer.
fn confirmed(title: &str, recipients: i64) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Invalid(
            "not a terminal, so no one can confirm: add --yes to send".into(),
        ));
    }
    eprint!("Send `{title}` to {recipients} subscribers? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("stdin", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
