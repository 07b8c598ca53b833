//! `posthorn build`: the site as static files (see [`crate::site::Build`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;

use super::Output;
use crate::app::App;
use crate::error::Error;

/// Writes the site into `dir` (default `public/`); the folder is posthorn's.
pub async fn run(app: &App, out: &Output, dir: Option<PathBuf>) -> Result<ExitCode, Error> {
    let now = Utc::now();
    let target = dir.unwrap_or_else(|| app.config().path(Path::new("public")));
    let build = app.site().build(&target, now).await?;
    if build.is_current() {
        out.print(
            &serde_json::json!({ "out": target, "files": 0, "unchanged": true }),
            || {
                format!(
                    "{} is up to date: nothing changed since the last build",
                    target.display()
                )
            },
        );
        return Ok(ExitCode::SUCCESS);
    }
    let sync = app.tick().sync_posts(now).await?;
    for error in &sync.errors {
        eprintln!("warning: {error}");
    }
    let written = build.write().await?;
    out.print(
        &serde_json::json!({ "out": target, "files": written.files, "posts": written.posts, "errors": sync.errors.len() }),
        || format!("wrote {} files ({} posts) to {}", written.files, written.posts, target.display()),
    );
    Ok(ExitCode::SUCCESS)
}
