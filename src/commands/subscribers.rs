use std::process::ExitCode;

use chrono::Utc;

use super::line;
use super::{table, Output, SubscribersCommand};
use crate::app::{Added, App, ExportFormat, ImportSummary};
use crate::domain::{one_line, EmailAddress};
use crate::error::Error;

pub async fn run(app: &App, out: &Output, command: SubscribersCommand) -> Result<ExitCode, Error> {
    let now = Utc::now();
    match command {
        SubscribersCommand::Add { email, name } => {
            let email = EmailAddress::parse(&email).map_err(Error::Invalid)?;
            let name = one_line(name.as_deref().unwrap_or(""));
            let message = match app.subscriptions().add(&email, &name, now).await? {
                Added::New => format!("added {email}"),
                Added::AlreadyActive => format!("{email} is already subscribed"),
                Added::Reactivated => format!("{email} is active again"),
            };
            out.print(
                &serde_json::json!({ "email": email, "result": message }),
                || message.clone(),
            );
        }
        SubscribersCommand::Remove { email } => {
            let email = EmailAddress::parse(&email).map_err(Error::Invalid)?;
            app.subscriptions().remove(&email, now).await?;
            out.print(
                &serde_json::json!({ "email": email, "status": "unsubscribed" }),
                || format!("{email} unsubscribed; their waiting deliveries are skipped"),
            );
        }
        SubscribersCommand::List { status } => {
            // Page through, so a large list is never held in memory at once.
            let mut after = 0;
            let mut rows = Vec::new();
            let tz = app.config().site.timezone;
            let default = app.config().schedule.mode;
            if out.json {
                line("[");
            }
            let mut first = true;
            loop {
                let page = app.ledger().subscribers(None, status, after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                for s in &page {
                    if out.json {
                        let row = serde_json::to_string(s).unwrap_or_default();
                        line(&format!("{}{row}", if first { "" } else { "," }));
                        first = false;
                    } else {
                        rows.push(vec![
                            s.email.to_string(),
                            s.name.clone(),
                            s.status.to_string(),
                            match s.preferences.frequency {
                                Some(f) => f.to_string(),
                                None => format!("{default} (site)"),
                            },
                            match &s.preferences.topics {
                                Some(t) => t.join(", "),
                                None => "all".into(),
                            },
                            s.created_at
                                .with_timezone(&tz)
                                .format("%Y-%m-%d %H:%M")
                                .to_string(),
                        ]);
                    }
                }
                if !out.json {
                    let text = table(
                        &["email", "name", "status", "frequency", "topics", "since"],
                        &rows,
                    );
                    line(text.trim_end());
                    rows.clear();
                }
            }
            if out.json {
                line("]");
            }
        }
        SubscribersCommand::Import { files, from } => {
            for file in &files {
                import(app, out, file, from).await?;
            }
        }
        SubscribersCommand::Forget { email } => {
            let email = EmailAddress::parse(&email).map_err(Error::Invalid)?;
            let forgotten = app.subscriptions().forget(&email, now).await?;
            out.print(&forgotten, || {
                if !forgotten.was_subscriber {
                    return format!(
                        "no subscriber has {email}; it is remembered as a keyed hash, so that no import adds it"
                    );
                }
                let mut text = format!(
                    "forgotten: the address, name and choices are gone; deliveries kept in the counts, linked to nobody: {}; outbox files removed: {}",
                    forgotten.deliveries_kept, forgotten.outbox_files_removed
                );
                if forgotten.old_copies_left {
                    text.push_str(
                        "\nwarning: another reader of the database (a backup running now?) kept its \
                         write-ahead log from being emptied, so old copies of the person's rows are \
                         still in the file; run this command again once that reader has ended",
                    );
                }
                text
            });
        }
        SubscribersCommand::Export => {
            app.subscriptions()
                .export_csv(std::io::stdout().lock())
                .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(
    app: &App,
    out: &Output,
    file: &std::path::Path,
    from: Option<ExportFormat>,
) -> Result<(), Error> {
    let reader = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
    let name = file.display().to_string();
    let report = app
        .subscriptions()
        .import_file(reader, &name, from, Utc::now())
        .await?;
    out.print(&report, || report_text(&name, &report));
    Ok(())
}

/// An import's report as the author reads it: counts per status, then every
/// rejected row.
fn report_text(name: &str, report: &ImportSummary) -> String {
    let format = report.format.map(|f| f.to_string()).unwrap_or_default();
    let s = &report.statuses;
    let mut text = format!(
        "{name} ({format} export)\n  added {}: active {}, pending {}, unsubscribed {}, bounced {}\n  already present, unchanged: {}\n",
        report.added, s.active, s.pending, s.unsubscribed, s.bounced, report.already_present
    );
    let left = &report.left_now;
    if left.total() > 0 {
        text.push_str(&format!(
            "  left, as the file says (were active or pending): unsubscribed {}, bounced {}\n",
            left.unsubscribed, left.bounced
        ));
    }
    let kept = &report.kept_away;
    if kept.total() > 0 {
        text.push_str(&format!(
            "  not made active again (posthorn has them as gone): unsubscribed {}, bounced {}, complained {}, forgotten {}\n",
            kept.unsubscribed, kept.bounced, kept.complained, kept.forgotten
        ));
    }
    if report.forgotten_unrecognised > 0 {
        text.push_str(&format!(
            "  warning: {} people were forgotten before posthorn kept a keyed hash of each address, and an import cannot recognise them; run `posthorn subscribers forget ADDRESS` for each, from your own record of erasures\n",
            report.forgotten_unrecognised
        ));
    }
    text.push_str(&format!("  rejected: {}", report.rejected_total));
    if report.rejected_total > report.rejected.len() as u64 {
        text.push_str(&format!(" (the first {} listed)", report.rejected.len()));
    }
    text.push('\n');
    for r in &report.rejected {
        let file = r
            .file
            .as_deref()
            .map(|f| format!("{f} "))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {file}row {}: {} ({})\n",
            r.row, r.reason, r.value
        ));
    }
    text
}
