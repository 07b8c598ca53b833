use std::process::ExitCode;

use crate::app::{App, PreviewFormat};
use crate::error::Error;

pub async fn run(app: &App, slug: &str, format: PreviewFormat) -> Result<ExitCode, Error> {
    // Preview what is in posts/ now, not what the last tick saw.
    app.sync_posts(chrono::Utc::now()).await?;
    print!("{}", app.preview(slug, format).await?);
    Ok(ExitCode::SUCCESS)
}
