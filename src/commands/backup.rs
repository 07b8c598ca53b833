//! `posthorn backup FILE` and `posthorn restore FILE`.

use std::path::Path;
use std::process::ExitCode;

use super::Output;
use crate::app::{App, TableRows};
use crate::error::Error;

pub async fn backup(app: &App, out: &Output, file: &Path) -> Result<ExitCode, Error> {
    let report = app.backups().backup(file).await?;
    out.print(&report, || {
        format!(
            "backed up {} rows from {} into {} ({}), as the database was at {}\n{}",
            report.rows,
            report.engine,
            report.file.display(),
            size(report.bytes),
            report.taken_at.to_rfc3339(),
            tables(&report.tables)
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// The file has been checked whole before the database was opened.
pub async fn restore(app: &App, out: &Output, file: &Path) -> Result<ExitCode, Error> {
    let report = app.backups().restore(file).await?;
    out.print(&report, || {
        let mut text = format!(
            "restored {} rows from {} (a {} database as it was at {}) into {}\n{}",
            report.rows,
            report.file.display(),
            report.from_engine,
            report.taken_at.to_rfc3339(),
            report.into_engine,
            tables(&report.tables)
        );
        if report.taken_back > 0 {
            text.push_str(&format!(
                "{} deliveries were being sent when the backup was taken; whether they left is \
                 unknown, so they will be sent again at the next tick\n",
                report.taken_back
            ));
        }
        text
    });
    Ok(ExitCode::SUCCESS)
}

fn tables(tables: &[TableRows]) -> String {
    let rows: Vec<Vec<String>> = tables
        .iter()
        .filter(|t| t.rows > 0)
        .map(|t| vec![t.table.clone(), t.rows.to_string()])
        .collect();
    super::table(&["table", "rows"], &rows)
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}
