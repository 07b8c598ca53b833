//! Posts and their identity. A post's identity (`uid`) is fixed when it is first
//! seen; later syncs match a file to that record by path, then by slug, then by
//! title and date, so renaming or moving a file never makes a new post.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{from_ms, ms, Store};
use crate::domain::Slug;
use crate::error::{DbContext, Error};
use crate::posts::{PostError, SourcePost};

#[derive(Debug, Clone)]
pub struct PostRecord {
    pub id: i64,
    pub uid: String,
    pub slug: Slug,
    pub source: String,
    pub title: String,
    pub summary: String,
    pub content_html: String,
    pub tags: Vec<String>,
    pub published_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub draft: bool,
    pub email: bool,
    pub external_url: Option<String>,
    /// False when the post predates the database: it goes in the feeds only.
    pub announce: bool,
    pub removed: bool,
    /// When this version of the post was stored: the Last-Modified of its pages.
    pub synced_at: DateTime<Utc>,
}

impl PostRecord {
    pub fn is_published(&self, now: DateTime<Utc>) -> bool {
        !self.draft && !self.removed && self.published_at <= now
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SyncReport {
    pub new: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    /// Files that could not be stored (for example a slug held by another post).
    pub conflicts: Vec<String>,
}

const POST_COLUMNS: &str = "id, uid, slug, source, title, summary, content_html, tags, \
     published_at, updated_at, draft, email, external_url, announce, removed_at, synced_at";

fn post_from_row(row: &AnyRow) -> Result<PostRecord, sqlx::Error> {
    let slug: String = row.try_get("slug")?;
    let tags: String = row.try_get("tags")?;
    Ok(PostRecord {
        id: row.try_get("id")?,
        uid: row.try_get("uid")?,
        slug: Slug::parse(&slug).map_err(|e| sqlx::Error::Decode(e.into()))?,
        source: row.try_get("source")?,
        title: row.try_get("title")?,
        summary: row.try_get("summary")?,
        content_html: row.try_get("content_html")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        published_at: from_ms(row.try_get("published_at")?),
        updated_at: row.try_get::<Option<i64>, _>("updated_at")?.map(from_ms),
        draft: row.try_get::<i64, _>("draft")? != 0,
        email: row.try_get::<i64, _>("email")? != 0,
        external_url: row.try_get("external_url")?,
        announce: row.try_get::<i64, _>("announce")? != 0,
        removed: row.try_get::<Option<i64>, _>("removed_at")?.is_some(),
        synced_at: from_ms(row.try_get("synced_at")?),
    })
}

/// What a sync needs to know about the posts already stored.
struct Known {
    id: i64,
    uid: String,
    slug: String,
    source: String,
    title: String,
    published_at: i64,
    content_hash: String,
    removed: bool,
}

const FILE_PREFIX: &str = "file:";

impl Store {
    /// Brings the posts table in line with the files just read. `errors` lists files
    /// that exist but could not be parsed: their stored posts are left untouched.
    pub async fn sync_posts(
        &self,
        posts: &[SourcePost],
        errors: &[PostError],
        site_host: &str,
        now: DateTime<Utc>,
    ) -> Result<SyncReport, Error> {
        let created_at = ms(self.created_at().await?);
        let mut tx = self.pool.begin().await.db("starting the post sync")?;
        super::lock(&mut tx, "sync").await?;
        let rows = sqlx::query(
            "SELECT id, uid, slug, source, title, published_at, content_hash, removed_at FROM posts",
        )
        .fetch_all(&mut *tx)
        .await
        .db("reading posts")?;
        let mut known = Vec::with_capacity(rows.len());
        for row in &rows {
            known.push(Known {
                id: row.try_get("id").db("reading posts")?,
                uid: row.try_get("uid").db("reading posts")?,
                slug: row.try_get("slug").db("reading posts")?,
                source: row.try_get("source").db("reading posts")?,
                title: row.try_get("title").db("reading posts")?,
                published_at: row.try_get("published_at").db("reading posts")?,
                content_hash: row.try_get("content_hash").db("reading posts")?,
                removed: row
                    .try_get::<Option<i64>, _>("removed_at")
                    .db("reading posts")?
                    .is_some(),
            });
        }

        let present: HashSet<String> = posts
            .iter()
            .map(|p| format!("{FILE_PREFIX}{}", p.source))
            .chain(errors.iter().map(|e| format!("{FILE_PREFIX}{}", e.source)))
            .collect();
        let by_source: HashMap<&str, usize> = known
            .iter()
            .enumerate()
            .map(|(i, k)| (k.source.as_str(), i))
            .collect();
        let by_slug: HashMap<&str, usize> = known
            .iter()
            .enumerate()
            .map(|(i, k)| (k.slug.as_str(), i))
            .collect();
        let mut slug_owner: HashMap<String, i64> =
            known.iter().map(|k| (k.slug.clone(), k.id)).collect();
        let mut uids: HashSet<String> = known.iter().map(|k| k.uid.clone()).collect();
        let mut claimed: HashSet<usize> = HashSet::new();
        let mut report = SyncReport::default();
        let t_now = ms(now);

        for post in posts {
            let source = format!("{FILE_PREFIX}{}", post.source);
            let date = ms(post.date);
            // A stored post whose file is gone (or never was a file) may have moved here.
            let orphan = |i: &usize| {
                let k = &known[*i];
                // A post whose own file is still there is not free to match another file.
                let held = k.source.starts_with(FILE_PREFIX)
                    && present.contains(&k.source)
                    && k.source != source;
                !claimed.contains(i) && !held
            };
            let matched = by_source
                .get(source.as_str())
                .copied()
                .filter(|i| !claimed.contains(i))
                .or_else(|| by_slug.get(post.slug.as_str()).copied().filter(&orphan))
                .or_else(|| {
                    (0..known.len()).find(|i| {
                        orphan(i)
                            && known[*i].source.starts_with(FILE_PREFIX)
                            && !present.contains(&known[*i].source)
                            && ((known[*i].title == post.title && known[*i].published_at == date)
                                || known[*i].content_hash == post.content_hash)
                    })
                });

            // Slugs are unique: a file may not take the slug of another stored post.
            let owner = matched.map(|i| known[i].id);
            if let Some(other) = slug_owner.get(post.slug.as_str()) {
                if Some(*other) != owner {
                    report.conflicts.push(format!(
                        "{}: slug `{}` belongs to another post; set a different `slug`",
                        post.source, post.slug
                    ));
                    if let Some(i) = matched {
                        claimed.insert(i);
                    }
                    continue;
                }
            }
            let tags = serde_json::to_string(&post.tags).unwrap_or_else(|_| "[]".into());
            match matched {
                Some(i) => {
                    claimed.insert(i);
                    let k = &known[i];
                    if k.content_hash == post.content_hash
                        && k.source == source
                        && k.slug == post.slug.as_str()
                        && !k.removed
                    {
                        report.unchanged += 1;
                        continue;
                    }
                    let result = sqlx::query(
                        "UPDATE posts SET slug = $1, source = $2, title = $3, summary = $4, \
                         content_html = $5, tags = $6, published_at = $7, updated_at = $8, \
                         draft = $9, email = $10, content_hash = $11, synced_at = $12, \
                         removed_at = NULL WHERE id = $13",
                    )
                    .bind(post.slug.as_str())
                    .bind(&source)
                    .bind(&post.title)
                    .bind(&post.summary)
                    .bind(&post.content_html)
                    .bind(&tags)
                    .bind(date)
                    .bind(post.updated.map(ms))
                    .bind(post.draft as i64)
                    .bind(post.email as i64)
                    .bind(&post.content_hash)
                    .bind(t_now)
                    .bind(k.id)
                    .execute(&mut *tx)
                    .await;
                    result.db("updating a post")?;
                    slug_owner.insert(post.slug.to_string(), k.id);
                    report.updated.push(post.slug.to_string());
                }
                None => {
                    let mut uid = post_uid(site_host, post.local_date, &post.slug);
                    if uids.contains(&uid) {
                        uid = format!("{uid}:{t_now}");
                    }
                    let result = sqlx::query(
                        "INSERT INTO posts (uid, slug, source, title, summary, content_html, tags, \
                         published_at, updated_at, draft, email, external_url, content_hash, \
                         announce, first_seen_at, synced_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13, $14, $14) \
                         RETURNING id",
                    )
                    .bind(&uid)
                    .bind(post.slug.as_str())
                    .bind(&source)
                    .bind(&post.title)
                    .bind(&post.summary)
                    .bind(&post.content_html)
                    .bind(&tags)
                    .bind(date)
                    .bind(post.updated.map(ms))
                    .bind(post.draft as i64)
                    .bind(post.email as i64)
                    .bind(&post.content_hash)
                    // Posts already published when the database was created are archive.
                    .bind((date > created_at) as i64)
                    .bind(t_now)
                    .fetch_one(&mut *tx)
                    .await;
                    let id: i64 = result
                        .db("inserting a post")?
                        .try_get(0)
                        .db("inserting a post")?;
                    uids.insert(uid);
                    slug_owner.insert(post.slug.to_string(), id);
                    report.new.push(post.slug.to_string());
                }
            }
        }

        for (i, k) in known.iter().enumerate() {
            if k.source.starts_with(FILE_PREFIX)
                && !k.removed
                && !claimed.contains(&i)
                && !present.contains(&k.source)
            {
                sqlx::query("UPDATE posts SET removed_at = $1 WHERE id = $2")
                    .bind(t_now)
                    .bind(k.id)
                    .execute(&mut *tx)
                    .await
                    .db("marking a removed post")?;
                report.removed.push(k.slug.clone());
            }
        }
        tx.commit().await.db("committing the post sync")?;
        Ok(report)
    }

    pub async fn post_by_slug(&self, slug: &str) -> Result<Option<PostRecord>, Error> {
        let sql = format!("SELECT {POST_COLUMNS} FROM posts WHERE slug = $1");
        sqlx::query(&sql)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .db("reading a post")?
            .map(|r| post_from_row(&r))
            .transpose()
            .db("decoding a post")
    }

    pub async fn post_by_id(&self, id: i64) -> Result<Option<PostRecord>, Error> {
        let sql = format!("SELECT {POST_COLUMNS} FROM posts WHERE id = $1");
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .db("reading a post")?
            .map(|r| post_from_row(&r))
            .transpose()
            .db("decoding a post")
    }

    /// Published posts, newest first: what the feeds and the archive show.
    pub async fn published_posts(
        &self,
        now: DateTime<Utc>,
        limit: Option<usize>,
    ) -> Result<Vec<PostRecord>, Error> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE draft = 0 AND removed_at IS NULL \
             AND published_at <= $1 ORDER BY published_at DESC, id DESC LIMIT $2"
        );
        sqlx::query(&sql)
            .bind(ms(now))
            .bind(limit.map_or(i64::MAX, |l| l as i64))
            .fetch_all(&self.pool)
            .await
            .db("reading published posts")?
            .iter()
            .map(post_from_row)
            .collect::<Result<_, _>>()
            .db("decoding posts")
    }

    /// Changes whenever what the site shows at `now` may have changed: a post was
    /// stored, removed or reached its publication time.
    pub async fn site_version(&self, now: DateTime<Utc>) -> Result<String, Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(synced_at), 0) AS synced, \
             COALESCE(MAX(removed_at), 0) AS removed, \
             COUNT(CASE WHEN published_at <= $1 THEN 1 END) AS live \
             FROM posts",
        )
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await
        .db("reading the site version")?;
        let n: i64 = row.try_get("n").db("reading the site version")?;
        let synced: i64 = row.try_get("synced").db("reading the site version")?;
        let removed: i64 = row.try_get("removed").db("reading the site version")?;
        let live: i64 = row.try_get("live").db("reading the site version")?;
        Ok(format!("{n}.{synced}.{removed}.{live}"))
    }

    /// Published posts that should be mailed and have no issue yet, oldest first.
    pub async fn posts_awaiting_issue(&self, now: DateTime<Utc>) -> Result<Vec<PostRecord>, Error> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts p WHERE announce = 1 AND draft = 0 AND email = 1 \
             AND removed_at IS NULL AND published_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM issue_posts i WHERE i.post_id = p.id) \
             ORDER BY published_at, id"
        );
        sqlx::query(&sql)
            .bind(ms(now))
            .fetch_all(&self.pool)
            .await
            .db("finding posts to send")?
            .iter()
            .map(post_from_row)
            .collect::<Result<_, _>>()
            .db("decoding posts")
    }
}

/// A post's permanent id, fixed when it is first seen: an RFC 4151 `tag:` URI from
/// the site's host, the post's date and its slug at that moment. It never changes
/// afterwards, whatever happens to the file, the slug or the site's URL.
pub(crate) fn post_uid(site_host: &str, local_date: chrono::NaiveDate, slug: &Slug) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
    format!(
        "tag:{site_host},{}:/posts/{}",
        local_date.format("%Y-%m-%d"),
        utf8_percent_encode(slug.as_str(), KEEP)
    )
}
