use std::process::ExitCode;

use super::{table, Output};
use crate::app::App;
use crate::error::Error;

pub async fn run(app: &App, out: &Output) -> Result<ExitCode, Error> {
    let sources = app.ledger().sources().await?;
    out.print(&sources, || {
        if sources.is_empty() {
            return match &app.config().posts.feed {
                Some(url) => {
                    format!("{url} has not been fetched yet (it is, at the next `posthorn check`)")
                }
                None => "no upstream feed ([posts] feed is not set)".into(),
            };
        }
        let tz = app.config().site.timezone;
        let rows: Vec<Vec<String>> = sources
            .iter()
            .map(|s| {
                vec![
                    s.url.clone(),
                    s.last_fetch_at
                        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| "never".into()),
                    match (&s.last_status, &s.last_error) {
                        (Some(status), Some(error)) => format!("{status}: {error}"),
                        (Some(status), None) => status.to_string(),
                        _ => String::new(),
                    },
                    s.etag.clone().unwrap_or_default(),
                    s.entries.to_string(),
                    if s.fetch_url != s.url {
                        format!("moved to {}", s.fetch_url)
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        table(
            &["feed", "last fetch", "status", "etag", "entries", ""],
            &rows,
        )
    });
    Ok(ExitCode::SUCCESS)
}
