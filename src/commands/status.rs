use std::process::ExitCode;

use super::{table, Output};
use crate::app::App;
use crate::domain::DeliveryStatus;
use crate::error::Error;

pub async fn run(app: &App, out: &Output, slug: Option<&str>) -> Result<ExitCode, Error> {
    let statuses = app.reports().issue_statuses(slug).await?;
    out.print(&statuses, || {
        if statuses.is_empty() {
            return "no issues yet".to_string();
        }
        let tz = app.config().site.timezone;
        let mut header = vec!["slug", "created", "total"];
        header.extend(DeliveryStatus::ALL.iter().map(|s| s.as_str()));
        let rows: Vec<Vec<String>> = statuses
            .iter()
            .map(|s| {
                let mut row = vec![
                    s.slug.clone(),
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
                row
            })
            .collect();
        table(&header, &rows)
    });
    Ok(ExitCode::SUCCESS)
}
