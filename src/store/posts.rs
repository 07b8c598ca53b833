//! Posts and their identity. A post's identity (`uid`) is fixed when it is first
//! seen; [`super::matching`] decides which stored post each file is.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::matching::{self, Known, Match};
use super::{from_ms, ms, Store};
use crate::domain::{FilePost, Post, PostSource, Slug};
use crate::error::{DbContext, Error};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SyncSummary {
    pub new: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    /// Files that could not be stored (for example a slug held by another post).
    pub conflicts: Vec<String>,
}

pub(super) const POST_COLUMNS: &str = "id, uid, slug, source, title, summary, content_html, tags, \
     published_at, updated_at, draft, email, external_url, announce, removed_at, synced_at";

fn decode_err(e: String) -> sqlx::Error {
    sqlx::Error::Decode(e.into())
}

pub(super) fn post_from_row(row: &AnyRow) -> Result<Post, sqlx::Error> {
    let slug: String = row.try_get("slug")?;
    let source: String = row.try_get("source")?;
    let tags: String = row.try_get("tags")?;
    Ok(Post {
        id: row.try_get("id")?,
        uid: row.try_get("uid")?,
        slug: Slug::parse(&slug).map_err(decode_err)?,
        source: PostSource::decode(&source).map_err(decode_err)?,
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

pub(super) fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

/// A post to insert, from a file or a feed entry.
pub(super) struct NewPost<'a> {
    pub uid: &'a str,
    pub slug: &'a Slug,
    pub source: &'a PostSource,
    pub title: &'a str,
    pub summary: &'a str,
    pub content_html: &'a str,
    pub tags: &'a [String],
    pub published_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub draft: bool,
    pub email: bool,
    pub external_url: Option<&'a str>,
    pub content_hash: &'a str,
    pub announce: bool,
}

/// The one INSERT of a post; returns its id.
pub(super) async fn insert_post(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    post: &NewPost<'_>,
    now: i64,
) -> Result<i64, Error> {
    sqlx::query(
        "INSERT INTO posts (uid, slug, source, title, summary, content_html, tags, \
         published_at, updated_at, draft, email, external_url, content_hash, \
         announce, first_seen_at, synced_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) \
         RETURNING id",
    )
    .bind(post.uid)
    .bind(post.slug.as_str())
    .bind(post.source.encode())
    .bind(post.title)
    .bind(post.summary)
    .bind(post.content_html)
    .bind(tags_json(post.tags))
    .bind(ms(post.published_at))
    .bind(post.updated_at.map(ms))
    .bind(post.draft as i64)
    .bind(post.email as i64)
    .bind(post.external_url)
    .bind(post.content_hash)
    .bind(post.announce as i64)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .db("inserting a post")?
    .try_get(0)
    .db("inserting a post")
}

impl Store {
    /// Brings the posts table in line with the files just read. `unreadable` names
    /// files that exist but could not be parsed: their stored posts are left untouched.
    pub async fn sync_posts(
        &self,
        files: &[FilePost],
        unreadable: &[String],
        site_host: &str,
        now: DateTime<Utc>,
    ) -> Result<SyncSummary, Error> {
        let created_at = self.created_at().await?;
        let mut tx = self.pool.begin().await.db("starting the post sync")?;
        super::lock(&mut tx, "sync").await?;
        let rows = sqlx::query(
            "SELECT id, uid, slug, source, title, published_at, content_hash, removed_at FROM posts",
        )
        .fetch_all(&mut *tx)
        .await
        .db("reading posts")?;
        let mut known = Vec::with_capacity(rows.len());
        let mut uids = std::collections::HashSet::with_capacity(rows.len());
        for row in &rows {
            let source: String = row.try_get("source").db("reading posts")?;
            uids.insert(row.try_get::<String, _>("uid").db("reading posts")?);
            known.push(Known {
                id: row.try_get("id").db("reading posts")?,
                slug: row.try_get("slug").db("reading posts")?,
                source: PostSource::decode(&source).map_err(Error::Internal)?,
                title: row.try_get("title").db("reading posts")?,
                published_at: row.try_get("published_at").db("reading posts")?,
                content_hash: row.try_get("content_hash").db("reading posts")?,
                removed: row
                    .try_get::<Option<i64>, _>("removed_at")
                    .db("reading posts")?
                    .is_some(),
            });
        }

        let plan = matching::plan(&known, files, unreadable);
        let mut report = SyncSummary::default();
        let t_now = ms(now);
        for (file, decision) in files.iter().zip(&plan.files) {
            let source = PostSource::File(file.path.clone());
            match *decision {
                Match::Unchanged(_) => report.unchanged += 1,
                Match::SlugTaken => report.conflicts.push(format!(
                    "{}: slug `{}` belongs to another post; set a different `slug`",
                    file.path, file.slug
                )),
                Match::Changed(i) => {
                    sqlx::query(
                        "UPDATE posts SET slug = $1, source = $2, title = $3, summary = $4, \
                         content_html = $5, tags = $6, published_at = $7, updated_at = $8, \
                         draft = $9, email = $10, content_hash = $11, synced_at = $12, \
                         removed_at = NULL WHERE id = $13",
                    )
                    .bind(file.slug.as_str())
                    .bind(source.encode())
                    .bind(&file.title)
                    .bind(&file.summary)
                    .bind(&file.content_html)
                    .bind(tags_json(&file.tags))
                    .bind(ms(file.date))
                    .bind(file.updated.map(ms))
                    .bind(file.draft as i64)
                    .bind(file.email as i64)
                    .bind(&file.content_hash)
                    .bind(t_now)
                    .bind(known[i].id)
                    .execute(&mut *tx)
                    .await
                    .db("updating a post")?;
                    report.updated.push(file.slug.to_string());
                }
                Match::New => {
                    let mut uid = post_uid(site_host, file.local_date, &file.slug);
                    if uids.contains(&uid) {
                        uid = format!("{uid}:{t_now}");
                    }
                    let post = NewPost {
                        uid: &uid,
                        slug: &file.slug,
                        source: &source,
                        title: &file.title,
                        summary: &file.summary,
                        content_html: &file.content_html,
                        tags: &file.tags,
                        published_at: file.date,
                        updated_at: file.updated,
                        draft: file.draft,
                        email: file.email,
                        external_url: None,
                        content_hash: &file.content_hash,
                        // Posts already published when the database was created are archive.
                        announce: file.date > created_at,
                    };
                    insert_post(&mut tx, &post, t_now).await?;
                    uids.insert(uid);
                    report.new.push(file.slug.to_string());
                }
            }
        }
        for i in plan.removed {
            sqlx::query("UPDATE posts SET removed_at = $1 WHERE id = $2")
                .bind(t_now)
                .bind(known[i].id)
                .execute(&mut *tx)
                .await
                .db("marking a removed post")?;
            report.removed.push(known[i].slug.clone());
        }
        tx.commit().await.db("committing the post sync")?;
        Ok(report)
    }

    /// Every post's slug, a removed file's included.
    pub async fn post_slugs(&self) -> Result<Vec<String>, Error> {
        sqlx::query_scalar("SELECT slug FROM posts")
            .fetch_all(&self.pool)
            .await
            .db("reading post slugs")
    }

    pub async fn post_by_slug(&self, slug: &str) -> Result<Option<Post>, Error> {
        self.post_where("slug = $1", slug.to_string()).await
    }

    pub async fn post_by_id(&self, id: i64) -> Result<Option<Post>, Error> {
        self.post_where("id = $1", id).await
    }

    async fn post_where<T>(&self, condition: &str, value: T) -> Result<Option<Post>, Error>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        let sql = format!("SELECT {POST_COLUMNS} FROM posts WHERE {condition}");
        sqlx::query(&sql)
            .bind(value)
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
    ) -> Result<Vec<Post>, Error> {
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
