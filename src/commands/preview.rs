use std::process::ExitCode;

use crate::app::{App, PreviewFormat};
use crate::error::Error;

pub async fn run(app: &App, slug: &str, format: PreviewFormat) -> Result<ExitCode, Error> {
    print!("{}", app.preview(slug, format).await?);
    Ok(ExitCode::SUCCESS)
}
