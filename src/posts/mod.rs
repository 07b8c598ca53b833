//! Posts: Markdown files with front matter in `posts/`.
//!
//! Loading never stops at a broken file: each problem is reported with the file and
//! line, and every other post still goes through.

pub mod front_matter;
pub mod html;
pub mod markdown;
pub mod upstream;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::domain::{one_line, Slug};
use crate::error::Error;

/// A post as read from its file, before the database gives it an identity.
#[derive(Debug, Clone)]
pub struct SourcePost {
    /// Path below the posts folder, with `/` separators: `2026/walk.md`.
    pub source: String,
    pub slug: Slug,
    pub title: String,
    pub date: DateTime<Utc>,
    /// The calendar date of `date` in the site's time zone.
    pub local_date: chrono::NaiveDate,
    pub updated: Option<DateTime<Utc>>,
    pub summary: String,
    pub tags: Vec<String>,
    pub draft: bool,
    pub email: bool,
    /// Rendered HTML with every URL absolute.
    pub content_html: String,
    /// Changes when the file, the base URL or the time zone changes.
    pub content_hash: String,
}

/// A file that could not be read as a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostError {
    pub file: PathBuf,
    /// Path below the posts folder, as in [`SourcePost::source`].
    pub source: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

#[derive(Debug, Default)]
pub struct Loaded {
    pub posts: Vec<SourcePost>,
    pub errors: Vec<PostError>,
}

/// Reads every `*.md` file below the configured posts folder.
pub fn load_dir(config: &Config) -> Result<Loaded, Error> {
    let dir = config.path(&config.posts.dir);
    let mut files = Vec::new();
    if dir.exists() {
        collect_markdown_files(&dir, &mut files)?;
    } else if config.posts.feed.is_none() {
        return Err(Error::Config(format!(
            "posts folder {} does not exist (set [posts] dir, or create it)",
            dir.display()
        )));
    }
    files.sort();

    let mut loaded = Loaded::default();
    let mut slugs: std::collections::HashMap<Slug, PathBuf> = Default::default();
    for file in files {
        let relative = file.strip_prefix(&dir).unwrap_or(&file).to_path_buf();
        match load_file(config, &file, &relative) {
            Ok(post) => {
                if let Some(first) = slugs.get(&post.slug) {
                    loaded.errors.push(PostError {
                        file: file.clone(),
                        source: post.source.clone(),
                        line: None,
                        message: format!(
                            "slug `{}` is already used by {}; set a different `slug`",
                            post.slug,
                            first.display()
                        ),
                    });
                    continue;
                }
                slugs.insert(post.slug.clone(), file.clone());
                loaded.posts.push(post);
            }
            Err(e) => loaded.errors.push(e),
        }
    }
    Ok(loaded)
}

fn collect_markdown_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            collect_markdown_files(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("md" | "markdown")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn load_file(config: &Config, file: &Path, relative: &Path) -> Result<SourcePost, PostError> {
    let source = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let fail = |line: Option<usize>, message: String| PostError {
        file: file.to_path_buf(),
        source: source.clone(),
        line,
        message,
    };
    let bytes = std::fs::read(file).map_err(|e| fail(None, e.to_string()))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        fail(
            None,
            format!("not valid UTF-8 ({e}); save the file as UTF-8"),
        )
    })?;
    let (fm, body) = front_matter::parse(text).map_err(|e| fail(Some(e.line), e.message))?;

    let tz = config.site.timezone;
    let date = front_matter::parse_date(&fm.date.text(), tz).map_err(|m| fail(None, m))?;
    let updated = fm
        .updated
        .as_ref()
        .map(|u| front_matter::parse_date(&u.text(), tz))
        .transpose()
        .map_err(|m| fail(None, m))?;
    let slug = match &fm.slug {
        Some(s) => Slug::parse(s),
        None => Slug::from_file_stem(&default_slug_source(relative)),
    }
    .map_err(|m| fail(None, m))?;

    let page = config.post_url(&slug);
    let content_html = html::absolutize_urls(&markdown::to_html(body), &page)
        .map_err(|m| fail(None, format!("could not process the HTML: {m}")))?;
    let summary = match fm.summary {
        Some(s) => one_line(&s),
        None => markdown::first_paragraph(body),
    };
    let mut tags: Vec<String> = Vec::new();
    for tag in fm.tags.iter().map(|t| one_line(t)) {
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    }

    let mut hash = Sha256::new();
    hash.update(&bytes);
    hash.update(config.site.base_url.as_str());
    hash.update(tz.name());
    Ok(SourcePost {
        source,
        slug,
        title: one_line(&fm.title),
        date,
        local_date: date.with_timezone(&tz).date_naive(),
        updated,
        summary,
        tags,
        draft: fm.draft,
        email: fm.email,
        content_html,
        content_hash: hex(&hash.finalize()),
    })
}

/// `essay.md` → `essay`; a bundle `essay/index.md` → `essay`.
fn default_slug_source(relative: &Path) -> String {
    let stem = relative
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem == "index" {
        if let Some(parent) = relative.parent().and_then(|p| p.file_name()) {
            return parent.to_string_lossy().into_owned();
        }
    }
    stem
}

/// The folder of a post's own files (images and the like), linked relative to its
/// page: the bundle folder of `essay/index.md`, or `essay/` beside `essay.md`.
/// `None` for posts that do not come from a file.
pub fn assets_dir(config: &Config, source: &str) -> Option<PathBuf> {
    let relative = source.strip_prefix("file:")?;
    let file = config.path(&config.posts.dir).join(relative);
    let dir = if file.file_stem().is_some_and(|s| s == "index") {
        file.parent()?.to_path_buf()
    } else {
        file.with_extension("")
    };
    dir.is_dir().then_some(dir)
}

/// Whether a file may be published as an asset: not Markdown (the post's source),
/// not hidden.
pub fn is_asset(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    let markdown = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("md" | "markdown")
    );
    !hidden && !markdown
}

/// The files below a post's assets folder, as (path relative to it, full path).
pub fn assets(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else if is_asset(&path) {
                if let Ok(rel) = path.strip_prefix(root) {
                    let rel = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    out.push((rel, path));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The media type of an asset, from its extension.
pub fn asset_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("svg") => "image/svg+xml",
        Some("pdf") => "application/pdf",
        Some("mp3") => "audio/mpeg",
        Some("mp4") => "video/mp4",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
