use std::process::ExitCode;

use chrono::Utc;

use super::{table, Output, SubscribersCommand};
use crate::app::{Added, App};
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
                println!("[");
            }
            let mut first = true;
            loop {
                let page = app.ledger().subscribers(None, status, after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                for s in &page {
                    if out.json {
                        let line = serde_json::to_string(s).unwrap_or_default();
                        println!("{}{line}", if first { "" } else { "," });
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
                    print!(
                        "{}",
                        table(
                            &["email", "name", "status", "frequency", "topics", "since"],
                            &rows
                        )
                    );
                    rows.clear();
                }
            }
            if out.json {
                println!("]");
            }
        }
        SubscribersCommand::Import { file } => import(app, out, &file).await?,
        SubscribersCommand::Forget { email } => {
            let email = EmailAddress::parse(&email).map_err(Error::Invalid)?;
            let forgotten = app.subscriptions().forget(&email, now).await?;
            out.print(&forgotten, || {
                format!(
                    "forgotten: the address, name and choices are gone; deliveries kept in the counts, linked to nobody: {}; outbox files removed: {}",
                    forgotten.deliveries_kept, forgotten.outbox_files_removed
                )
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

async fn import(app: &App, out: &Output, file: &std::path::Path) -> Result<(), Error> {
    let reader = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
    let report = app
        .subscriptions()
        .import_csv(reader, Utc::now())
        .await
        .map_err(|e| match e {
            // The file's fault names the file; a database failure stays one.
            Error::Invalid(why) => Error::Invalid(format!("{}: {why}", file.display())),
            e => e,
        })?;
    out.print(&report, || {
        let mut s = format!(
            "imported {}, already present {}, rejected {}\n",
            report.added,
            report.already_present,
            report.rejected.len()
        );
        for r in &report.rejected {
            s.push_str(&format!("  row {}: {} ({})\n", r.row, r.reason, r.value));
        }
        s
    });
    Ok(())
}
