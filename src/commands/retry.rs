use std::process::ExitCode;

use chrono::Utc;

use super::Output;
use crate::app::App;
use crate::error::Error;

pub async fn run(app: &App, out: &Output, slug: &str) -> Result<ExitCode, Error> {
    let queued = app.publishing().retry_failed(slug, Utc::now()).await?;
    out.print(&serde_json::json!({ "slug": slug, "queued": queued }), || {
        format!("{queued} failed deliveries of `{slug}` queued again; the next `posthorn check` (or scheduler tick) sends them")
    });
    Ok(ExitCode::SUCCESS)
}
