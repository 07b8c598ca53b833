use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;

use super::Output;
use crate::app::App;
use crate::error::Error;
use crate::site::Page;

/// Writes the site into `out` (default `public/`). The folder is posthorn's: it is
/// built aside and swapped in whole, so a removed post leaves no stale page behind.
pub async fn run(app: &App, out: &Output, dir: Option<PathBuf>) -> Result<ExitCode, Error> {
    let now = Utc::now();
    let sync = app.tick().sync_posts(now).await?;
    for error in &sync.errors {
        eprintln!("warning: {error}");
    }
    let target = dir.unwrap_or_else(|| app.config().path(Path::new("public")));
    let staging = sibling(&target, "building");
    let old = sibling(&target, "old");
    for stale in [&staging, &old] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).map_err(|e| Error::io(stale, e))?;
        }
    }
    let site = app.site();
    let snapshot = site.snapshot(now).await?;
    let mut written = 0usize;
    for page in &snapshot.pages {
        write(&staging, page)?;
        written += 1;
    }
    for post in &snapshot.posts {
        write(&staging, &site.post_page(post)?)?;
        written += 1;
        // The post's own images and files, where its relative links point.
        if let Some(dir) = site.assets_dir(post) {
            for (relative, file) in crate::posts::assets(&dir)? {
                let target = staging
                    .join("posts")
                    .join(post.slug.as_str())
                    .join(&relative);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                std::fs::copy(&file, &target).map_err(|e| Error::io(&file, e))?;
                written += 1;
            }
        }
    }
    if target.exists() {
        std::fs::rename(&target, &old).map_err(|e| Error::io(&target, e))?;
    }
    std::fs::rename(&staging, &target).map_err(|e| Error::io(&staging, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    out.print(
        &serde_json::json!({ "out": target, "files": written, "posts": snapshot.posts.len(), "errors": sync.errors.len() }),
        || format!("wrote {written} files ({} posts) to {}", snapshot.posts.len(), target.display()),
    );
    Ok(ExitCode::SUCCESS)
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "public".into());
    dir.with_file_name(format!(".{name}.{suffix}"))
}

fn write(root: &Path, page: &Page) -> Result<(), Error> {
    let path = root.join(&page.path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(&path, &page.body).map_err(|e| Error::io(&path, e))
}
