//! `posthorn bounces ingest|parse|list`.

mod list;
mod parse;

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use super::Output;
use crate::app::App;
use crate::bounces::MAX_REPORT_BYTES;
use crate::config::Config;
use crate::domain::ReportSource;
use crate::error::Error;

/// sysexits.h: the input was not mail; do not try again.
pub const EX_DATAERR: u8 = 65;
/// sysexits.h: could not record it now; the MTA keeps the message and retries.
pub const EX_TEMPFAIL: u8 = 75;

/// Reads FILE, or standard input, up to the size a report may have.
fn read_input(file: Option<&Path>) -> Result<Vec<u8>, Error> {
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

pub use list::list;
pub use parse::parse;

/// `bounces ingest`: 0 when recorded or safely ignored, 75 when the database
/// could not take it (the MTA retries), 65 when the input is not mail at all.
pub async fn ingest(config: &Path, file: Option<&Path>, out: &Output) -> Result<ExitCode, Error> {
    // An MTA's pipe: a database that is down means "keep it and try again".
    let config = Config::load(config)?;
    let raw = read_input(file)?;
    let app = match App::open(config).await {
        Ok(app) => app,
        Err(e) => return Ok(tempfail(&e)),
    };
    let code = record(&app, out, &raw).await;
    app.close().await;
    Ok(code)
}

async fn record(app: &App, out: &Output, raw: &[u8]) -> ExitCode {
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
fn tempfail(e: &Error) -> ExitCode {
    eprintln!(
        "error: the report could not be recorded now; the mail system keeps it and retries: {}",
        crate::error::chain(e)
    );
    ExitCode::from(EX_TEMPFAIL)
}
