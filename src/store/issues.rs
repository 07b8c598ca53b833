//! Issues (one per mailed post) and the enqueueing of their deliveries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{from_ms, lock, ms, Store};
use crate::domain::{DeliveryStatus, IssueKind, IssueOrigin};
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
    pub slug: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub total: i64,
    pub counts: BTreeMap<DeliveryStatus, i64>,
    /// Complaints per message the relay took (`sent`, `bounced`, `complained`), in
    /// percent: Gmail and Yahoo ask senders to stay below 0.3 %.
    pub complaint_rate: f64,
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

const ISSUE_COLUMNS: &str = "id, post_id, kind, subject, origin, created_at";

fn issue_from_row(row: &AnyRow) -> Result<IssueRecord, sqlx::Error> {
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
    })
}

impl Store {
    /// Creates an issue of `post_ids` (one post, or a digest's posts oldest first)
    /// and queues one delivery per active subscriber, all in one transaction. The
    /// unique keys on `issues.post_id`, `issue_posts.post_id` and
    /// `(issue_id, subscriber_id)` make this safe from several processes at once: a
    /// post is mailed in one issue at most. Returns the issue (an existing one if
    /// its lead post already has one), how many deliveries were queued now, and
    /// whether this call created it.
    pub async fn create_issue(
        &self,
        post_ids: &[i64],
        subject: &str,
        kind: IssueKind,
        origin: IssueOrigin,
        now: DateTime<Utc>,
    ) -> Result<IssueQueued, Error> {
        let mut made = self
            .create_issues(
                &[(post_ids.to_vec(), subject.to_string())],
                kind,
                origin,
                now,
            )
            .await?;
        made.pop()
            .ok_or_else(|| Error::Internal("no issue was created".into()))
    }

    /// [`Store::create_issue`] for several issues in one transaction: a tick that
    /// finds many new posts pays for one commit, not one each.
    pub async fn create_issues(
        &self,
        issues: &[(Vec<i64>, String)],
        kind: IssueKind,
        origin: IssueOrigin,
        now: DateTime<Utc>,
    ) -> Result<Vec<IssueQueued>, Error> {
        let t = ms(now);
        let mut tx = self.pool.begin().await.db("creating issues")?;
        lock(&mut tx, "issues").await?;
        let mut made = Vec::with_capacity(issues.len());
        for (post_ids, subject) in issues {
            let lead = *post_ids
                .last()
                .ok_or_else(|| Error::Internal("an issue needs at least one post".into()))?;
            let created = sqlx::query(
                "INSERT INTO issues (post_id, subject, kind, origin, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (post_id) DO NOTHING",
            )
            .bind(lead)
            .bind(subject)
            .bind(kind.as_str())
            .bind(origin.as_str())
            .bind(t)
            .execute(&mut *tx)
            .await
            .db("creating an issue")?
            .rows_affected()
                == 1;
            let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE post_id = $1");
            let issue = sqlx::query(&sql)
                .bind(lead)
                .fetch_one(&mut *tx)
                .await
                .db("reading the new issue")?;
            let issue = issue_from_row(&issue).db("decoding an issue")?;
            for post_id in post_ids {
                sqlx::query(
                    "INSERT INTO issue_posts (post_id, issue_id) VALUES ($1, $2) ON CONFLICT (post_id) DO NOTHING",
                )
                .bind(post_id)
                .bind(issue.id)
                .execute(&mut *tx)
                .await
                .db("recording the posts of an issue")?;
            }
            let queued = enqueue(&mut tx, issue.id, t).await?;
            made.push(IssueQueued {
                issue,
                queued,
                created,
            });
        }
        tx.commit().await.db("committing the issues")?;
        Ok(made)
    }

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

    /// The issue a post went out in (its own, or a digest).
    pub async fn issue_for_post(&self, post_id: i64) -> Result<Option<IssueRecord>, Error> {
        self.issue_where(
            "id = (SELECT issue_id FROM issue_posts WHERE post_id = $1)",
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

    /// Active subscribers who would get this issue if it were sent now (no row yet).
    pub async fn count_unqueued(&self, issue_id: Option<i64>) -> Result<i64, Error> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscribers s WHERE s.status = 'active' AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.issue_id = $1 AND d.subscriber_id = s.id)",
        )
        .bind(issue_id.unwrap_or(-1))
        .fetch_one(&self.pool)
        .await
        .db("counting recipients")
    }

    /// Delivery counts per status for every issue (or the one of `post_slug`), newest first.
    pub async fn issue_statuses(&self, post_slug: Option<&str>) -> Result<Vec<IssueStatus>, Error> {
        let rows = sqlx::query(
            "SELECT i.id, p.slug, p.title, i.created_at, d.status, COUNT(d.id) AS n \
             FROM issues i JOIN posts p ON p.id = i.post_id \
             LEFT JOIN deliveries d ON d.issue_id = i.id \
             WHERE ($1 = '' OR p.slug = $1) \
             GROUP BY i.id, p.slug, p.title, i.created_at, d.status \
             ORDER BY i.created_at DESC, i.id DESC",
        )
        .bind(post_slug.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .db("counting deliveries")?;
        let mut out: Vec<IssueStatus> = Vec::new();
        for row in rows {
            let id: i64 = row.try_get("id").db("counting deliveries")?;
            if out.last().map(|s| s.issue_id) != Some(id) {
                let counts = DeliveryStatus::ALL.iter().map(|s| (*s, 0)).collect();
                out.push(IssueStatus {
                    issue_id: id,
                    slug: row.try_get("slug").db("counting deliveries")?,
                    title: row.try_get("title").db("counting deliveries")?,
                    created_at: from_ms(row.try_get("created_at").db("counting deliveries")?),
                    total: 0,
                    counts,
                    complaint_rate: 0.0,
                });
            }
            let status: Option<String> = row.try_get("status").db("counting deliveries")?;
            let n: i64 = row.try_get("n").db("counting deliveries")?;
            if let (Some(status), Some(entry)) = (status, out.last_mut()) {
                let status: DeliveryStatus = status.parse().map_err(Error::Internal)?;
                entry.counts.insert(status, n);
                entry.total += n;
            }
        }
        out.iter_mut().for_each(IssueStatus::finish);
        Ok(out)
    }

    /// Queues the issue for active subscribers who have no delivery row for it yet.
    pub async fn enqueue_issue(&self, issue_id: i64, now: DateTime<Utc>) -> Result<u64, Error> {
        let mut tx = self.pool.begin().await.db("queueing deliveries")?;
        let n = enqueue(&mut tx, issue_id, ms(now)).await?;
        tx.commit().await.db("queueing deliveries")?;
        Ok(n)
    }
}

/// One statement, however many subscribers: the database does the loop.
async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    issue_id: i64,
    t: i64,
) -> Result<u64, Error> {
    Ok(sqlx::query(
        "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, created_at, updated_at, next_attempt_at) \
         SELECT $1, id, 'queued', 0, $2, $2, $2 FROM subscribers WHERE status = 'active' \
         ON CONFLICT (issue_id, subscriber_id) DO NOTHING",
    )
    .bind(issue_id)
    .bind(t)
    .execute(&mut **tx)
    .await
    .db("queueing deliveries")?
    .rows_affected())
}
