use std::collections::HashMap;
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
            if out.json {
                println!("[");
            }
            let mut first = true;
            loop {
                let page = app.reports().subscribers_page(status, after, 1000).await?;
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
                            s.created_at
                                .with_timezone(&tz)
                                .format("%Y-%m-%d %H:%M")
                                .to_string(),
                        ]);
                    }
                }
                if !out.json {
                    print!("{}", table(&["email", "name", "status", "since"], &rows));
                    rows.clear();
                }
            }
            if out.json {
                println!("]");
            }
        }
        SubscribersCommand::Import { file } => import(app, out, &file).await?,
        SubscribersCommand::Export => {
            let mut writer = csv::Writer::from_writer(std::io::stdout());
            let csv_err = |e: csv::Error| Error::Invalid(format!("writing CSV: {e}"));
            writer
                .write_record(["email", "name", "status", "created_at"])
                .map_err(csv_err)?;
            let mut after = 0;
            loop {
                let page = app.reports().subscribers_page(None, after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                for s in &page {
                    writer
                        .write_record([
                            s.email.as_str(),
                            &s.name,
                            s.status.as_str(),
                            &s.created_at.to_rfc3339(),
                        ])
                        .map_err(csv_err)?;
                }
            }
            writer.flush().map_err(|e| Error::io("stdout", e))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct Rejected {
    row: usize,
    value: String,
    reason: String,
}

async fn import(app: &App, out: &Output, file: &std::path::Path) -> Result<(), Error> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| Error::Invalid(format!("{}: {e}", file.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::Invalid(format!("{}: {e}", file.display())))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let email_col = column("email").ok_or_else(|| {
        Error::Invalid(format!(
            "{}: no `email` column in the header row",
            file.display()
        ))
    })?;
    let name_col = column("name");

    let mut rejected = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut batch: Vec<(usize, EmailAddress, String)> = Vec::new();
    let (mut added, mut existing) = (0u64, 0u64);
    let now = Utc::now();
    // Row 1 is the header, so the first record is row 2, as a spreadsheet shows it.
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rejected.push(Rejected {
                    row,
                    value: String::new(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let raw = record.get(email_col).unwrap_or("").to_string();
        let email = match EmailAddress::parse(&raw) {
            Ok(e) => e,
            Err(reason) => {
                rejected.push(Rejected {
                    row,
                    value: raw,
                    reason: format!("invalid address: {reason}"),
                });
                continue;
            }
        };
        if let Some(first) = seen.get(&email.key()) {
            rejected.push(Rejected {
                row,
                value: raw,
                reason: format!("duplicate of row {first}"),
            });
            continue;
        }
        seen.insert(email.key(), row);
        let name = one_line(name_col.and_then(|c| record.get(c)).unwrap_or(""));
        batch.push((row, email, name));
        if batch.len() == 1000 {
            let (a, e) = flush(app, &mut batch, now).await?;
            added += a;
            existing += e;
        }
    }
    let (a, e) = flush(app, &mut batch, now).await?;
    added += a;
    existing += e;

    let summary = serde_json::json!({
        "added": added, "already_present": existing, "rejected": rejected,
    });
    out.print(&summary, || {
        let mut s = format!(
            "imported {added}, already present {existing}, rejected {}\n",
            rejected.len()
        );
        for r in &rejected {
            s.push_str(&format!("  row {}: {} ({})\n", r.row, r.reason, r.value));
        }
        s
    });
    Ok(())
}

async fn flush(
    app: &App,
    batch: &mut Vec<(usize, EmailAddress, String)>,
    now: chrono::DateTime<Utc>,
) -> Result<(u64, u64), Error> {
    let rows: Vec<(EmailAddress, String)> = batch.drain(..).map(|(_, e, n)| (e, n)).collect();
    app.subscriptions().import(&rows, now).await
}
