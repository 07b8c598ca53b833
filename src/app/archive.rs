//! `posthorn posts import`: an old archive (WordPress, Ghost, Substack, a feed)
//! brought into `posts/` as Markdown bundles, with the images each post shows
//! downloaded beside it. Imported posts were published before posthorn knew
//! them: they go to the feeds and the archive, never by email.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use url::Url;

use super::Context;
use crate::error::Error;
use crate::links::WebUrl;
use crate::posts::archive::{
    self, Archive, ArchiveFormat, ArchivedPost, Skipped, SubstackFiles, SUBSTACK_INDEX,
};
use crate::posts::html::{for_markdown, image_urls, sanitize};
use crate::posts::upstream::{self, Fetch};

/// Images fetched at once, per post.
const IMAGES_AT_ONCE: usize = 4;

/// An image that stayed on the old site, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailedImage {
    pub post: String,
    pub url: String,
    pub reason: String,
}

/// What importing an archive did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveReport {
    pub format: ArchiveFormat,
    /// The slugs of the posts written.
    pub imported: Vec<String>,
    /// Slugs a post already has (a file, a bundle or a post the site knows):
    /// never overwritten.
    pub already_there: Vec<String>,
    /// Entries that are not posts, or could not be read.
    pub skipped: Vec<Skipped>,
    /// Posts the old site showed to some readers only (password-protected,
    /// for paying members, sent by email only): imported as drafts, since
    /// the archive is public.
    pub made_drafts: Vec<Skipped>,
    pub images: u64,
    pub failed_images: Vec<FailedImage>,
}

/// Where an archive comes from, and how to read it.
pub struct ArchiveSource {
    /// A file, a folder (an unpacked Substack export) or an http(s) URL.
    pub location: String,
    /// `None`: told from the file.
    pub from: Option<ArchiveFormat>,
    /// The old site's address, for links an export writes relative to it
    /// (Ghost's `__GHOST_URL__`, Substack's relative images).
    pub base: Option<WebUrl>,
}

#[derive(Clone)]
pub struct Archives {
    context: Arc<Context>,
}

impl Archives {
    pub(in crate::app) fn new(context: Arc<Context>) -> Archives {
        Archives { context }
    }

    /// Imports the archive at `source` (see the module). A post whose slug is
    /// taken is left alone, so importing twice changes nothing.
    pub async fn import(&self, source: &ArchiveSource) -> Result<ArchiveReport, Error> {
        let (format, archive) = self.read(source).await?;
        let config = &self.context.config;
        let dir = config.path(&config.posts.dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let taken = self.taken_slugs(&dir).await?;
        let mut report = ArchiveReport {
            format,
            imported: Vec::new(),
            already_there: Vec::new(),
            skipped: archive.skipped,
            made_drafts: Vec::new(),
            images: 0,
            failed_images: Vec::new(),
        };
        let mut seen: HashMap<String, String> = HashMap::new();
        for post in archive.posts {
            let slug = post.slug.to_string();
            if taken.contains(&slug) {
                report.already_there.push(slug);
                continue;
            }
            if let Some(first) = seen.get(&slug) {
                report.skipped.push(Skipped {
                    entry: post.entry.clone(),
                    reason: format!("its slug `{slug}` is also {first}'s; give one another slug"),
                });
                continue;
            }
            seen.insert(slug.clone(), post.entry.clone());
            let held_back = post.held_back.clone();
            match self
                .write(&dir, post, source.base.as_ref(), &mut report)
                .await
            {
                Ok(()) => {
                    if let Some(reason) = held_back {
                        report.made_drafts.push(Skipped {
                            entry: slug.clone(),
                            reason,
                        });
                    }
                    report.imported.push(slug);
                }
                Err(reason) => report.skipped.push(reason),
            }
        }
        tracing::info!(
            imported = report.imported.len(),
            already_there = report.already_there.len(),
            images = report.images,
            failed_images = report.failed_images.len(),
            "an archive was imported"
        );
        Ok(report)
    }

    /// Reads the archive, telling its format when not named.
    async fn read(&self, source: &ArchiveSource) -> Result<(ArchiveFormat, Archive), Error> {
        let location = source.location.as_str();
        let invalid = |why: String| Error::Invalid(format!("{location}: {why}"));
        let (text, feed_url) = if let Some(url) = web_url(location) {
            let fetched = self.fetch(&url).await.map_err(invalid)?;
            let text = upstream::decode(&fetched, None).map_err(invalid)?;
            (text, url)
        } else {
            let path = Path::new(location);
            let substack =
                source.from == Some(ArchiveFormat::Substack) || path.is_dir() || zip_magic(path);
            if substack {
                let mut files = if path.is_dir() {
                    SubstackFiles::Folder(path.to_path_buf())
                } else {
                    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
                    SubstackFiles::zip(file).map_err(invalid)?
                };
                let archive = tokio::task::block_in_place(|| archive::read_substack(&mut files))
                    .map_err(invalid)?;
                return Ok((ArchiveFormat::Substack, archive));
            }
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let text = upstream::decode(&bytes, None).map_err(invalid)?;
            let absolute = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
            let url =
                Url::from_file_path(&absolute).map_err(|()| invalid("not a file path".into()))?;
            (text, url)
        };
        let format = source.from.unwrap_or_else(|| archive::sniff(&text));
        if text.contains("__GHOST_URL__") && source.base.is_none() {
            return Err(invalid(
                "the export writes the old site's address as `__GHOST_URL__`; name it with \
                 --base https://… so that its links and images are kept"
                    .into(),
            ));
        }
        let archive = match format {
            ArchiveFormat::Feed => feed(&text, &feed_url).map_err(invalid)?,
            ArchiveFormat::Substack => {
                return Err(invalid(format!(
                    "a Substack export is a ZIP or a folder with `{SUBSTACK_INDEX}`"
                )))
            }
            other => archive::read_text(other, &text).map_err(invalid)?,
        };
        Ok((format, archive))
    }

    /// The slugs of the posts in `posts/` and of those the site knows.
    async fn taken_slugs(&self, dir: &Path) -> Result<HashSet<String>, Error> {
        let c = &self.context;
        let loaded = crate::posts::load_dir(&c.config, &c.links)?;
        let mut taken: HashSet<String> = loaded.posts.iter().map(|p| p.slug.to_string()).collect();
        taken.extend(c.store.post_slugs().await?);
        // A folder or file by the slug's name, even one that is not a post.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                taken.insert(name.strip_suffix(".md").unwrap_or(&name).to_string());
            }
        }
        Ok(taken)
    }

    /// Writes one post as `posts/SLUG/index.md` with its images in
    /// `posts/SLUG/images/`, in a hidden folder first and then renamed, so a
    /// failure leaves no half-written post.
    async fn write(
        &self,
        dir: &Path,
        post: ArchivedPost,
        old_site: Option<&WebUrl>,
        report: &mut ArchiveReport,
    ) -> Result<(), Skipped> {
        let skip = |reason: String| Skipped {
            entry: post.entry.clone(),
            reason,
        };
        let slug = post.slug.to_string();
        let raw = match old_site {
            Some(site) => post
                .html
                .replace("__GHOST_URL__/", site.as_url().as_str())
                .replace(
                    "__GHOST_URL__",
                    site.as_url().as_str().trim_end_matches('/'),
                ),
            None => post.html.clone(),
        };
        let html = sanitize(&raw, post.base.as_ref().or(old_site));
        let images = image_urls(&html).map_err(|e| skip(e.to_string()))?;
        let staging = dir.join(format!(".{slug}.importing"));
        let io = |path: &Path, e: std::io::Error| skip(format!("{}: {e}", path.display()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?;
        }
        std::fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
        let mut fetched: Vec<(usize, Url, Result<Vec<u8>, String>)> =
            futures_util::stream::iter(images.into_iter().enumerate())
                .map(|(i, url)| async move {
                    let bytes = self.fetch(&url).await;
                    (i, url, bytes)
                })
                .buffer_unordered(IMAGES_AT_ONCE)
                .collect()
                .await;
        // In the post's order, whichever answered first.
        fetched.sort_by_key(|(i, _, _)| *i);
        let mut local: HashMap<Url, String> = HashMap::new();
        for (i, url, bytes) in fetched {
            let kept = bytes.and_then(|bytes| {
                let ext = image_kind(&bytes).ok_or_else(|| {
                    "not an image posthorn keeps (PNG, JPEG, GIF, WebP or AVIF)".to_string()
                })?;
                let name = format!("images/{}-{}.{ext}", i + 1, file_stem(&url));
                let path = staging.join(&name);
                std::fs::create_dir_all(staging.join("images"))
                    .and_then(|()| std::fs::write(&path, &bytes))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(name)
            });
            match kept {
                Ok(name) => {
                    report.images += 1;
                    local.insert(url, name);
                }
                Err(reason) => report.failed_images.push(FailedImage {
                    post: slug.clone(),
                    url: url.to_string(),
                    reason,
                }),
            }
        }
        let html = for_markdown(&html, &|url| local.get(url).cloned()).map_err(skip)?;
        let markdown = archive::to_markdown(&html).map_err(skip)?;
        let text = archive::bundle_text(&post, &markdown, self.context.config.site.timezone);
        let index = staging.join("index.md");
        std::fs::write(&index, text).map_err(|e| io(&index, e))?;
        let target = dir.join(&slug);
        std::fs::rename(&staging, &target).map_err(|e| io(&target, e))
    }

    /// One GET, bounded in time and size, as the upstream feed is fetched.
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, String> {
        let timeout = Duration::from_secs(self.context.config.posts.fetch_timeout_seconds);
        match upstream::fetch(url, url, None, None, timeout, &self.context.user_agent()).await? {
            Fetch::Body(body) => Ok(body.bytes),
            Fetch::NotModified => Err("answered 304 to a plain GET".into()),
        }
    }
}

/// A feed's entries as archived posts: published, keeping their tags.
fn feed(text: &str, url: &Url) -> Result<Archive, String> {
    let entries = upstream::parse(text, url)?;
    let posts = entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| ArchivedPost {
            entry: format!("entry {} (\"{}\")", i + 1, e.title),
            slug: e.slug,
            title: e.title,
            date: e.published,
            tags: e.tags,
            draft: false,
            held_back: None,
            html: e.content_html,
            base: e.link.as_deref().and_then(|l| WebUrl::parse(l).ok()),
        })
        .collect();
    Ok(Archive {
        posts,
        skipped: Vec::new(),
    })
}

fn web_url(location: &str) -> Option<Url> {
    Url::parse(location)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

fn zip_magic(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04"
}

/// The kind of image by its first bytes. SVG is not kept: it can carry script,
/// and the site would serve it from its own origin.
fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("jpg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("gif")
    } else if bytes.len() > 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else if bytes.len() > 12 && &bytes[4..12] == b"ftypavif" {
        Some("avif")
    } else {
        None
    }
}

/// A file name from the URL's last segment, cut to letters, digits and `-`.
fn file_stem(url: &Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy();
    let stem = decoded.rsplit_once('.').map_or(&*decoded, |(stem, _)| stem);
    let name: String = stem
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .take(60)
        .collect();
    match name.trim_matches('-') {
        "" => "image".into(),
        name => name.to_string(),
    }
}

impl ArchiveSource {
    /// A source as typed on the command line.
    pub fn new(location: &str, from: Option<ArchiveFormat>, base: Option<WebUrl>) -> ArchiveSource {
        ArchiveSource {
            location: location.to_string(),
            from,
            base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_bytes_and_named_by_their_url() {
        assert_eq!(image_kind(b"\x89PNG\r\n\x1a\nrest"), Some("png"));
        assert_eq!(image_kind(b"\xff\xd8\xff\xe0"), Some("jpg"));
        assert_eq!(
            image_kind(b"<svg xmlns=\"http://www.w3.org/2000/svg\">"),
            None
        );
        assert_eq!(image_kind(b"<html>404</html>"), None);
        let url =
            Url::parse("https://old.example/wp-content/uploads/2020/01/서울%20밤.jpeg").unwrap();
        assert_eq!(file_stem(&url), "서울-밤");
        assert_eq!(
            file_stem(&Url::parse("https://old.example/").unwrap()),
            "image"
        );
    }
}
