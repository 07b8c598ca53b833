//! Posts: Markdown files with front matter in `posts/`.
//!
//! Loading never stops at a broken file: each problem is reported with the file and
//! line, and every other post still goes through.

pub mod archive;
pub mod front_matter;
pub mod html;
pub mod markdown;
pub mod upstream;

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::domain::{hex, one_line, FilePost, PostSource, Slug};
use crate::error::Error;
use crate::links::{Links, WebUrl};

/// A file that could not be read as a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostError {
    pub file: PathBuf,
    /// Path below the posts folder, as in [`FilePost::path`].
    pub path: String,
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
    pub posts: Vec<FilePost>,
    pub errors: Vec<PostError>,
}

impl Loaded {
    /// The files that are there but could not be read: their posts stay as stored.
    pub fn unreadable(&self) -> Vec<String> {
        self.errors.iter().map(|e| e.path.clone()).collect()
    }
}

/// Reads every `*.md` file below the configured posts folder.
pub fn load_dir(config: &Config, links: &Links) -> Result<Loaded, Error> {
    let dir = config.path(&config.posts.dir);
    let mut files = Vec::new();
    if dir.exists() {
        walk(&dir, &mut |path| {
            if is_markdown(path) {
                files.push(path.to_path_buf());
            }
        })?;
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
        match load_file(config, links, &file, &relative) {
            Ok(post) => {
                if let Some(first) = slugs.get(&post.slug) {
                    loaded.errors.push(PostError {
                        file: file.clone(),
                        path: post.path.clone(),
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

/// Calls `visit` for every file below `dir`, skipping hidden files and folders.
/// Posts and their assets are found by this one walk.
pub fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            walk(&path, visit)?;
        } else {
            visit(&path);
        }
    }
    Ok(())
}

fn is_markdown(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("md" | "markdown")
    )
}

/// `a/b/c.md` with `/` separators, whatever the platform.
fn slash_path(relative: &Path) -> String {
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn load_file(
    config: &Config,
    links: &Links,
    file: &Path,
    relative: &Path,
) -> Result<FilePost, PostError> {
    let path = slash_path(relative);
    let fail = |line: Option<usize>, message: String| PostError {
        file: file.to_path_buf(),
        path: path.clone(),
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
    // CommonMark replaces U+0000 with U+FFFD, for safety; PostgreSQL could
    // not store it either, so a post would sync on SQLite only.
    let text = if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    let (fm, body) = front_matter::parse(&text).map_err(|e| fail(Some(e.line), e.message))?;

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

    let page = WebUrl::try_from(links.post_page(&slug))
        .map_err(|e| fail(None, format!("site.base_url is {e}")))?;
    let line_breaks = fm.line_breaks.unwrap_or(config.posts.line_breaks);
    let content_html = html::absolutize_urls(&markdown::to_html(body, line_breaks), &page)
        .map_err(|m| fail(None, format!("could not process the HTML: {m}")))?;
    let summary = match fm.summary {
        Some(s) => one_line(&s),
        None => markdown::summary(body, line_breaks),
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
    hash.update(line_breaks.as_str());
    Ok(FilePost {
        path,
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
///
/// A post's folder never holds another post, or it would publish that post's
/// files, a draft's included. So a bundle is a folder below the posts folder
/// whose only Markdown file is its `index.md`; an `index.md` anywhere else (the
/// posts folder itself, a folder of several posts) is a post like any other,
/// with its files in `index/` beside it. A folder beside a file holds no Markdown.
pub fn assets_dir(config: &Config, source: &PostSource) -> Option<PathBuf> {
    let relative = Path::new(source.file()?);
    let file = config.path(&config.posts.dir).join(relative);
    let in_subfolder = relative.parent().is_some_and(|p| !p.as_os_str().is_empty());
    if relative.file_stem().is_some_and(|s| s == "index") && in_subfolder {
        if let Some(folder) = file.parent().filter(|f| markdown_files(f) == Some(1)) {
            return Some(folder.to_path_buf());
        }
    }
    let beside = file.with_extension("");
    (markdown_files(&beside) == Some(0)).then_some(beside)
}

/// How many Markdown files are below `dir`; `None` if it is not a readable folder.
fn markdown_files(dir: &Path) -> Option<usize> {
    let mut count = 0;
    walk(dir, &mut |path| count += usize::from(is_markdown(path))).ok()?;
    Some(count)
}

/// Whether a file may be published as an asset: not Markdown (the post's source),
/// not hidden.
pub fn is_asset(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    !hidden && !is_markdown(path)
}

/// The files below a post's assets folder, as (path relative to it, full path).
pub fn assets(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let mut out = Vec::new();
    walk(dir, &mut |path| {
        if let (true, Ok(relative)) = (is_asset(path), path.strip_prefix(dir)) {
            out.push((slash_path(relative), path.to_path_buf()));
        }
    })?;
    out.sort();
    Ok(out)
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
