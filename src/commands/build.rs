use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;

use super::Output;
use crate::app::App;
use crate::error::Error;
use crate::site::Page;

/// Writes the site into `out` (default `public/`). The folder is posthorn's: it is
/// built aside and swapped in whole, so a removed post leaves no stale page behind.
/// When none of its inputs changed since the last build (every file under
/// `posts/` and the templates folder by size and time, the settings, the posts
/// live now, this version of posthorn), nothing is read or written.
pub async fn run(app: &App, out: &Output, dir: Option<PathBuf>) -> Result<ExitCode, Error> {
    let now = Utc::now();
    let target = dir.unwrap_or_else(|| app.config().path(Path::new("public")));
    let manifest = sibling(&target, "inputs");
    let before = inputs(app, now).await?;
    if target.is_dir()
        && std::fs::read_to_string(&manifest).ok().as_deref() == Some(before.as_str())
    {
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
    // What this build was made from, read again now that the posts are stored.
    let after = inputs(app, now).await?;
    std::fs::write(&manifest, after).map_err(|e| Error::io(&manifest, e))?;
    out.print(
        &serde_json::json!({ "out": target, "files": written, "posts": snapshot.posts.len(), "errors": sync.errors.len() }),
        || format!("wrote {written} files ({} posts) to {}", snapshot.posts.len(), target.display()),
    );
    Ok(ExitCode::SUCCESS)
}

/// A digest of everything a build reads: files by path, size and modification
/// time (not their bytes: reading 10,000 posts is the cost being saved), the
/// config, the posts live at `now` as stored, and posthorn's version.
async fn inputs(app: &App, now: chrono::DateTime<Utc>) -> Result<String, Error> {
    use sha2::{Digest, Sha256};
    let config = app.config();
    let mut digest = Sha256::new();
    digest.update(env!("CARGO_PKG_VERSION").as_bytes());
    digest.update(app.site().version(now).await?.as_bytes());
    // The effective settings, file and environment alike.
    digest.update(format!("{config:?}").as_bytes());
    for dir in [
        config.path(&config.posts.dir),
        config.path(&config.site.templates_dir),
    ] {
        let mut files = Vec::new();
        if dir.is_dir() {
            crate::posts::walk(&dir, &mut |path| files.push(stat(path)))?;
        }
        files.sort();
        for f in files {
            digest.update(f.as_bytes());
        }
    }
    Ok(crate::domain::hex(&digest.finalize()))
}

/// `path size mtime` of one file (all zero when it cannot be read).
fn stat(path: &Path) -> String {
    let (len, modified) = std::fs::metadata(path)
        .map(|m| {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            (m.len(), modified)
        })
        .unwrap_or((0, 0));
    format!("{}\0{len}\0{modified}\n", path.display())
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
