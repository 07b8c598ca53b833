//! What the author's dashboard reads, each query served by an index (migration
//! 0007): sessions, counts, growth, keyset pages of the log and the list.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::deliveries::log_row;
use super::issues::ISSUE_KEY;
use super::subscribers::subscriber_from_row;
use super::subscribers::SUBSCRIBER_COLUMNS;
use super::{from_ms, ms, DeliveryLogRow, Store, Subscriber};
use crate::domain::{DeliveryStatus, SubscriberStatus};
use crate::error::{DbContext, Error};

/// The columns `log_row` reads.
const LOG_COLUMNS: &str = "d.id, d.subscriber_id, s.email, d.status, d.attempts, d.last_error, \
     d.smtp_reply, d.relay, d.updated_at, d.sent_at, d.next_attempt_at";

/// New, confirmed, unsubscribed and bounced subscribers on one day.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct DayCounts {
    pub new: i64,
    pub confirmed: i64,
    pub unsubscribed: i64,
    pub bounced: i64,
}

/// A post as the dashboard lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PostRow {
    pub slug: String,
    pub title: String,
    pub published_at: DateTime<Utc>,
    pub draft: bool,
    pub email: bool,
    /// Taken from the upstream feed.
    pub imported: bool,
    /// When its issue was created (mailed or being mailed).
    pub issued_at: Option<DateTime<Utc>>,
}

/// One delivery to a subscriber, with its post.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubscriberDelivery {
    /// The issue's key (a post's slug, or `~ID`).
    pub slug: String,
    /// The issue's subject.
    pub title: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Filters for one page of an issue's delivery log.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub status: Option<DeliveryStatus>,
    /// The start of an address (its lower-case key).
    pub email_prefix: Option<String>,
}

impl Store {
    /// Starts a session; sessions idle longer than `idle`, or older than
    /// `lifetime`, are cleared out here, once per sign-in rather than on every
    /// request.
    pub async fn create_session(
        &self,
        id: &str,
        csrf: &str,
        now: DateTime<Utc>,
        idle: chrono::Duration,
        lifetime: chrono::Duration,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM admin_sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(ms(now - idle))
            .bind(ms(now - lifetime))
            .execute(&self.pool)
            .await
            .db("ending old sessions")?;
        sqlx::query(
            "INSERT INTO admin_sessions (id, csrf, created_at, last_seen_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(id)
        .bind(csrf)
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .db("starting a session")?;
        Ok(())
    }

    /// The CSRF token of a live session, which is kept alive: one statement per
    /// request. A session idle longer than `idle`, or started longer than
    /// `lifetime` ago, is ended.
    pub async fn touch_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
        idle: chrono::Duration,
        lifetime: chrono::Duration,
    ) -> Result<Option<String>, Error> {
        let csrf: Option<String> = sqlx::query_scalar(
            "UPDATE admin_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at >= $3 \
             AND created_at >= $4 RETURNING csrf",
        )
        .bind(id)
        .bind(ms(now))
        .bind(ms(now - idle))
        .bind(ms(now - lifetime))
        .fetch_optional(&self.pool)
        .await
        .db("reading a session")?;
        if csrf.is_none() {
            // Expired (or unknown): make sure it cannot come back.
            self.end_session(id).await?;
        }
        Ok(csrf)
    }

    pub async fn end_session(&self, id: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM admin_sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .db("ending a session")?;
        Ok(())
    }

    /// Subscribers per status (index `subscribers_status`).
    pub async fn subscriber_counts(&self) -> Result<Vec<(SubscriberStatus, i64)>, Error> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .db("counting subscribers")?;
        let mut out = Vec::new();
        for row in rows {
            let status: String = row.try_get("status").db("counting subscribers")?;
            out.push((
                status.parse().map_err(Error::Internal)?,
                row.try_get("n").db("counting subscribers")?,
            ));
        }
        Ok(out)
    }

    /// `days` days of growth from `start` (a local midnight), day by day, from
    /// the hourly counts of migration 0007 (new subscribers counted by the
    /// store per batch, changes by triggers).
    pub async fn growth(&self, start: DateTime<Utc>, days: usize) -> Result<Vec<DayCounts>, Error> {
        let mut out = vec![DayCounts::default(); days];
        let from = ms(start);
        let rows = sqlx::query(
            "SELECT (hour * 3600000 - $1) / 86400000 AS day, series, CAST(SUM(n) AS BIGINT) AS n \
             FROM subscriber_growth WHERE hour >= $2 \
             GROUP BY (hour * 3600000 - $1) / 86400000, series",
        )
        .bind(from)
        .bind(from.div_euclid(3_600_000))
        .fetch_all(&self.pool)
        .await
        .db("counting growth")?;
        for row in rows {
            let day: i64 = row.try_get("day").db("counting growth")?;
            let series: String = row.try_get("series").db("counting growth")?;
            let n: i64 = row.try_get("n").db("counting growth")?;
            let Some(d) = usize::try_from(day).ok().and_then(|i| out.get_mut(i)) else {
                continue;
            };
            match series.as_str() {
                "new" => d.new += n,
                "confirmed" => d.confirmed += n,
                "unsubscribed" => d.unsubscribed += n,
                "bounced" => d.bounced += n,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Deliveries of one issue per status, from the index alone.
    pub async fn issue_counts(&self, issue_id: i64) -> Result<Vec<(DeliveryStatus, i64)>, Error> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE issue_id = $1 GROUP BY status",
        )
        .bind(issue_id)
        .fetch_all(&self.pool)
        .await
        .db("counting an issue's deliveries")?;
        let mut out = Vec::new();
        for row in rows {
            let status: String = row.try_get("status").db("counting deliveries")?;
            out.push((
                status.parse().map_err(Error::Internal)?,
                row.try_get("n").db("counting deliveries")?,
            ));
        }
        Ok(out)
    }

    /// The newest issues: id, key (see [`super::issues::ISSUE_KEY`]), subject, created.
    pub async fn latest_issues(
        &self,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, DateTime<Utc>)>, Error> {
        let sql = format!(
            "SELECT i.id, {ISSUE_KEY} AS issue_key, i.subject, i.created_at FROM issues i \
             JOIN posts p ON p.id = i.post_id ORDER BY i.created_at DESC, i.id DESC LIMIT $1"
        );
        let rows = sqlx::query(&sql)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .db("listing issues")?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("issue_key")?,
                    r.try_get("subject")?,
                    from_ms(r.try_get("created_at")?),
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .db("listing issues")
    }

    /// One page of an issue's log in id order after `after_id` (index
    /// `deliveries_issue_status` with a status, the subscriber's email key
    /// with an address, else `deliveries_issue`).
    pub async fn log_page(
        &self,
        issue_id: i64,
        filter: &LogFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryLogRow>, Error> {
        let status = filter.status.map(|s| s.as_str()).unwrap_or("");
        let rows = match &filter.email_prefix {
            Some(prefix) => {
                let (from, to) = prefix_range(prefix);
                sqlx::query(&format!(
                    "SELECT {LOG_COLUMNS} FROM subscribers s JOIN deliveries d \
                     ON d.subscriber_id = s.id AND d.issue_id = $1 \
                     WHERE s.email_key >= $2 AND s.email_key < $3 AND ($4 = '' OR d.status = $4) \
                     AND d.id > $5 ORDER BY d.id LIMIT $6"
                ))
                .bind(issue_id)
                .bind(from)
                .bind(to)
                .bind(status)
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            None if !status.is_empty() => {
                sqlx::query(&format!(
                    "SELECT {LOG_COLUMNS} FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
                     WHERE d.issue_id = $1 AND d.status = $2 AND d.id > $3 ORDER BY d.id LIMIT $4"
                ))
                .bind(issue_id)
                .bind(status)
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {LOG_COLUMNS} FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
                     WHERE d.issue_id = $1 AND d.id > $2 ORDER BY d.id LIMIT $3"
                ))
                .bind(issue_id)
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .db("reading a page of the log")?;
        rows.iter().map(log_row).collect()
    }

    /// One delivery of the log, by id.
    pub async fn log_row_by_id(
        &self,
        delivery_id: i64,
    ) -> Result<Option<(i64, DeliveryLogRow)>, Error> {
        let row = sqlx::query(&format!(
            "SELECT d.issue_id, {LOG_COLUMNS} FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.id = $1"
        ))
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await
        .db("reading a delivery")?;
        match row {
            Some(r) => Ok(Some((
                r.try_get("issue_id").db("reading a delivery")?,
                log_row(&r)?,
            ))),
            None => Ok(None),
        }
    }

    /// Subscribers whose address starts with `prefix` (or all), of a status,
    /// in id order after `after_id`.
    pub async fn search_subscribers(
        &self,
        prefix: Option<&str>,
        status: Option<SubscriberStatus>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Subscriber>, Error> {
        let Some(prefix) = prefix else {
            return self.subscribers_page(status, after_id, limit).await;
        };
        let (from, to) = prefix_range(prefix);
        let sql = format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers \
             WHERE email_key >= $1 AND email_key < $2 AND ($3 = '' OR status = $3) \
             AND status <> 'forgotten' AND id > $4 ORDER BY id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .bind(status.map(|s| s.as_str()).unwrap_or(""))
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .db("searching subscribers")?;
        rows.iter()
            .map(subscriber_from_row)
            .collect::<Result<_, _>>()
            .db("decoding subscribers")
    }

    /// Every delivery to one subscriber, newest first (index `deliveries_subscriber`).
    pub async fn deliveries_to(
        &self,
        subscriber_id: i64,
    ) -> Result<Vec<SubscriberDelivery>, Error> {
        let sql = format!(
            "SELECT {ISSUE_KEY} AS issue_key, i.subject, d.status, d.attempts, d.last_error, d.updated_at \
             FROM deliveries d JOIN issues i ON i.id = d.issue_id JOIN posts p ON p.id = i.post_id \
             WHERE d.subscriber_id = $1 ORDER BY d.id DESC LIMIT 500"
        );
        let rows = sqlx::query(&sql)
            .bind(subscriber_id)
            .fetch_all(&self.pool)
            .await
            .db("reading a subscriber's deliveries")?;
        let ctx = "reading a subscriber's deliveries";
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status").db(ctx)?;
                Ok(SubscriberDelivery {
                    slug: r.try_get("issue_key").db(ctx)?,
                    title: r.try_get("subject").db(ctx)?,
                    status: status.parse().map_err(Error::Internal)?,
                    attempts: r.try_get("attempts").db(ctx)?,
                    last_error: r.try_get("last_error").db(ctx)?,
                    updated_at: from_ms(r.try_get("updated_at").db(ctx)?),
                })
            })
            .collect()
    }

    /// Every post that is not removed, newest first, with when it was issued.
    pub async fn post_rows(&self) -> Result<Vec<PostRow>, Error> {
        let rows = sqlx::query(
            "SELECT p.slug, p.title, p.published_at, p.draft, p.email, p.external_url, p.planned_at AS issued_at \
             FROM posts p \
             WHERE p.removed_at IS NULL ORDER BY p.published_at DESC, p.id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .db("listing posts")?;
        let ctx = "listing posts";
        rows.iter()
            .map(|r| {
                Ok(PostRow {
                    slug: r.try_get("slug").db(ctx)?,
                    title: r.try_get("title").db(ctx)?,
                    published_at: from_ms(r.try_get("published_at").db(ctx)?),
                    draft: r.try_get::<i64, _>("draft").db(ctx)? != 0,
                    email: r.try_get::<i64, _>("email").db(ctx)? != 0,
                    imported: r
                        .try_get::<Option<String>, _>("external_url")
                        .db(ctx)?
                        .is_some(),
                    issued_at: r
                        .try_get::<Option<i64>, _>("issued_at")
                        .db(ctx)?
                        .map(from_ms),
                })
            })
            .collect()
    }
}

/// The key range of the addresses that start with `prefix`: `[prefix, prefix + U+FFFF)`.
fn prefix_range(prefix: &str) -> (String, String) {
    let from = prefix.trim().to_lowercase();
    let to = format!("{from}\u{ffff}");
    (from, to)
}
