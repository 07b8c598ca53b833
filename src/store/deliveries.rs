//! The delivery queue and log: one row per (issue, subscriber), never deleted.
//!
//! A worker claims a batch with one atomic `UPDATE … RETURNING` that sets a lease,
//! sends without holding any lock, then records every result of the batch in one
//! transaction. A claim whose lease ran out (its process died) is claimed again.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::reports::{bounce_subscriber, BouncePolicy};
use super::{from_ms, id_list, ms, Dialect, Store};
use crate::domain::{DeliveryStatus, EmailAddress, SubscriberStatus};
use crate::error::{DbContext, Error};

/// A delivery this worker now owns until `lease_until`.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub issue_id: i64,
    pub subscriber_id: i64,
    /// Attempts so far, this one included, since the last manual retry.
    pub attempt: i64,
    pub email: Option<EmailAddress>,
    pub name: String,
    pub subscriber_status: Option<SubscriberStatus>,
}

#[derive(Debug, Clone)]
pub enum OutcomeKind {
    Sent,
    /// Transient: try again at `next_attempt_at`.
    Retry {
        next_attempt_at: DateTime<Utc>,
    },
    /// Permanent, or transient with no attempts left. `hard`: the reply says
    /// the address itself is gone.
    Failed {
        permanent: bool,
        hard: bool,
    },
    Skipped,
    /// Not attempted, or the server could not be reached: back to the queue at
    /// `retry_at` with the attempt count unchanged.
    Released {
        retry_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: i64,
    pub subscriber_id: i64,
    pub kind: OutcomeKind,
    pub error: Option<String>,
    pub smtp_reply: Option<String>,
    /// The relay that took or refused it.
    pub relay: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryLogRow {
    pub id: i64,
    pub subscriber_id: i64,
    pub email: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub smtp_reply: Option<String>,
    /// The relay that took or refused it (none for the file transport).
    pub relay: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// One row of a delivery log, from a query that selects the columns
/// `id, subscriber_id, email, status, attempts, last_error, smtp_reply,
/// relay, updated_at, sent_at, next_attempt_at`.
pub(super) fn log_row(row: &sqlx::any::AnyRow) -> Result<DeliveryLogRow, Error> {
    let ctx = "reading the delivery log";
    let status: String = row.try_get("status").db(ctx)?;
    let status: DeliveryStatus = status.parse().map_err(Error::Internal)?;
    let next: i64 = row.try_get("next_attempt_at").db(ctx)?;
    Ok(DeliveryLogRow {
        id: row.try_get("id").db(ctx)?,
        subscriber_id: row.try_get("subscriber_id").db(ctx)?,
        email: row.try_get("email").db(ctx)?,
        status,
        attempts: row.try_get("attempts").db(ctx)?,
        last_error: row.try_get("last_error").db(ctx)?,
        smtp_reply: row.try_get("smtp_reply").db(ctx)?,
        relay: row.try_get("relay").db(ctx)?,
        updated_at: from_ms(row.try_get("updated_at").db(ctx)?),
        sent_at: row
            .try_get::<Option<i64>, _>("sent_at")
            .db(ctx)?
            .map(from_ms),
        next_attempt_at: status.is_waiting().then(|| from_ms(next)),
    })
}

/// Takes back, at `$1`, deliveries a sender claimed and never reported on:
/// whether their message left is unknown, so they are sent again.
pub(super) const TAKE_BACK: &str =
    "UPDATE deliveries SET status = 'retrying', lease_until = NULL, lease_owner = NULL, \
     next_attempt_at = $1, updated_at = $1, \
     last_error = 'interrupted: its sender stopped while sending' \
     WHERE status = 'sending'";

impl Store {
    /// Claims up to `limit` due deliveries (of one issue, or of all) for `owner`
    /// until `now + lease_ms`. No ORDER BY: the index on (status, next_attempt_at)
    /// finds due rows without sorting the whole queue on every claim.
    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_ms: i64,
        limit: i64,
        issue_id: Option<i64>,
        owner: &str,
    ) -> Result<Vec<Claimed>, Error> {
        let t = ms(now);
        let issue_filter = if issue_id.is_some() {
            "AND issue_id = $5"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, \
             lease_until = $1 + $2, lease_owner = $4, updated_at = $1 \
             WHERE id IN (SELECT id FROM deliveries \
                 WHERE status IN ('queued', 'retrying') AND next_attempt_at <= $1 {issue_filter} \
                 LIMIT $3{}) \
             RETURNING id, issue_id, subscriber_id, attempts - attempt_base AS attempt",
            self.dialect.skip_locked()
        );
        let mut query = sqlx::query(&sql)
            .bind(t)
            .bind(lease_ms)
            .bind(limit)
            .bind(owner);
        if let Some(id) = issue_id {
            query = query.bind(id);
        }
        let turn = self.write_turn().await;
        let rows = query
            .fetch_all(&self.pool)
            .await
            .db("claiming deliveries")?;
        drop(turn);
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            claimed.push(Claimed {
                delivery_id: row.try_get("id").db("claiming deliveries")?,
                issue_id: row.try_get("issue_id").db("claiming deliveries")?,
                subscriber_id: row.try_get("subscriber_id").db("claiming deliveries")?,
                attempt: row.try_get("attempt").db("claiming deliveries")?,
                email: None,
                name: String::new(),
                subscriber_status: None,
            });
        }
        if claimed.is_empty() {
            return Ok(claimed);
        }
        // Fill in the addresses (and current status) in one query.
        let sql = format!(
            "SELECT id, email, name, status FROM subscribers WHERE id IN ({})",
            self.dialect.ids(1)
        );
        let readers: Vec<i64> = claimed.iter().map(|c| c.subscriber_id).collect();
        let subscribers = sqlx::query(&sql)
            .bind(id_list(&readers))
            .fetch_all(&self.pool)
            .await
            .db("reading the claimed subscribers")?;
        let mut by_id = std::collections::HashMap::with_capacity(subscribers.len());
        for row in &subscribers {
            let id: i64 = row.try_get("id").db("reading subscribers")?;
            let email: String = row.try_get("email").db("reading subscribers")?;
            let name: String = row.try_get("name").db("reading subscribers")?;
            let status: String = row.try_get("status").db("reading subscribers")?;
            by_id.insert(
                id,
                (EmailAddress::parse(&email).ok(), name, status.parse().ok()),
            );
        }
        // One subscriber may have several deliveries in a batch (several issues).
        for c in &mut claimed {
            if let Some((email, name, status)) = by_id.get(&c.subscriber_id) {
                c.email = email.clone();
                c.name = name.clone();
                c.subscriber_status = *status;
            }
        }
        Ok(claimed)
    }

    /// Takes back the claims of processes that died: those whose lease ran out, and
    /// those whose owner `is_dead` says is gone (at once, on the same host). They
    /// become `retrying`, due now; a message that was on the wire when its sender
    /// died may go out again, with the same Message-ID.
    pub async fn reap_leases(
        &self,
        now: DateTime<Utc>,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<u64, Error> {
        let t = ms(now);
        let owners: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM deliveries WHERE status = 'sending'",
        )
        .fetch_all(&self.pool)
        .await
        .db("reading lease owners")?;
        let mut reaped = 0;
        let reap = TAKE_BACK;
        for owner in owners.iter().flatten().filter(|o| is_dead(o)) {
            reaped += sqlx::query(&format!("{reap} AND lease_owner = $2"))
                .bind(t)
                .bind(owner)
                .execute(&self.pool)
                .await
                .db("taking back a dead worker's deliveries")?
                .rows_affected();
        }
        reaped += sqlx::query(&format!("{reap} AND lease_until < $1"))
            .bind(t)
            .execute(&self.pool)
            .await
            .db("taking back expired leases")?
            .rows_affected();
        Ok(reaped)
    }

    /// Extends this owner's lease on deliveries it is still working through.
    pub async fn renew_leases(
        &self,
        ids: &[i64],
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE deliveries SET lease_until = $1 WHERE status = 'sending' AND lease_owner = $2 AND id IN ({})",
            self.dialect.ids(3)
        );
        let query = sqlx::query(&sql)
            .bind(ms(until))
            .bind(owner)
            .bind(id_list(ids));
        let _turn = self.write_turn().await;
        query.execute(&self.pool).await.db("renewing leases")?;
        Ok(())
    }

    /// Records a batch of results in one transaction. Only rows still `sending` are
    /// changed, so a late result never overwrites a newer one. A permanent failure
    /// counts as a bounce of the address (hard or soft, by its reply), under the
    /// same `policy` as bounce reports. Every attempt goes into the history.
    pub async fn record_outcomes(
        &self,
        outcomes: &[Outcome],
        now: DateTime<Utc>,
        policy: BouncePolicy,
    ) -> Result<(), Error> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let t = ms(now);
        // Every result but a release, as one JSON array for one statement,
        // whatever the group's size.
        let rows: Vec<serde_json::Value> = outcomes
            .iter()
            .filter_map(|o| {
                let (status, next, sent_at) = match &o.kind {
                    OutcomeKind::Sent => (DeliveryStatus::Sent, t, Some(t)),
                    OutcomeKind::Retry { next_attempt_at } => {
                        (DeliveryStatus::Retrying, ms(*next_attempt_at), None)
                    }
                    OutcomeKind::Failed { .. } => (DeliveryStatus::Failed, t, None),
                    OutcomeKind::Skipped => (DeliveryStatus::Skipped, t, None),
                    OutcomeKind::Released { .. } => return None,
                };
                Some(serde_json::json!({
                    "i": o.delivery_id,
                    "s": status.as_str(),
                    "e": o.error,
                    "rp": o.smtp_reply,
                    "n": next,
                    "t": sent_at,
                    "y": o.relay,
                    "d": o.smtp_reply.as_deref().or(o.error.as_deref()),
                }))
            })
            .collect();
        let rows = serde_json::Value::Array(rows).to_string();
        let _turn = self.write_turn().await;
        let simple = outcomes.iter().all(|o| {
            !matches!(
                o.kind,
                OutcomeKind::Released { .. }
                    | OutcomeKind::Failed {
                        permanent: true,
                        ..
                    }
            )
        });
        if simple {
            // The usual group (sent, retrying, skipped): one statement, which
            // is its own transaction. A commit is one round trip to the
            // database, and the recorder keeps up at full speed.
            sqlx::query(self.dialect.record_statement())
                .bind(t)
                .bind(&rows)
                .execute(&self.pool)
                .await
                .db("recording deliveries")?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await.db("recording deliveries")?;
        for o in outcomes {
            if let OutcomeKind::Released { retry_at } = &o.kind {
                sqlx::query(
                    "UPDATE deliveries SET attempts = attempts - 1, lease_until = NULL, updated_at = $1, \
                     status = CASE WHEN attempts - 1 > attempt_base THEN 'retrying' ELSE 'queued' END, \
                     next_attempt_at = $2, last_error = COALESCE($3, last_error) \
                     WHERE id = $4 AND status = 'sending'",
                )
                .bind(t)
                .bind(ms(*retry_at))
                .bind(o.error.as_deref())
                .bind(o.delivery_id)
                .execute(&mut *tx)
                .await
                .db("releasing a delivery")?;
            }
        }
        sqlx::query(self.dialect.record_statement())
            .bind(t)
            .bind(&rows)
            .execute(&mut *tx)
            .await
            .db("recording deliveries")?;
        for o in outcomes {
            if let OutcomeKind::Failed {
                permanent: true,
                hard,
            } = o.kind
            {
                bounce_subscriber(&mut tx, o.subscriber_id, o.delivery_id, hard, t, policy).await?;
            }
        }
        // The record statement leaves a forgotten reader's words out; a
        // release writes its own error, so only then is there more to clear.
        if outcomes
            .iter()
            .any(|o| matches!(o.kind, OutcomeKind::Released { .. }) && o.error.is_some())
        {
            keep_nothing_of_the_forgotten(&mut tx, self.dialect, outcomes).await?;
        }
        tx.commit().await.db("committing delivery results")?;
        Ok(())
    }

    /// The delivery log of one issue, one row per subscriber.
    pub async fn delivery_log(
        &self,
        issue_id: i64,
        status: Option<DeliveryStatus>,
    ) -> Result<Vec<DeliveryLogRow>, Error> {
        let rows = sqlx::query(
            "SELECT d.id, d.subscriber_id, s.email, d.status, d.attempts, d.last_error, d.smtp_reply, d.relay, \
             d.updated_at, d.sent_at, d.next_attempt_at \
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.issue_id = $1 AND ($2 = '' OR d.status = $2) ORDER BY d.id",
        )
        .bind(issue_id)
        .bind(status.map(|s| s.as_str()).unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .db("reading the delivery log")?;
        rows.iter().map(log_row).collect()
    }

    /// Queues an issue's failed deliveries again, with a fresh attempt budget.
    /// The attempt count keeps growing: it is part of the log.
    pub async fn retry_failed(&self, issue_id: i64, now: DateTime<Utc>) -> Result<u64, Error> {
        let t = ms(now);
        Ok(sqlx::query(
            "UPDATE deliveries SET status = 'queued', attempt_base = attempts, next_attempt_at = $1, \
             updated_at = $1 WHERE issue_id = $2 AND status = 'failed' \
             AND subscriber_id IN (SELECT id FROM subscribers WHERE status = 'active')",
        )
        .bind(t)
        .bind(issue_id)
        .execute(&self.pool)
        .await
        .db("queueing failed deliveries again")?
        .rows_affected())
    }

    /// How many deliveries are due now (for sizing worker batches).
    pub async fn count_due(&self, now: DateTime<Utc>, issue_id: Option<i64>) -> Result<i64, Error> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE status IN ('queued', 'retrying') AND next_attempt_at <= $1 \
             AND ($2 < 0 OR issue_id = $2)",
        )
        .bind(ms(now))
        .bind(issue_id.unwrap_or(-1))
        .fetch_one(&self.pool)
        .await
        .db("counting due deliveries")
    }
}

/// A reader forgotten while their message was on the wire: what the server
/// answered may quote the address that `forget` has just cut out everywhere
/// else, so none of it is kept. Run after this group's writes, inside its
/// transaction, so that `forget` committed either before (and this clears the
/// texts) or after (and its own cut does).
async fn keep_nothing_of_the_forgotten(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    outcomes: &[Outcome],
) -> Result<(), Error> {
    let mut readers: Vec<i64> = outcomes.iter().map(|o| o.subscriber_id).collect();
    readers.sort_unstable();
    readers.dedup();
    let sql = format!(
        "SELECT id FROM subscribers WHERE status = 'forgotten' AND id IN ({})",
        dialect.ids(1)
    );
    let forgotten: Vec<i64> = sqlx::query_scalar(&sql)
        .bind(id_list(&readers))
        .fetch_all(&mut **tx)
        .await
        .db("looking for forgotten readers")?;
    let deliveries: Vec<i64> = outcomes
        .iter()
        .filter(|o| forgotten.contains(&o.subscriber_id))
        .map(|o| o.delivery_id)
        .collect();
    if deliveries.is_empty() {
        return Ok(());
    }
    for sql in [
        "UPDATE deliveries SET last_error = NULL, smtp_reply = NULL WHERE id IN ({})",
        "UPDATE delivery_events SET detail = NULL WHERE delivery_id IN ({})",
    ] {
        let sql = sql.replace("{}", &dialect.ids(1));
        sqlx::query(&sql)
            .bind(id_list(&deliveries))
            .execute(&mut **tx)
            .await
            .db("clearing a forgotten reader's replies")?;
    }
    Ok(())
}
