//! The public site at one moment: the three feeds, the archive index and the post
//! pages. `posthorn build` writes it to files; `posthorn serve` keeps it in memory.

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::error::Error;
use crate::feeds::{self, ATOM_PATH, JSON_PATH, RSS_PATH};
use crate::render::pages;
use crate::store::PostRecord;

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

/// The feeds and the index (post pages are made one at a time by [`post_page`]).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The store's site version this was built from.
    pub version: String,
    pub pages: Vec<Page>,
    /// Every published post, newest first.
    pub posts: Vec<PostRecord>,
}

pub async fn snapshot(app: &App, now: DateTime<Utc>) -> Result<Snapshot, Error> {
    let config = &app.config;
    let version = app.store.site_version(now).await?;
    let posts = app.store.published_posts(now, None).await?;
    let created = app.store.created_at().await?;
    let feed_id = app
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
    let built = feeds::build(config, in_feeds, &feed_id, created);
    let modified = |posts: &[PostRecord]| posts.iter().map(last_modified).max().unwrap_or(created);
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
            pages::index(config, &app.templates, &posts)?,
            modified(&posts),
        ),
    ];
    Ok(Snapshot {
        version,
        pages,
        posts,
    })
}

pub fn post_page(app: &App, post: &PostRecord) -> Result<Page, Error> {
    Ok(Page {
        path: format!("posts/{}/index.html", post.slug),
        content_type: HTML,
        body: pages::post(&app.config, &app.templates, post)?.into_bytes(),
        last_modified: last_modified(post),
    })
}

/// When a post's rendering last changed: stored again, or published.
fn last_modified(post: &PostRecord) -> DateTime<Utc> {
    post.synced_at.max(post.published_at)
}
