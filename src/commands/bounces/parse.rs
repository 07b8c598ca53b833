//! `posthorn bounces parse FILE…`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::read_input;
use crate::app::Reader;
use crate::commands::{line, table, Output};
use crate::config::Config;
use crate::error::Error;

/// What each message says, without the database. The config is read when there
/// is one, for the VERP address and the Message-ID domain. Several files give
/// one JSON object per line with `--json`.
pub fn parse(config_path: &Path, files: &[PathBuf], out: &Output) -> Result<ExitCode, Error> {
    let reader = if config_path.exists() {
        Reader::new(Some(&Config::load(config_path)?))
    } else {
        Reader::new(None)
    };
    let mut code = ExitCode::SUCCESS;
    for file in files {
        if files.len() > 1 && !out.json {
            line(&format!("== {}", file.display()));
        }
        if let Err(e) = parse_one(file, &reader, out, files.len() > 1) {
            // One unreadable message does not stop the others.
            eprintln!("error: {}: {e}", file.display());
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn parse_one(file: &Path, reader: &Reader, out: &Output, many: bool) -> Result<(), Error> {
    let parsed = reader.read(&read_input(Some(file))?)?;
    if many && out.json {
        match serde_json::to_string(&parsed) {
            Ok(json) => line(&json),
            Err(e) => eprintln!("error: cannot write JSON: {e}"),
        }
        return Ok(());
    }
    out.print(&parsed, || {
        let report = &parsed.report;
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
                    r.reason.to_string(),
                    r.diagnostic.clone().unwrap_or_default(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            s.push_str(&table(
                &["RECIPIENT", "ACTION", "STATUS", "", "REASON", "DIAGNOSTIC"],
                &rows,
            ));
        }
        s
    });
    Ok(())
}
