//! What happened after a send: clicks, opens, archive views and feed
//! followers. Everything here is a count or a sketch; nothing names a
//! subscriber, a delivery or an address (see `migrations/*/0012_analytics.sql`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{from_ms, lock, ms, Store};
use crate::analytics::Sketch;
use crate::domain::hex;
use crate::error::{DbContext, Error};

/// Counts gathered in memory since the last write, added in one transaction.
#[derive(Debug, Default)]
pub struct Tallies {
    pub issues: BTreeMap<i64, IssueTally>,
    /// By issue and link URL.
    pub links: BTreeMap<(i64, String), Tally>,
    /// By post slug and day (`YYYY-MM-DD`, the site's calendar).
    pub views: BTreeMap<(String, String), i64>,
    /// By feed file and service: the latest count and when it was seen.
    pub followers: BTreeMap<(String, String), (i64, DateTime<Utc>)>,
}

impl Tallies {
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
            && self.links.is_empty()
            && self.views.is_empty()
            && self.followers.is_empty()
    }

    /// Adds `other`'s counts to these (counts that could not be written yet).
    pub fn absorb(&mut self, other: Tallies) {
        for (id, t) in other.issues {
            let mine = self.issues.entry(id).or_default();
            mine.clicks.absorb(&t.clicks);
            mine.opens.absorb(&t.opens);
            mine.machine_opens += t.machine_opens;
        }
        for (key, t) in other.links {
            self.links.entry(key).or_default().absorb(&t);
        }
        for (key, n) in other.views {
            *self.views.entry(key).or_default() += n;
        }
        for (key, seen) in other.followers {
            // The newer report wins.
            let mine = self.followers.entry(key).or_insert(seen);
            if seen.1 > mine.1 {
                *mine = seen;
            }
        }
    }
}

/// A count and the sketch of the different emails behind it.
#[derive(Debug, Default)]
pub struct Tally {
    pub count: i64,
    pub sketch: Sketch,
}

impl Tally {
    fn absorb(&mut self, other: &Tally) {
        self.count += other.count;
        self.sketch.merge(&other.sketch);
    }
}

#[derive(Debug, Default)]
pub struct IssueTally {
    pub clicks: Tally,
    /// Opens by people.
    pub opens: Tally,
    pub machine_opens: i64,
}

/// The counts of one issue, as `stats` shows them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Engagement {
    pub clicks: i64,
    /// Different emails whose links were clicked, estimated (±1.6 %).
    pub unique_clicks: u64,
    pub opens: i64,
    pub unique_opens: u64,
    pub machine_opens: i64,
    /// Most clicked first.
    pub links: Vec<LinkCount>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkCount {
    pub url: String,
    pub clicks: i64,
    pub unique_clicks: u64,
}

/// One post with what its issue and its page counted.
#[derive(Debug, Clone)]
pub struct PostCounts {
    pub post_id: i64,
    pub slug: String,
    pub title: String,
    pub published_at: DateTime<Utc>,
    /// The issue it went out in, if it did.
    pub issue_id: Option<i64>,
    /// Deliveries of that issue the relay accepted.
    pub delivered: i64,
    /// Archive views, every day.
    pub views: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedFollowers {
    pub feed: String,
    pub service: String,
    pub followers: i64,
    pub seen_at: DateTime<Utc>,
}

/// `(day, views)` rows.
fn day_views(rows: &[sqlx::any::AnyRow]) -> Result<Vec<(String, i64)>, Error> {
    rows.iter()
        .map(|r| Ok((r.try_get("day")?, r.try_get("views")?)))
        .collect::<Result<_, sqlx::Error>>()
        .db("reading page views")
}

/// Reads a stored sketch; a missing or damaged one counts as empty.
fn sketch(bytes: Option<Vec<u8>>) -> Sketch {
    bytes
        .as_deref()
        .and_then(Sketch::from_bytes)
        .unwrap_or_default()
}

impl Store {
    /// Adds `tallies`. Counts for an issue or a post that does not exist
    /// (a preview's links, a post since removed) are dropped.
    pub async fn add_tallies(&self, tallies: &Tallies) -> Result<(), Error> {
        if tallies.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.db("adding counts")?;
        // Sketches are read, merged and written back: one writer at a time.
        lock(&mut tx, "counts").await?;
        for (issue_id, t) in &tallies.issues {
            let row = sqlx::query("SELECT clickers, openers FROM issue_counts WHERE issue_id = $1")
                .bind(issue_id)
                .fetch_optional(&mut *tx)
                .await
                .db("reading an issue's counts")?;
            let (mut clickers, mut openers) = match &row {
                Some(row) => (
                    sketch(row.try_get("clickers").db("reading an issue's counts")?),
                    sketch(row.try_get("openers").db("reading an issue's counts")?),
                ),
                None => (Sketch::default(), Sketch::default()),
            };
            clickers.merge(&t.clicks.sketch);
            openers.merge(&t.opens.sketch);
            sqlx::query(
                "INSERT INTO issue_counts (issue_id, clicks, clickers, opens, openers, machine_opens) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM issues WHERE id = $1) \
                 ON CONFLICT (issue_id) DO UPDATE SET clicks = issue_counts.clicks + excluded.clicks, \
                 clickers = excluded.clickers, opens = issue_counts.opens + excluded.opens, \
                 openers = excluded.openers, \
                 machine_opens = issue_counts.machine_opens + excluded.machine_opens",
            )
            .bind(issue_id)
            .bind(t.clicks.count)
            .bind(clickers.as_bytes().to_vec())
            .bind(t.opens.count)
            .bind(openers.as_bytes().to_vec())
            .bind(t.machine_opens)
            .execute(&mut *tx)
            .await
            .db("adding an issue's counts")?;
        }
        for ((issue_id, url), t) in &tallies.links {
            let url_key = hex(&Sha256::digest(url.as_bytes()));
            let stored: Option<Option<Vec<u8>>> = sqlx::query_scalar(
                "SELECT clickers FROM link_counts WHERE issue_id = $1 AND url_key = $2",
            )
            .bind(issue_id)
            .bind(&url_key)
            .fetch_optional(&mut *tx)
            .await
            .db("reading a link's counts")?;
            let mut clickers = sketch(stored.flatten());
            clickers.merge(&t.sketch);
            sqlx::query(
                "INSERT INTO link_counts (issue_id, url_key, url, clicks, clickers) \
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM issues WHERE id = $1) \
                 ON CONFLICT (issue_id, url_key) DO UPDATE SET \
                 clicks = link_counts.clicks + excluded.clicks, clickers = excluded.clickers",
            )
            .bind(issue_id)
            .bind(&url_key)
            .bind(url)
            .bind(t.count)
            .bind(clickers.as_bytes().to_vec())
            .execute(&mut *tx)
            .await
            .db("adding a link's counts")?;
        }
        for ((slug, day), views) in &tallies.views {
            sqlx::query(
                "INSERT INTO post_views (post_id, day, views) \
                 SELECT id, $2, $3 FROM posts WHERE slug = $1 \
                 ON CONFLICT (post_id, day) DO UPDATE SET views = post_views.views + excluded.views",
            )
            .bind(slug)
            .bind(day)
            .bind(views)
            .execute(&mut *tx)
            .await
            .db("adding page views")?;
        }
        for ((feed, service), (followers, seen_at)) in &tallies.followers {
            sqlx::query(
                "INSERT INTO feed_followers (feed, service, followers, seen_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (feed, service) DO UPDATE SET \
                 followers = excluded.followers, seen_at = excluded.seen_at",
            )
            .bind(feed)
            .bind(service)
            .bind(followers)
            .bind(ms(*seen_at))
            .execute(&mut *tx)
            .await
            .db("keeping a feed's followers")?;
        }
        tx.commit().await.db("adding counts")?;
        Ok(())
    }

    /// The clicks and opens of one issue.
    pub async fn engagement(&self, issue_id: i64) -> Result<Engagement, Error> {
        let mut counts = Engagement::default();
        let row = sqlx::query(
            "SELECT clicks, clickers, opens, openers, machine_opens FROM issue_counts \
             WHERE issue_id = $1",
        )
        .bind(issue_id)
        .fetch_optional(&self.pool)
        .await
        .db("reading an issue's counts")?;
        if let Some(row) = row {
            let read = "reading an issue's counts";
            counts.clicks = row.try_get("clicks").db(read)?;
            counts.unique_clicks = sketch(row.try_get("clickers").db(read)?).estimate();
            counts.opens = row.try_get("opens").db(read)?;
            counts.unique_opens = sketch(row.try_get("openers").db(read)?).estimate();
            counts.machine_opens = row.try_get("machine_opens").db(read)?;
        }
        let rows = sqlx::query(
            "SELECT url, clicks, clickers FROM link_counts WHERE issue_id = $1 \
             ORDER BY clicks DESC, url",
        )
        .bind(issue_id)
        .fetch_all(&self.pool)
        .await
        .db("reading an issue's links")?;
        for row in rows {
            let read = "reading an issue's links";
            counts.links.push(LinkCount {
                url: row.try_get("url").db(read)?,
                clicks: row.try_get("clicks").db(read)?,
                unique_clicks: sketch(row.try_get("clickers").db(read)?).estimate(),
            });
        }
        Ok(counts)
    }

    /// Every post that is not removed (or the one with `slug`), newest first,
    /// with its issue's deliveries and its views.
    pub async fn post_counts(&self, slug: Option<&str>) -> Result<Vec<PostCounts>, Error> {
        let rows = sqlx::query(
            // A post's issue is its own one, or else the first digest or
            // welcome that carried it (as `Store::issue_for_post` chooses).
            "SELECT x.id, x.slug, x.title, x.published_at, x.issue_id, \
             (SELECT COUNT(*) FROM deliveries d WHERE d.issue_id = x.issue_id AND d.status = 'sent') AS delivered, \
             (SELECT CAST(COALESCE(SUM(v.views), 0) AS BIGINT) FROM post_views v WHERE v.post_id = x.id) AS views \
             FROM (SELECT p.id, p.slug, p.title, p.published_at, \
                   (SELECT i.id FROM issues i JOIN issue_posts ip ON ip.issue_id = i.id \
                    WHERE ip.post_id = p.id ORDER BY CASE WHEN i.kind = 'post' THEN 0 ELSE 1 END, i.id \
                    LIMIT 1) AS issue_id \
                   FROM posts p WHERE p.removed_at IS NULL AND ($1 = '' OR p.slug = $1)) x \
             ORDER BY x.published_at DESC, x.id DESC",
        )
        .bind(slug.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .db("counting posts")?;
        rows.iter()
            .map(|r| {
                Ok(PostCounts {
                    post_id: r.try_get("id")?,
                    slug: r.try_get("slug")?,
                    title: r.try_get("title")?,
                    published_at: from_ms(r.try_get("published_at")?),
                    issue_id: r.try_get("issue_id")?,
                    delivered: r.try_get("delivered")?,
                    views: r.try_get("views")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .db("counting posts")
    }

    /// A post's archive views per day, oldest first.
    pub async fn post_views(&self, post_id: i64) -> Result<Vec<(String, i64)>, Error> {
        let rows = sqlx::query("SELECT day, views FROM post_views WHERE post_id = $1 ORDER BY day")
            .bind(post_id)
            .fetch_all(&self.pool)
            .await
            .db("reading page views")?;
        day_views(&rows)
    }

    /// Archive views of every post per day since `since` (`YYYY-MM-DD`).
    pub async fn views_by_day(&self, since: &str) -> Result<Vec<(String, i64)>, Error> {
        let rows = sqlx::query(
            "SELECT day, CAST(SUM(views) AS BIGINT) AS views FROM post_views WHERE day >= $1 \
             GROUP BY day ORDER BY day",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .db("reading page views")?;
        day_views(&rows)
    }

    /// What feed services last said of their readers, most first.
    pub async fn feed_followers(&self) -> Result<Vec<FeedFollowers>, Error> {
        let rows = sqlx::query(
            "SELECT feed, service, followers, seen_at FROM feed_followers \
             ORDER BY followers DESC, service, feed",
        )
        .fetch_all(&self.pool)
        .await
        .db("reading feed followers")?;
        rows.iter()
            .map(|r| {
                Ok(FeedFollowers {
                    feed: r.try_get("feed")?,
                    service: r.try_get("service")?,
                    followers: r.try_get("followers")?,
                    seen_at: from_ms(r.try_get("seen_at")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .db("reading feed followers")
    }
}
