//! Issues (one per mailed post) and the enqueueing of their deliveries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{from_ms, Store};
use crate::domain::{DeliveryStatus, Frequency, IssueKind, IssueOrigin};
use crate::error::{DbContext, Error};

#[derive(Debug, Clone, serde::Serialize)]
pub struct IssueRecord {
    pub id: i64,
    /// The post that names the issue (a digest's newest post).
    pub post_id: i64,
    pub kind: IssueKind,
    pub subject: String,
    pub origin: IssueOrigin,
    pub created_at: DateTime<Utc>,
    /// The readers it is for: every-essay or digest readers (`None`: a welcome).
    pub frequency: Option<Frequency>,
}

/// What [`Store::create_issue`] did.
#[derive(Debug, Clone)]
pub struct IssueQueued {
    pub issue: IssueRecord,
    /// Deliveries added now.
    pub queued: u64,
    /// False when another process (or an earlier run) had created the issue.
    pub created: bool,
}

/// Counts of deliveries by status for one issue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssueStatus {
    pub issue_id: i64,
    pub kind: IssueKind,
    /// What names it in `deliveries`, `retry` and the dashboard: the slug of a
    /// post's own issue, `~ID` for a digest or a welcome.
    pub key: String,
    pub slug: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub total: i64,
    pub counts: BTreeMap<DeliveryStatus, i64>,
    /// Complaints per message the relay took (`sent`, `bounced`, `complained`), in
    /// percent: Gmail and Yahoo ask senders to stay below 0.3 %.
    pub complaint_rate: f64,
    /// Deliveries per relay that took or refused them, and their statuses
    /// (empty for the file transport).
    pub by_relay: BTreeMap<String, BTreeMap<DeliveryStatus, i64>>,
}

/// Gmail's and Yahoo's line for complaints, in percent (their 2024 sender rules).
pub const COMPLAINT_RATE_LIMIT: f64 = 0.3;

impl IssueStatus {
    fn finish(&mut self) {
        let n = |s| self.counts.get(&s).copied().unwrap_or(0);
        let taken =
            n(DeliveryStatus::Sent) + n(DeliveryStatus::Bounced) + n(DeliveryStatus::Complained);
        self.complaint_rate = if taken == 0 {
            0.0
        } else {
            n(DeliveryStatus::Complained) as f64 * 100.0 / taken as f64
        };
    }
}

/// How an issue is named where people type or click: its post's slug for a
/// post's own issue, `~ID` for a digest or a welcome (a slug never has a `~`).
pub(super) const ISSUE_KEY: &str = "CASE WHEN i.kind = 'post' THEN p.slug ELSE '~' || i.id END";

/// The id in an issue key of the form `~ID`.
pub fn issue_id_in_key(key: &str) -> Option<i64> {
    key.strip_prefix('~')?.parse().ok()
}

pub(super) const ISSUE_COLUMNS: &str = "id, post_id, kind, subject, origin, created_at, frequency";

pub(super) fn issue_from_row(row: &AnyRow) -> Result<IssueRecord, sqlx::Error> {
    let decode = |e: String| sqlx::Error::Decode(e.into());
    Ok(IssueRecord {
        id: row.try_get("id")?,
        post_id: row.try_get("post_id")?,
        kind: row.try_get::<String, _>("kind")?.parse().map_err(decode)?,
        subject: row.try_get("subject")?,
        origin: row
            .try_get::<String, _>("origin")?
            .parse()
            .map_err(decode)?,
        created_at: from_ms(row.try_get("created_at")?),
        frequency: row
            .try_get::<Option<String>, _>("frequency")?
            .map(|f| f.parse())
            .transpose()
            .map_err(decode)?,
    })
}

impl Store {
    /// The posts of an issue, oldest first.
    pub async fn issue_post_ids(&self, issue_id: i64) -> Result<Vec<i64>, Error> {
        sqlx::query_scalar(
            "SELECT ip.post_id FROM issue_posts ip JOIN posts p ON p.id = ip.post_id \
             WHERE ip.issue_id = $1 ORDER BY p.published_at, p.id",
        )
        .bind(issue_id)
        .fetch_all(&self.pool)
        .await
        .db("reading the posts of an issue")
    }

    pub async fn issue_by_id(&self, id: i64) -> Result<Option<IssueRecord>, Error> {
        self.issue_where("id = $1", id).await
    }

    /// The issue a post is known by: its own, or else the first that carried it
    /// (a digest or a welcome).
    pub async fn issue_for_post(&self, post_id: i64) -> Result<Option<IssueRecord>, Error> {
        self.issue_where(
            "id = (SELECT i.id FROM issues i JOIN issue_posts ip ON ip.issue_id = i.id \
             WHERE ip.post_id = $1 ORDER BY CASE WHEN i.kind = 'post' THEN 0 ELSE 1 END, i.id LIMIT 1)",
            post_id,
        )
        .await
    }

    async fn issue_where(
        &self,
        condition: &'static str,
        value: i64,
    ) -> Result<Option<IssueRecord>, Error> {
        let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE {condition}");
        sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .db("reading an issue")?
            .map(|r| issue_from_row(&r))
            .transpose()
            .db("decoding an issue")
    }

    /// Delivery counts per status for every issue (or the one of `post_slug`), newest first.
    pub async fn issue_statuses(&self, post_slug: Option<&str>) -> Result<Vec<IssueStatus>, Error> {
        let sql = format!(
            "SELECT i.id, i.kind, {ISSUE_KEY} AS issue_key, p.slug, p.title, i.created_at, d.status, d.relay, COUNT(d.id) AS n \
             FROM issues i JOIN posts p ON p.id = i.post_id \
             LEFT JOIN deliveries d ON d.issue_id = i.id \
             WHERE ($1 = '' OR p.slug = $1 OR {ISSUE_KEY} = $1) \
             GROUP BY i.id, i.kind, p.slug, p.title, i.created_at, d.status, d.relay \
             ORDER BY i.created_at DESC, i.id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(post_slug.unwrap_or(""))
            .fetch_all(&self.pool)
            .await
            .db("counting deliveries")?;
        let mut out: Vec<IssueStatus> = Vec::new();
        for row in rows {
            let id: i64 = row.try_get("id").db("counting deliveries")?;
            if out.last().map(|s| s.issue_id) != Some(id) {
                let counts = DeliveryStatus::ALL.iter().map(|s| (*s, 0)).collect();
                let kind: String = row.try_get("kind").db("counting deliveries")?;
                out.push(IssueStatus {
                    issue_id: id,
                    kind: kind.parse().map_err(Error::Internal)?,
                    key: row.try_get("issue_key").db("counting deliveries")?,
                    slug: row.try_get("slug").db("counting deliveries")?,
                    title: row.try_get("title").db("counting deliveries")?,
                    created_at: from_ms(row.try_get("created_at").db("counting deliveries")?),
                    total: 0,
                    counts,
                    complaint_rate: 0.0,
                    by_relay: BTreeMap::new(),
                });
            }
            let status: Option<String> = row.try_get("status").db("counting deliveries")?;
            let n: i64 = row.try_get("n").db("counting deliveries")?;
            if let (Some(status), Some(entry)) = (status, out.last_mut()) {
                let status: DeliveryStatus = status.parse().map_err(Error::Internal)?;
                *entry.counts.entry(status).or_default() += n;
                entry.total += n;
                let relay: Option<String> = row.try_get("relay").db("counting deliveries")?;
                if let Some(relay) = relay {
                    *entry
                        .by_relay
                        .entry(relay)
                        .or_default()
                        .entry(status)
                        .or_default() += n;
                }
            }
        }
        out.iter_mut().for_each(IssueStatus::finish);
        Ok(out)
    }
}
