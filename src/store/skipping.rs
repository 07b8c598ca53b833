//! Skipping deliveries that have not gone out: a reader who leaves, or whose
//! new choices no longer fit what waits for them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{from_ms, id_list, ms, Store};
use crate::domain::{Frequency, IssueKind};
use crate::error::{DbContext, Error};

/// A delivery not yet sent, with what its issue is for (to check it against new
/// choices).
#[derive(Debug, Clone)]
pub struct WaitingDelivery {
    pub id: i64,
    pub kind: IssueKind,
    pub frequency: Option<Frequency>,
    /// Its posts' ids, and the tags of each.
    pub posts: Vec<i64>,
    pub post_tags: Vec<Vec<String>>,
    /// When the earliest of its posts was planned.
    pub first_planned: Option<DateTime<Utc>>,
}

impl Store {
    /// The reader's deliveries that are queued or waiting to be retried.
    pub async fn waiting_deliveries(
        &self,
        subscriber_id: i64,
    ) -> Result<Vec<WaitingDelivery>, Error> {
        let rows = sqlx::query(
            "SELECT d.id, i.kind, i.frequency, p.id AS post_id, p.tags, p.planned_at FROM deliveries d \
             JOIN issues i ON i.id = d.issue_id JOIN issue_posts ip ON ip.issue_id = i.id \
             JOIN posts p ON p.id = ip.post_id \
             WHERE d.subscriber_id = $1 AND d.status IN ('queued', 'retrying') ORDER BY d.id",
        )
        .bind(subscriber_id)
        .fetch_all(&self.pool)
        .await
        .db("reading waiting deliveries")?;
        let ctx = "reading waiting deliveries";
        let mut out: Vec<WaitingDelivery> = Vec::new();
        for row in rows {
            let id: i64 = row.try_get("id").db(ctx)?;
            let post: i64 = row.try_get("post_id").db(ctx)?;
            let tags: String = row.try_get("tags").db(ctx)?;
            let tags: Vec<String> = serde_json::from_str(&tags).unwrap_or_default();
            let planned: Option<i64> = row.try_get("planned_at").db(ctx)?;
            let planned = planned.map(from_ms);
            if let Some(last) = out.last_mut().filter(|d| d.id == id) {
                last.posts.push(post);
                last.post_tags.push(tags);
                last.first_planned = [last.first_planned, planned].into_iter().flatten().min();
                continue;
            }
            let kind: String = row.try_get("kind").db(ctx)?;
            let frequency: Option<String> = row.try_get("frequency").db(ctx)?;
            out.push(WaitingDelivery {
                id,
                kind: kind.parse().map_err(Error::Internal)?,
                frequency: frequency
                    .map(|f| f.parse())
                    .transpose()
                    .map_err(Error::Internal)?,
                posts: vec![post],
                post_tags: vec![tags],
                first_planned: planned,
            });
        }
        Ok(out)
    }

    /// Skips deliveries that have not gone out, with `why`, in one statement.
    pub async fn skip_deliveries(
        &self,
        ids: &[i64],
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let sql = format!(
            "UPDATE deliveries SET status = 'skipped', last_error = $1, updated_at = $2 \
             WHERE status IN ('queued', 'retrying') AND id IN ({})",
            self.dialect.ids(3)
        );
        Ok(sqlx::query(&sql)
            .bind(why)
            .bind(ms(now))
            .bind(id_list(ids))
            .execute(&self.pool)
            .await
            .db("skipping deliveries")?
            .rows_affected())
    }
}

/// A subscriber who leaves gets nothing more: their queued and retrying
/// deliveries become `skipped`, with `why`, in the caller's transaction.
pub(super) async fn skip_waiting(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    subscriber_id: i64,
    why: &str,
    t: i64,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE deliveries SET status = 'skipped', last_error = $1, updated_at = $2 \
         WHERE subscriber_id = $3 AND status IN ('queued', 'retrying')",
    )
    .bind(why)
    .bind(t)
    .bind(subscriber_id)
    .execute(&mut **tx)
    .await
    .db("skipping the deliveries of a subscriber who left")?;
    Ok(())
}
