//! Upstream feeds and the entries seen in them.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::posts::{insert_post, NewPost};
use super::{from_ms, lock, ms, Store};
use crate::domain::{FeedEntry, FetchStatus, PostSource, Slug};
use crate::error::{DbContext, Error};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Source {
    pub id: i64,
    pub url: String,
    pub fetch_url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub first_fetched_at: Option<DateTime<Utc>>,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub last_status: Option<FetchStatus>,
    pub last_error: Option<String>,
    pub entries: i64,
}

/// What storing one fetch's entries did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct EntriesSummary {
    pub new: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    /// True when this was the source's first successful fetch (nothing announced).
    pub first_fetch: bool,
}

const SOURCE_COLUMNS: &str =
    "s.id, s.url, s.fetch_url, s.etag, s.last_modified, s.first_fetched_at, \
     s.last_fetch_at, s.last_status, s.last_error, \
     (SELECT COUNT(DISTINCT e.post_id) FROM source_entries e WHERE e.source_id = s.id) AS entries";

fn source_from_row(row: &AnyRow) -> Result<Source, sqlx::Error> {
    let status: Option<String> = row.try_get("last_status")?;
    Ok(Source {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        fetch_url: row.try_get("fetch_url")?,
        etag: row.try_get("etag")?,
        last_modified: row.try_get("last_modified")?,
        first_fetched_at: row
            .try_get::<Option<i64>, _>("first_fetched_at")?
            .map(from_ms),
        last_fetch_at: row.try_get::<Option<i64>, _>("last_fetch_at")?.map(from_ms),
        last_status: status
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        last_error: row.try_get("last_error")?,
        entries: row.try_get("entries")?,
    })
}

impl Store {
    /// The source for a configured URL, created on first use.
    pub async fn source(&self, url: &str, now: DateTime<Utc>) -> Result<Source, Error> {
        sqlx::query(
            "INSERT INTO sources (url, fetch_url, created_at) VALUES ($1, $1, $2) ON CONFLICT (url) DO NOTHING",
        )
        .bind(url)
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .db("adding a source")?;
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources s WHERE s.url = $1");
        let row = sqlx::query(&sql)
            .bind(url)
            .fetch_one(&self.pool)
            .await
            .db("reading a source")?;
        source_from_row(&row).db("decoding a source")
    }

    pub async fn sources(&self) -> Result<Vec<Source>, Error> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources s ORDER BY s.id");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .db("listing sources")?;
        rows.iter()
            .map(source_from_row)
            .collect::<Result<_, _>>()
            .db("decoding sources")
    }

    /// Records a fetch that changed nothing (304) or failed: the stored state
    /// (validators, entries) stays as it was.
    pub async fn record_fetch(
        &self,
        source_id: i64,
        status: FetchStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE sources SET last_fetch_at = $1, last_status = $2, last_error = $3 WHERE id = $4")
            .bind(ms(now))
            .bind(status.as_str())
            .bind(error)
            .bind(source_id)
            .execute(&self.pool)
            .await
            .db("recording a fetch")?;
        Ok(())
    }

    /// Stores one good fetch in one transaction: its entries as posts (new ones,
    /// or updates of known ones: never a second post for an entry), then the
    /// validators for the next conditional request. On the source's first fetch,
    /// every entry is archive: it goes to the feeds, never out by email.
    #[allow(clippy::too_many_arguments)]
    pub async fn store_fetch(
        &self,
        source_id: i64,
        entries: &[FeedEntry],
        etag: Option<&str>,
        last_modified: Option<&str>,
        fetch_url: &str,
        site_host: &str,
        tz: chrono_tz::Tz,
        now: DateTime<Utc>,
    ) -> Result<EntriesSummary, Error> {
        let t = ms(now);
        let mut tx = self.pool.begin().await.db("storing a fetch")?;
        // The same lock as the posts/ sync: overlapping ticks take turns.
        lock(&mut tx, "sync").await?;
        let first: Option<i64> =
            sqlx::query_scalar("SELECT first_fetched_at FROM sources WHERE id = $1")
                .bind(source_id)
                .fetch_one(&mut *tx)
                .await
                .db("reading a source")?;
        let mut report = EntriesSummary {
            first_fetch: first.is_none(),
            ..Default::default()
        };
        // Entries dated more than a day before the first fetch are old posts that
        // surfaced late (a feed window that grew): they are not news.
        let announce_after = first.unwrap_or(t) - 86_400_000;
        // Read once, when the first new entry needs a slug.
        let mut slugs: Option<TakenSlugs> = None;

        for entry in entries {
            let known: Option<(i64, String)> = {
                // The first entry seen with this key or this link. Two lookups, one per
                // index: with OR, SQLite reads every entry of the source, each time.
                let row = sqlx::query(
                    "SELECT e.post_id, p.content_hash FROM source_entries e JOIN posts p ON p.id = e.post_id \
                     WHERE e.id = (SELECT MIN(m.id) FROM ( \
                       SELECT id FROM source_entries WHERE source_id = $1 AND entry_key = $2 \
                       UNION ALL SELECT id FROM source_entries WHERE source_id = $1 AND link = $3) AS m)",
                )
                .bind(source_id)
                .bind(&entry.key)
                .bind(entry.link.as_deref())
                .fetch_optional(&mut *tx)
                .await
                .db("looking up an entry")?;
                match row {
                    Some(r) => Some((
                        r.try_get(0).db("reading an entry")?,
                        r.try_get(1).db("reading an entry")?,
                    )),
                    None => None,
                }
            };
            let post_id = match known {
                Some((post_id, hash)) => {
                    if hash == entry.content_hash {
                        report.unchanged += 1;
                    } else {
                        sqlx::query(
                            "UPDATE posts SET title = $1, summary = $2, content_html = $3, tags = $4, \
                             updated_at = $5, external_url = $6, content_hash = $7, synced_at = $8 WHERE id = $9",
                        )
                        .bind(&entry.title)
                        .bind(&entry.summary)
                        .bind(&entry.content_html)
                        .bind(super::posts::tags_json(&entry.tags))
                        .bind(entry.updated.map(ms))
                        .bind(entry.link.as_deref())
                        .bind(&entry.content_hash)
                        .bind(t)
                        .bind(post_id)
                        .execute(&mut *tx)
                        .await
                        .db("updating an imported post")?;
                        report.updated.push(entry.title.clone());
                    }
                    post_id
                }
                None => {
                    let slug = match &mut slugs {
                        Some(slugs) => slugs.claim(&entry.slug)?,
                        None => slugs
                            .insert(TakenSlugs::load(&mut tx).await?)
                            .claim(&entry.slug)?,
                    };
                    let local_date = entry.published.with_timezone(&tz).date_naive();
                    let uid = super::posts::post_uid(site_host, local_date, &slug);
                    let post = NewPost {
                        uid: &uid,
                        slug: &slug,
                        source: &PostSource::Feed {
                            source_id,
                            key: entry.key.clone(),
                        },
                        title: &entry.title,
                        summary: &entry.summary,
                        content_html: &entry.content_html,
                        tags: &entry.tags,
                        published_at: entry.published,
                        updated_at: entry.updated,
                        draft: false,
                        email: true,
                        external_url: entry.link.as_deref(),
                        content_hash: &entry.content_hash,
                        announce: !report.first_fetch && ms(entry.published) >= announce_after,
                    };
                    let id = insert_post(&mut tx, &post, t).await?;
                    report.new.push(slug.to_string());
                    id
                }
            };
            // Remember this key (a changed guid becomes a second key of the same post).
            sqlx::query(
                "INSERT INTO source_entries (source_id, entry_key, link, post_id, first_seen_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_id, entry_key) DO NOTHING",
            )
            .bind(source_id)
            .bind(&entry.key)
            .bind(entry.link.as_deref())
            .bind(post_id)
            .bind(t)
            .execute(&mut *tx)
            .await
            .db("remembering an entry")?;
        }
        sqlx::query(
            "UPDATE sources SET etag = $1, last_modified = $2, fetch_url = $3, \
             first_fetched_at = COALESCE(first_fetched_at, $4), last_fetch_at = $4, \
             last_status = $5, last_error = NULL WHERE id = $6",
        )
        .bind(etag)
        .bind(last_modified)
        .bind(fetch_url)
        .bind(t)
        .bind(FetchStatus::Ok.as_str())
        .bind(source_id)
        .execute(&mut *tx)
        .await
        .db("recording a fetch")?;
        tx.commit().await.db("storing a fetch")?;
        Ok(report)
    }
}

/// The slugs of every post, read once per fetch, so that making a slug unique
/// costs no query per candidate. The sync lock keeps them current meanwhile.
struct TakenSlugs {
    taken: HashSet<String>,
    /// For each wanted slug, the suffix to try next: entries that all want the
    /// same slug take `-2`, `-3`, … without trying the lower ones again.
    next: HashMap<String, u32>,
}

impl TakenSlugs {
    async fn load(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<TakenSlugs, Error> {
        let taken = sqlx::query_scalar::<_, String>("SELECT slug FROM posts")
            .fetch_all(&mut **tx)
            .await
            .db("reading slugs")?
            .into_iter()
            .collect();
        Ok(TakenSlugs {
            taken,
            next: HashMap::new(),
        })
    }

    /// `wanted`, or `wanted-2`, `wanted-3`… if another post has it; taken from then on.
    fn claim(&mut self, wanted: &Slug) -> Result<Slug, Error> {
        let mut candidate = wanted.clone();
        let next = self.next.entry(wanted.to_string()).or_insert(2);
        while self.taken.contains(candidate.as_str()) {
            candidate = Slug::parse(&format!("{wanted}-{next}")).map_err(Error::Internal)?;
            *next += 1;
        }
        self.taken.insert(candidate.to_string());
        Ok(candidate)
    }
}
