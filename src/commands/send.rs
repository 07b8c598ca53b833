use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};

use super::Output;
use crate::app::App;
use crate::delivery::{self, DeliverOptions};
use crate::domain::{EmailAddress, SubscriberStatus};
use crate::error::Error;

pub async fn run(
    app: &App,
    out: &Output,
    slug: &str,
    to: Option<&str>,
    dry_run: bool,
    yes: bool,
) -> Result<ExitCode, Error> {
    let now = Utc::now();
    // The author may send a post they just wrote, before any scheduler tick.
    app.sync_posts(now).await?;
    let post = app.post(slug).await?;

    if let Some(to) = to {
        let to = EmailAddress::parse(to).map_err(|e| Error::Invalid(format!("--to: {e}")))?;
        if dry_run {
            out.print(
                &serde_json::json!({ "slug": slug, "test_copy_to": to }),
                || format!("would send a test copy of `{slug}` to {to}"),
            );
            return Ok(ExitCode::SUCCESS);
        }
        let message = app.compose(&post, &to, true).await?;
        let reply = delivery::send_single(app, &message)
            .await
            .map_err(|e| Error::Email(format!("test copy to {to} not sent: {e:?}")))?;
        out.print(
            &serde_json::json!({ "slug": slug, "test_copy_to": to, "reply": reply }),
            || format!("test copy of `{slug}` sent to {to}: {reply}"),
        );
        return Ok(ExitCode::SUCCESS);
    }

    app.check_sendable(&post, now)?;
    let issue = app.store.issue_for_post(post.id).await?;
    let new_recipients = app
        .store
        .count_unqueued(issue.as_ref().map(|i| i.id))
        .await?;
    if dry_run {
        let active = app
            .store
            .count_subscribers(SubscriberStatus::Active)
            .await?;
        out.print(
            &serde_json::json!({ "slug": slug, "would_send": new_recipients, "active_subscribers": active }),
            || {
                format!(
                    "would send `{}` to {new_recipients} of {active} active subscribers (the others already have it)",
                    post.title
                )
            },
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Invalid(
                "not a terminal, so no one can confirm: add --yes to send".into(),
            ));
        }
        eprint!(
            "Send `{}` to {new_recipients} subscribers? [y/N] ",
            post.title
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Error::io("stdin", e))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing sent");
            return Ok(ExitCode::SUCCESS);
        }
    }

    let (issue, queued) = app.queue_post(&post, now).await?;
    let due = app.store.count_due(now, Some(issue.id)).await?;
    let progress = (!out.json && std::io::stderr().is_terminal() && due > 0).then(|| {
        let bar = ProgressBar::new(due as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} sent  {per_sec}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let report = delivery::deliver_due(
        app,
        now,
        DeliverOptions {
            issue_id: Some(issue.id),
            progress: progress.clone(),
            stop: None,
        },
    )
    .await?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    out.print(
        &serde_json::json!({ "slug": slug, "issue_id": issue.id, "queued": queued, "deliveries": report }),
        || {
            format!(
                "`{slug}`: {} sent, {} retrying, {} failed, {} skipped, {} deferred ({queued} newly queued)",
                report.sent, report.retrying, report.failed, report.skipped, report.deferred
            )
        },
    );
    Ok(ExitCode::SUCCESS)
}
