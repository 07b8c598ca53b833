//! `posthorn bounces ingest|parse|list`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::{table, Output};
use crate::app::{self, App};
use crate::bounces::{Report, Tracks, MAX_REPORT_BYTES};
use crate::config::Config;
use crate::domain::ReportSource;
use crate::error::Error;

/// sysexits.h: the input was not mail; do not try again.
pub const EX_DATAERR: u8 = 65;
/// sysexits.h: could not record it now; the MTA keeps the message and retries.
pub const EX_TEMPFAIL: u8 = 75;

/// Reads FILE, or standard input, up to the size a report may have.
pub fn read_input(file: Option<&Path>) -> Result<Vec<u8>, Error> {
    let mut raw = Vec::new();
    let limit = MAX_REPORT_BYTES as u64 + 1;
    match file {
        Some(path) => std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut raw))
            .map_err(|e| Error::io(path, e))?,
        None => std::io::stdin()
            .take(limit)
            .read_to_end(&mut raw)
            .map_err(|e| Error::io("<standard input>", e))?,
    };
    Ok(raw)
}

/// `bounces ingest`: 0 when recorded or safely ignored, 75 when the database
/// could not take it (the MTA retries), 65 when the input is not mail at all.
pub async fn ingest(app: &App, out: &Output, raw: &[u8]) -> ExitCode {
    match app.bounces().ingest(raw, ReportSource::Mail).await {
        Ok(done) => {
            out.print(&done, || {
                if done.duplicate {
                    return "this report was recorded before; nothing changed".into();
                }
                if done.recorded.is_empty() {
                    return format!("{}: not a bounce or complaint; left alone", done.kind);
                }
                done.recorded
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {}: {}",
                            done.kind,
                            r.address.as_deref().unwrap_or("(no address)"),
                            r.effect
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            ExitCode::SUCCESS
        }
        Err(Error::Invalid(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(EX_DATAERR)
        }
        Err(e) => tempfail(&e),
    }
}

/// Says why, and asks the MTA to keep the message and try again.
pub fn tempfail(e: &Error) -> ExitCode {
    eprintln!(
        "error: the report could not be recorded now; the mail system keeps it and retries: {}",
        crate::error::chain(e)
    );
    ExitCode::from(EX_TEMPFAIL)
}

#[derive(Serialize)]
struct Parsed<'a> {
    #[serde(flatten)]
    report: &'a Report,
    delivery: Option<Claimed>,
}

#[derive(Serialize)]
struct Claimed {
    issue: i64,
    subscriber: i64,
    via: &'static str,
}

/// `bounces parse FILE…`: what each message says, without the database. The
/// config is read when there is one, for the VERP address and the Message-ID
/// domain. Several files give one JSON object per line with `--json`.
pub fn parse(config_path: &Path, files: &[PathBuf], out: &Output) -> Result<ExitCode, Error> {
    let tracks = if config_path.exists() {
        app::tracks(&Config::load(config_path)?)
    } else {
        Default::default()
    };
    let mut code = ExitCode::SUCCESS;
    for file in files {
        if files.len() > 1 && !out.json {
            println!("== {}", file.display());
        }
        if let Err(e) = parse_one(file, &tracks, out, files.len() > 1) {
            // One unreadable message does not stop the others.
            eprintln!("error: {}: {e}", file.display());
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn parse_one(file: &Path, tracks: &Tracks, out: &Output, many: bool) -> Result<(), Error> {
    let raw = read_input(Some(file))?;
    let report = app::read(&raw, tracks)?;
    let delivery = report
        .verp_tokens
        .iter()
        .find_map(|t| crate::tokens::verp_claims(t))
        .map(|(issue, subscriber)| Claimed {
            issue,
            subscriber,
            via: "verp",
        })
        .or_else(|| {
            report.message_ids.first().map(|m| Claimed {
                issue: m.issue,
                subscriber: m.subscriber,
                via: "message-id",
            })
        });
    let parsed = Parsed {
        report: &report,
        delivery,
    };
    if many && out.json {
        match serde_json::to_string(&parsed) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("error: cannot write JSON: {e}"),
        }
        return Ok(());
    }
    out.print(&parsed, || {
        let mut s = format!("kind: {}\n", report.kind);
        if let Some(f) = &report.feedback_type {
            s.push_str(&format!("feedback type: {f}\n"));
        }
        if let Some(d) = &parsed.delivery {
            s.push_str(&format!(
                "delivery: issue {} subscriber {} (by {}; checked when ingested)\n",
                d.issue, d.subscriber, d.via
            ));
        }
        let rows: Vec<Vec<String>> = report
            .recipients
            .iter()
            .map(|r| {
                vec![
                    r.address
                        .as_ref()
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "?".into()),
                    r.action.to_string(),
                    r.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if r.hard { "hard" } else { "soft" }.into(),
                    r.diagnostic.clone().unwrap_or_default(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            s.push_str(&table(
                &["RECIPIENT", "ACTION", "STATUS", "", "DIAGNOSTIC"],
                &rows,
            ));
        }
        s
    });
    Ok(())
}

pub async fn list(app: &App, out: &Output) -> Result<ExitCode, Error> {
    let rows = app.bounces().list(1000).await?;
    out.print(&rows, || {
        if rows.is_empty() {
            return "no bounces or complaints yet".into();
        }
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.received_at.format("%Y-%m-%d %H:%M").to_string(),
                    r.kind.clone(),
                    r.recipient
                        .clone()
                        .or_else(|| r.subscriber.clone())
                        .unwrap_or_else(|| "?".into()),
                    r.issue.clone().unwrap_or_else(|| "-".into()),
                    r.status.clone().unwrap_or_else(|| "-".into()),
                    match (r.kind.as_str(), r.hard) {
                        ("bounce", true) => "hard".into(),
                        ("bounce", false) => "soft".into(),
                        _ => r.feedback_type.clone().unwrap_or_default(),
                    },
                    r.effect.clone(),
                    r.diagnostic.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(
            &[
                "RECEIVED",
                "KIND",
                "SUBSCRIBER",
                "ISSUE",
                "STATUS",
                "",
                "EFFECT",
                "DIAGNOSTIC",
            ],
            &table_rows,
        )
    });
    Ok(ExitCode::SUCCESS)
}
