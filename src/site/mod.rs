//! The public site at one moment: the three feeds, the archive index and the post
//! pages. `posthorn build` writes it to files ([`Site::build`], incremental);
//! `posthorn serve` keeps it in memory.

mod build;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::domain::Post;
use crate::error::Error;
use crate::feeds;
use crate::links::{Links, ATOM_PATH, JSON_PATH, RSS_PATH};
use crate::render::Templates;
use crate::store::Store;

pub use build::{Build, Written};

/// One file of the site.
#[derive(Debug, Clone)]
pub struct Page {
    /// Path below the site root: `feed.xml`, `index.html`, `posts/essay/index.html`.
    pub path: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub last_modified: DateTime<Utc>,
}

pub const HTML: &str = "text/html; charset=utf-8";

/// The feeds and the index (post pages are made one at a time by [`Site::post_page`]).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The store's site version this was built from.
    pub version: String,
    pub pages: Vec<Page>,
    /// Every published post, newest first.
    pub posts: Vec<Post>,
}

/// What the public site is made from.
#[derive(Clone)]
pub struct Site {
    store: Store,
    config: Arc<Config>,
    templates: Arc<Templates>,
    links: Links,
}

impl Site {
    pub fn new(store: Store, config: Arc<Config>, templates: Arc<Templates>, links: Links) -> Site {
        Site {
            store,
            config,
            templates,
            links,
        }
    }

    /// Changes whenever what the site shows at `now` may have changed.
    pub async fn version(&self, now: DateTime<Utc>) -> Result<String, Error> {
        self.store.site_version(now).await
    }

    pub async fn snapshot(&self, now: DateTime<Utc>) -> Result<Snapshot, Error> {
        let config = &self.config;
        let version = self.store.site_version(now).await?;
        let posts = self.store.published_posts(now, None).await?;
        let created = self.store.created_at().await?;
        let feed_id = self
            .store
            .meta_get_or_insert(
                "feed_id",
                &format!(
                    "tag:{},{}:feed",
                    config.site_host(),
                    created.format("%Y-%m-%d")
                ),
            )
            .await?;
        let in_feeds = &posts[..posts.len().min(config.feeds.limit)];
        let built = feeds::build(config, &self.links, in_feeds, &feed_id, created);
        let modified = |posts: &[Post]| posts.iter().map(last_modified).max().unwrap_or(created);
        let feeds_modified = modified(in_feeds);
        let page = |path: &str, content_type, body: String, last_modified| Page {
            path: path.to_string(),
            content_type,
            body: body.into_bytes(),
            last_modified,
        };
        let pages = vec![
            page(
                RSS_PATH,
                "application/rss+xml; charset=utf-8",
                built.rss,
                feeds_modified,
            ),
            page(
                ATOM_PATH,
                "application/atom+xml; charset=utf-8",
                built.atom,
                feeds_modified,
            ),
            page(
                JSON_PATH,
                "application/feed+json; charset=utf-8",
                built.json,
                feeds_modified,
            ),
            page(
                "index.html",
                HTML,
                self.templates.index(&posts)?,
                modified(&posts),
            ),
        ];
        Ok(Snapshot {
            version,
            pages,
            posts,
        })
    }

    /// A published post by its slug; `None` for drafts, scheduled and removed posts.
    pub async fn published(&self, slug: &str, now: DateTime<Utc>) -> Result<Option<Post>, Error> {
        let post = self.store.post_by_slug(slug).await?;
        Ok(post.filter(|p| p.is_published(now)))
    }

    pub fn post_page(&self, post: &Post) -> Result<Page, Error> {
        Ok(Page {
            path: format!("posts/{}/index.html", post.slug),
            content_type: HTML,
            body: self.templates.post_page(post)?.into_bytes(),
            last_modified: last_modified(post),
        })
    }

    /// The folder of a post's own files (its images), if it has one.
    pub fn assets_dir(&self, post: &Post) -> Option<PathBuf> {
        crate::posts::assets_dir(&self.config, &post.source)
    }
}

/// When a post's rendering last changed: stored again, or published.
fn last_modified(post: &Post) -> DateTime<Utc> {
    post.synced_at.max(post.published_at)
}
