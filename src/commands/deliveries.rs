use std::process::ExitCode;

use super::{table, Output};
use crate::app::App;
use crate::domain::DeliveryStatus;
use crate::error::Error;

pub async fn run(
    app: &App,
    out: &Output,
    slug: &str,
    status: Option<DeliveryStatus>,
) -> Result<ExitCode, Error> {
    let rows = app.ledger().delivery_log(slug, status).await?;
    out.print(&rows, || {
        let tz = app.config().site.timezone;
        let time = |t: chrono::DateTime<chrono::Utc>| {
            t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
        };
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.email.clone(),
                    r.status.to_string(),
                    r.attempts.to_string(),
                    r.sent_at.map(time).unwrap_or_else(|| time(r.updated_at)),
                    r.next_attempt_at.map(time).unwrap_or_default(),
                    r.relay.clone().unwrap_or_default(),
                    r.smtp_reply.clone().unwrap_or_default(),
                    r.last_error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(
            &[
                "email",
                "status",
                "attempts",
                "time",
                "next attempt",
                "relay",
                "smtp reply",
                "last error",
            ],
            &rows,
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// `deliveries SLUG --history EMAIL`: every attempt and every later report.
pub async fn history(app: &App, out: &Output, slug: &str, email: &str) -> Result<ExitCode, Error> {
    let events = app.bounces().history(slug, email).await?;
    out.print(&events, || {
        let tz = app.config().site.timezone;
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    e.at.with_timezone(&tz)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string(),
                    match &e.relay {
                        Some(relay) => format!("{} via {relay}", e.kind),
                        None => e.kind.clone(),
                    },
                    match &e.reason {
                        Some(reason) => format!("{} ({reason})", e.outcome),
                        None => e.outcome.clone(),
                    },
                    e.detail.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(&["time", "event", "outcome", "reply or report"], &rows)
    });
    Ok(ExitCode::SUCCESS)
}
