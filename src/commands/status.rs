use std::process::ExitCode;

use super::{table, Output};
use crate::app::App;
use crate::domain::DeliveryStatus;
use crate::error::Error;
use crate::store::COMPLAINT_RATE_LIMIT;

pub async fn run(app: &App, out: &Output, slug: Option<&str>) -> Result<ExitCode, Error> {
    let statuses = app.ledger().issue_statuses(slug).await?;
    out.print(&statuses, || {
        if statuses.is_empty() {
            return "no issues yet".to_string();
        }
        let tz = app.config().site.timezone;
        let mut header = vec!["issue", "kind", "created", "total"];
        header.extend(DeliveryStatus::ALL.iter().map(|s| s.as_str()));
        header.push("complaints");
        let rows: Vec<Vec<String>> = statuses
            .iter()
            .map(|s| {
                let mut row = vec![
                    s.key.clone(),
                    s.kind.to_string(),
                    s.created_at
                        .with_timezone(&tz)
                        .format("%Y-%m-%d %H:%M")
                        .to_string(),
                    s.total.to_string(),
                ];
                row.extend(
                    DeliveryStatus::ALL
                        .iter()
                        .map(|st| s.counts.get(st).copied().unwrap_or(0).to_string()),
                );
                let over = if s.complaint_rate > COMPLAINT_RATE_LIMIT { " (over)" } else { "" };
                row.push(format!("{:.2} %{over}", s.complaint_rate));
                row
            })
            .collect();
        let mut text = table(&header, &rows);
        let relay_rows: Vec<Vec<String>> = statuses
            .iter()
            .flat_map(|s| {
                s.by_relay.iter().map(move |(relay, counts)| {
                    let mut row = vec![s.key.clone(), relay.clone()];
                    row.extend(
                        DeliveryStatus::ALL
                            .iter()
                            .map(|st| counts.get(st).copied().unwrap_or(0).to_string()),
                    );
                    row
                })
            })
            .collect();
        if !relay_rows.is_empty() {
            let mut header = vec!["issue", "relay"];
            header.extend(DeliveryStatus::ALL.iter().map(|s| s.as_str()));
            text.push_str("\nby relay\n");
            text.push_str(&table(&header, &relay_rows));
        }
        text.push_str(&format!(
            "complaints: complained / (sent + bounced + complained); Gmail and Yahoo want it below {COMPLAINT_RATE_LIMIT} %\n"
        ));
        text
    });
    Ok(ExitCode::SUCCESS)
}
