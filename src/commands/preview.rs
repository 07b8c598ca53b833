use std::process::ExitCode;

use crate::app::{App, PreviewFormat};
use crate::error::Error;

pub async fn run(app: &App, slug: &str, format: PreviewFormat) -> Result<ExitCode, Error> {
    // Preview what is in posts/ now, not what the last tick saw.
    let publishing = app.publishing();
    publishing.find(slug, chrono::Utc::now()).await?;
    super::write(&publishing.preview(slug, format).await?);
    Ok(ExitCode::SUCCESS)
}
