//! The incremental build: writes the site into a folder that is posthorn's.
//!
//! When none of its inputs changed since the last build (every file under
//! `posts/` and the templates folder by size and time, the settings, the posts
//! live now, this version of posthorn), nothing is read or written. When only
//! posts changed, only their pages, the index and the feeds are written again.
//! Otherwise the site is built aside and swapped in whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Page, Site, Snapshot};
use crate::domain::Post;
use crate::error::Error;

/// A build of the site into one folder at one moment, its inputs read. The
/// caller asks [`Build::is_current`] before reading `posts/` into the store
/// (the cost being saved), then [`Build::write`].
pub struct Build<'a> {
    site: &'a Site,
    target: PathBuf,
    now: DateTime<Utc>,
    manifest: PathBuf,
    before: Inputs,
}

/// What [`Build::write`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub files: usize,
    /// The posts published at the build's moment.
    pub posts: usize,
}

impl Site {
    /// A build into `target` at `now`.
    pub async fn build(&self, target: &Path, now: DateTime<Utc>) -> Result<Build<'_>, Error> {
        Ok(Build {
            site: self,
            target: target.to_path_buf(),
            now,
            manifest: sibling(target, "inputs"),
            before: inputs(self, now).await?,
        })
    }
}

impl Build<'_> {
    /// Nothing the folder was built from changed since its last build.
    pub fn is_current(&self) -> bool {
        self.target.is_dir()
            && std::fs::read_to_string(&self.manifest).ok().as_deref()
                == Some(self.before.whole.as_str())
    }

    /// Writes the site as stored now: only what changed when the last build was
    /// made the same way, otherwise all of it. Read `posts/` into the store first.
    pub async fn write(self) -> Result<Written, Error> {
        let Build {
            site,
            target,
            now,
            manifest,
            before,
        } = self;
        let snapshot = site.snapshot(now).await?;
        let keys_file = sibling(&target, "pages");
        // The pages of the last build, when it was made with the same templates,
        // settings and posthorn: then only what changed is written again.
        let previous = target
            .is_dir()
            .then(|| std::fs::read_to_string(&keys_file).ok())
            .flatten()
            .and_then(|text| PageKeys::parse(&text, &before.rendering));
        let keys = PageKeys::of(site, &snapshot.posts, &before.rendering);
        // Until the build is done, the folder matches no manifest.
        for stale in [&manifest, &keys_file] {
            if stale.exists() {
                std::fs::remove_file(stale).map_err(|e| Error::io(stale, e))?;
            }
        }
        let files = match previous {
            Some(previous) => update(site, &snapshot, &target, &previous, &keys)?,
            None => rebuild(site, &snapshot, &target)?,
        };
        // What this build was made from, read again now that the posts are stored.
        let after = inputs(site, now).await?;
        std::fs::write(&keys_file, keys.render()).map_err(|e| Error::io(&keys_file, e))?;
        std::fs::write(&manifest, after.whole).map_err(|e| Error::io(&manifest, e))?;
        Ok(Written {
            files,
            posts: snapshot.posts.len(),
        })
    }
}

/// A whole build, aside in a staging folder swapped in at the end, so a removed
/// post leaves no stale page behind.
fn rebuild(site: &Site, snapshot: &Snapshot, target: &Path) -> Result<usize, Error> {
    let staging = sibling(target, "building");
    let old = sibling(target, "old");
    for stale in [&staging, &old] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).map_err(|e| Error::io(stale, e))?;
        }
    }
    for page in &snapshot.pages {
        write(&staging, page)?;
    }
    let posts: Vec<&Post> = snapshot.posts.iter().collect();
    let written = snapshot.pages.len() + write_posts(site, &staging, &posts)?;
    if target.exists() {
        std::fs::rename(target, &old).map_err(|e| Error::io(target, e))?;
    }
    std::fs::rename(&staging, target).map_err(|e| Error::io(&staging, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(written)
}

/// Brings the last build up to date in place: the feeds and the index, the posts
/// whose stored version or files changed, and no page of a post gone. The result
/// is byte for byte what [`rebuild`] writes.
fn update(
    site: &Site,
    snapshot: &Snapshot,
    target: &Path,
    previous: &PageKeys,
    keys: &PageKeys,
) -> Result<usize, Error> {
    for slug in previous.posts.keys() {
        if !keys.posts.contains_key(slug) {
            let dir = target.join("posts").join(slug);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            }
        }
    }
    for page in &snapshot.pages {
        write(target, page)?;
    }
    let changed: Vec<&Post> = snapshot
        .posts
        .iter()
        .filter(|p| previous.posts.get(p.slug.as_str()) != keys.posts.get(p.slug.as_str()))
        .collect();
    for post in &changed {
        // A post's files may have been removed or renamed: its folder is written anew.
        let dir = target.join("posts").join(post.slug.as_str());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
    }
    Ok(snapshot.pages.len() + write_posts(site, target, &changed)?)
}

/// Each post's page and files, on every core: creating thousands of folders is
/// mostly the file system's work, and it runs in parallel.
fn write_posts(site: &Site, root: &Path, posts: &[&Post]) -> Result<usize, Error> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = posts.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = posts
            .chunks(chunk)
            .map(|share| {
                scope.spawn(move || -> Result<usize, Error> {
                    let mut written = 0;
                    for post in share {
                        written += write_post(site, root, post)?;
                    }
                    Ok(written)
                })
            })
            .collect();
        workers.into_iter().try_fold(0, |sum, worker| {
            let written = worker
                .join()
                .map_err(|_| Error::Internal("a build thread stopped".into()))??;
            Ok(sum + written)
        })
    })
}

fn write_post(site: &Site, root: &Path, post: &Post) -> Result<usize, Error> {
    write(root, &site.post_page(post)?)?;
    let mut written = 1;
    // The post's own images and files, where its relative links point.
    if let Some(dir) = site.assets_dir(post) {
        for (relative, file) in crate::posts::assets(&dir)? {
            let target = root.join("posts").join(post.slug.as_str()).join(&relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::copy(&file, &target).map_err(|e| Error::io(&file, e))?;
            written += 1;
        }
    }
    Ok(written)
}

/// What each post's folder was made from, by slug, under one rendering digest
/// (templates, settings, posthorn's version): stored beside the output.
struct PageKeys {
    rendering: String,
    posts: HashMap<String, String>,
}

impl PageKeys {
    fn of(site: &Site, posts: &[Post], rendering: &str) -> PageKeys {
        let posts = posts
            .iter()
            .map(|p| {
                let mut key = format!(
                    "{}.{}",
                    p.synced_at.timestamp_millis(),
                    p.published_at.timestamp_millis()
                );
                if let Some(dir) = site.assets_dir(p) {
                    let mut files = Vec::new();
                    let _ = crate::posts::walk(&dir, &mut |path| files.push(stat(path)));
                    files.sort();
                    key.push('.');
                    key.push_str(&digest(files.iter().map(String::as_bytes)));
                }
                (p.slug.as_str().to_string(), key)
            })
            .collect();
        PageKeys {
            rendering: rendering.to_string(),
            posts,
        }
    }

    /// The keys of the last build if it was rendered the same way.
    fn parse(text: &str, rendering: &str) -> Option<PageKeys> {
        let mut lines = text.lines();
        if lines.next()? != rendering {
            return None;
        }
        let posts = lines
            .filter_map(|l| l.split_once(' '))
            .map(|(slug, key)| (slug.to_string(), key.to_string()))
            .collect();
        Some(PageKeys {
            rendering: rendering.to_string(),
            posts,
        })
    }

    fn render(&self) -> String {
        let mut out = format!("{}\n", self.rendering);
        for (slug, key) in &self.posts {
            out.push_str(&format!("{slug} {key}\n"));
        }
        out
    }
}

/// What a build is made from: `rendering` covers how pages are made (posthorn's
/// version, the settings, the templates), `whole` that and every post besides.
struct Inputs {
    rendering: String,
    whole: String,
}

fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for part in parts {
        digest.update(part);
    }
    crate::domain::hex(&digest.finalize())
}

/// Digests of everything a build reads: files by path, size and modification
/// time (not their bytes: reading 10,000 posts is the cost being saved), the
/// config, the posts live at `now` as stored, and posthorn's version.
async fn inputs(site: &Site, now: DateTime<Utc>) -> Result<Inputs, Error> {
    let config = &site.config;
    let tree = |dir: PathBuf| -> Result<Vec<String>, Error> {
        let mut files = Vec::new();
        if dir.is_dir() {
            crate::posts::walk(&dir, &mut |path| files.push(stat(path)))?;
        }
        files.sort();
        Ok(files)
    };
    let templates = tree(config.path(&config.site.templates_dir))?;
    // The effective settings, file and environment alike.
    let settings = format!("{config:?}");
    let rendering = digest(
        [env!("CARGO_PKG_VERSION").as_bytes(), settings.as_bytes()]
            .into_iter()
            .chain(templates.iter().map(String::as_bytes)),
    );
    let version = site.version(now).await?;
    let posts = tree(config.path(&config.posts.dir))?;
    let whole = digest(
        [rendering.as_bytes(), version.as_bytes()]
            .into_iter()
            .chain(posts.iter().map(String::as_bytes)),
    );
    Ok(Inputs { rendering, whole })
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
