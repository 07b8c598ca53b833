//! `posthorn bounces list`.

use std::process::ExitCode;

use crate::app::App;
use crate::commands::{table, Output};
use crate::error::Error;

/// Bounce and complaint events, newest first, matched or not.
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
                    r.reason.clone().unwrap_or_default(),
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
                "REASON",
                "EFFECT",
                "DIAGNOSTIC",
            ],
            &table_rows,
        )
    });
    Ok(ExitCode::SUCCESS)
}
