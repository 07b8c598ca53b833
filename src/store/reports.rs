//! Reports that come back after the relay said 250, and each delivery's history.
//!
//! A report is recorded with its effect in one transaction: the report row (its
//! fingerprint is unique, so the same report twice counts once), the event in
//! the delivery's history, the delivery's new status, and the subscriber's.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::skipping::skip_waiting;
use super::{from_ms, ms, Store};
use crate::domain::{EventKind, MatchedBy, ReportEffect, ReportSource, SubscriberStatus};
use crate::error::{DbContext, Error};

/// When an address stops getting mail.
#[derive(Debug, Clone, Copy)]
pub struct BouncePolicy {
    /// Hard bounces (the address is gone) before the subscriber is `bounced`.
    pub hard_after: u32,
    /// Bounces in a row, with no delivery between them that stayed `sent`.
    pub soft_after: u32,
}

/// Which delivery a report is about, as far as it could be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Delivery {
        delivery_id: i64,
        by: MatchedBy,
    },
    Unmatched,
    /// A VERP token whose signature failed: nothing changes.
    Forged,
}

/// One recipient of one report, ready to record.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub fingerprint: String,
    pub source: ReportSource,
    /// `bounce`, `delay`, `complaint` or `delivered`.
    pub kind: EventKind,
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub hard: bool,
    pub diagnostic: Option<String>,
    pub feedback_type: Option<String>,
    /// Why, as the bounce reader's taxonomy names it (`userunknown`, …).
    pub reason: String,
    pub target: Target,
}

/// A recorded report, for `posthorn bounces list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportRow {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub kind: String,
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub hard: bool,
    pub diagnostic: Option<String>,
    pub feedback_type: Option<String>,
    /// Why, from the bounce reader's taxonomy; `None` on reports recorded
    /// before it gave one.
    pub reason: Option<String>,
    pub effect: String,
    pub matched_by: Option<String>,
    pub subscriber: Option<String>,
    pub issue: Option<String>,
}

/// One line of a delivery's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventRow {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub outcome: String,
    pub detail: Option<String>,
    /// The relay of an attempt.
    pub relay: Option<String>,
    /// The report's reason, for a line that is a report (see [`ReportRow::reason`]).
    pub reason: Option<String>,
}

impl Store {
    /// The delivery of `issue_id` to `subscriber_id`, if there is one.
    pub async fn delivery_of(
        &self,
        issue_id: i64,
        subscriber_id: i64,
    ) -> Result<Option<i64>, Error> {
        sqlx::query_scalar("SELECT id FROM deliveries WHERE issue_id = $1 AND subscriber_id = $2")
            .bind(issue_id)
            .bind(subscriber_id)
            .fetch_optional(&self.pool)
            .await
            .db("finding a delivery")
    }

    /// The delivery of `issue_id` to `subscriber_id` with its recipient's
    /// address key (`None` once the person is forgotten), if there is one.
    pub async fn delivery_with_recipient(
        &self,
        issue_id: i64,
        subscriber_id: i64,
    ) -> Result<Option<(i64, Option<String>)>, Error> {
        sqlx::query_as(
            "SELECT d.id, s.email_key FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.issue_id = $1 AND d.subscriber_id = $2",
        )
        .bind(issue_id)
        .bind(subscriber_id)
        .fetch_optional(&self.pool)
        .await
        .db("finding a delivery")
    }

    /// The latest delivery that went out to `email`: how a provider's signed
    /// webhook, which vouches for the recipient it names, finds its delivery.
    pub async fn latest_delivery_to(&self, email_key: &str) -> Result<Option<i64>, Error> {
        sqlx::query_scalar(
            "SELECT d.id FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE s.email_key = $1 AND d.sent_at IS NOT NULL ORDER BY d.sent_at DESC, d.id DESC LIMIT 1",
        )
        .bind(email_key)
        .fetch_optional(&self.pool)
        .await
        .db("finding the latest delivery to an address")
    }

    /// Records one report and what it means. Returns `None` when this report was
    /// recorded before (nothing changes a second time).
    pub async fn record_report(
        &self,
        report: &NewReport,
        now: DateTime<Utc>,
        policy: BouncePolicy,
    ) -> Result<Option<ReportEffect>, Error> {
        let t = ms(now);
        let mut tx = self.pool.begin().await.db("recording a report")?;
        // A write transaction from the start: two MTA pipes recording at once
        // wait their turn instead of failing to upgrade a read ("database is locked").
        super::lock(&mut tx, "reports").await?;
        let (delivery_id, matched_by) = match report.target {
            Target::Delivery { delivery_id, by } => (Some(delivery_id), Some(by)),
            _ => (None, None),
        };
        // Who the delivery went to, and where they stand now.
        let subscriber: Option<(i64, String)> = match delivery_id {
            Some(id) => {
                let row = sqlx::query(
                    "SELECT s.id, s.status FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .db("reading the reported delivery")?;
                match row {
                    Some(r) => Some((
                        r.try_get("id").db("reading the reported delivery")?,
                        r.try_get("status").db("reading the reported delivery")?,
                    )),
                    None => None,
                }
            }
            None => None,
        };
        let gone = subscriber.as_ref().is_some_and(|(_, s)| {
            s != SubscriberStatus::Active.as_str() && s != SubscriberStatus::Pending.as_str()
        });
        let effect = match (report.target, report.kind) {
            (Target::Forged, _) => ReportEffect::Forged,
            (Target::Unmatched, _) => ReportEffect::Unmatched,
            (_, _) if gone => ReportEffect::Recorded,
            (_, EventKind::Bounce) => ReportEffect::Bounced,
            (_, EventKind::Complaint) => ReportEffect::Complained,
            _ => ReportEffect::Recorded,
        };
        // The unique fingerprint decides "seen before", also for two intakes racing.
        let report_id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO reports (fingerprint, received_at, source, kind, recipient, status, hard, diagnostic, \
             feedback_type, delivery_id, matched_by, effect, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
        )
        .bind(&report.fingerprint)
        .bind(t)
        .bind(report.source.as_str())
        .bind(report.kind.as_str())
        .bind(report.recipient.as_deref())
        .bind(report.status.as_deref())
        .bind(i64::from(report.hard))
        .bind(report.diagnostic.as_deref())
        .bind(report.feedback_type.as_deref())
        .bind(delivery_id)
        .bind(matched_by.map(|m| m.as_str()))
        .bind(effect.as_str())
        .bind(&report.reason)
        .fetch_optional(&mut *tx)
        .await
        .db("recording a report")?;
        let Some(report_id) = report_id else {
            return Ok(None);
        };
        if let Some(delivery_id) = delivery_id {
            let outcome = match report.kind {
                EventKind::Complaint => report
                    .feedback_type
                    .clone()
                    .unwrap_or_else(|| "abuse".into()),
                _ => report
                    .status
                    .clone()
                    .unwrap_or_else(|| report.kind.as_str().into()),
            };
            let detail = match (report.kind, report.hard) {
                (EventKind::Bounce, true) => {
                    format!("hard: {}", report.diagnostic.as_deref().unwrap_or(""))
                }
                (EventKind::Bounce, false) => {
                    format!("soft: {}", report.diagnostic.as_deref().unwrap_or(""))
                }
                _ => report.diagnostic.clone().unwrap_or_default(),
            };
            sqlx::query(
                "INSERT INTO delivery_events (delivery_id, at, kind, outcome, detail, report_id) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(delivery_id)
            .bind(t)
            .bind(report.kind.as_str())
            .bind(&outcome)
            .bind(detail.trim_end_matches([' ', ':']))
            .bind(report_id)
            .execute(&mut *tx)
            .await
            .db("adding to a delivery's history")?;
        }
        if let (Some(delivery_id), Some((subscriber_id, _))) = (delivery_id, subscriber) {
            match effect {
                ReportEffect::Bounced => {
                    let why = format!(
                        "{} bounce {}: {}",
                        if report.hard { "hard" } else { "soft" },
                        report.status.as_deref().unwrap_or("-"),
                        report.diagnostic.as_deref().unwrap_or("")
                    );
                    sqlx::query(
                        "UPDATE deliveries SET status = 'bounced', last_error = $1, updated_at = $2 \
                         WHERE id = $3 AND status IN ('sent', 'failed', 'bounced')",
                    )
                    .bind(why.trim_end_matches([' ', ':']))
                    .bind(t)
                    .bind(delivery_id)
                    .execute(&mut *tx)
                    .await
                    .db("marking a delivery bounced")?;
                    bounce_subscriber(&mut tx, subscriber_id, delivery_id, report.hard, t, policy)
                        .await?;
                }
                ReportEffect::Complained => {
                    let why = format!(
                        "complaint ({})",
                        report.feedback_type.as_deref().unwrap_or("abuse")
                    );
                    sqlx::query(
                        "UPDATE deliveries SET status = 'complained', last_error = $1, updated_at = $2 \
                         WHERE id = $3 AND status IN ('sent', 'failed', 'bounced')",
                    )
                    .bind(&why)
                    .bind(t)
                    .bind(delivery_id)
                    .execute(&mut *tx)
                    .await
                    .db("marking a delivery complained")?;
                    set_subscriber_gone(
                        &mut tx,
                        subscriber_id,
                        SubscriberStatus::Unsubscribed,
                        &why,
                        t,
                    )
                    .await?;
                }
                _ => {}
            }
        }
        tx.commit().await.db("recording a report")?;
        Ok(Some(effect))
    }

    /// Reports, newest first.
    pub async fn reports(&self, limit: i64) -> Result<Vec<ReportRow>, Error> {
        let rows = sqlx::query(
            "SELECT r.id, r.received_at, r.source, r.kind, r.recipient, r.status, r.hard, r.diagnostic, \
             r.feedback_type, r.reason, r.effect, r.matched_by, s.email, p.slug \
             FROM reports r LEFT JOIN deliveries d ON d.id = r.delivery_id \
             LEFT JOIN subscribers s ON s.id = d.subscriber_id \
             LEFT JOIN issues i ON i.id = d.issue_id LEFT JOIN posts p ON p.id = i.post_id \
             ORDER BY r.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .db("reading reports")?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(ReportRow {
                id: r.try_get("id").db("reading reports")?,
                received_at: from_ms(r.try_get("received_at").db("reading reports")?),
                source: r.try_get("source").db("reading reports")?,
                kind: r.try_get("kind").db("reading reports")?,
                recipient: r.try_get("recipient").db("reading reports")?,
                status: r.try_get("status").db("reading reports")?,
                hard: r.try_get::<i64, _>("hard").db("reading reports")? != 0,
                diagnostic: r.try_get("diagnostic").db("reading reports")?,
                feedback_type: r.try_get("feedback_type").db("reading reports")?,
                reason: reason(r)?,
                effect: r.try_get("effect").db("reading reports")?,
                matched_by: r.try_get("matched_by").db("reading reports")?,
                subscriber: r.try_get("email").db("reading reports")?,
                issue: r.try_get("slug").db("reading reports")?,
            });
        }
        Ok(out)
    }

    /// The history of one delivery: attempts and reports, oldest first.
    pub async fn delivery_history(&self, delivery_id: i64) -> Result<Vec<EventRow>, Error> {
        let rows = sqlx::query(
            "SELECT e.at, e.kind, e.outcome, e.detail, e.relay, r.reason FROM delivery_events e \
             LEFT JOIN reports r ON r.id = e.report_id WHERE e.delivery_id = $1 ORDER BY e.id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await
        .db("reading a delivery's history")?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(EventRow {
                at: from_ms(r.try_get("at").db("reading reports")?),
                kind: r.try_get("kind").db("reading reports")?,
                outcome: r.try_get("outcome").db("reading reports")?,
                detail: r.try_get("detail").db("reading reports")?,
                relay: r.try_get("relay").db("reading reports")?,
                reason: reason(r)?,
            });
        }
        Ok(out)
    }
}

/// A report's reason; reports recorded before there was one have none.
fn reason(row: &sqlx::any::AnyRow) -> Result<Option<String>, Error> {
    let reason: Option<String> = row.try_get("reason").db("reading reports")?;
    Ok(reason.filter(|s| !s.is_empty()))
}

/// Counts a bounce against the subscriber; after `hard_after` hard bounces, or
/// `soft_after` bounced deliveries in a row, they are `bounced`.
pub(super) async fn bounce_subscriber(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    subscriber_id: i64,
    delivery_id: i64,
    hard: bool,
    t: i64,
    policy: BouncePolicy,
) -> Result<(), Error> {
    if hard {
        sqlx::query(
            "UPDATE subscribers SET hard_bounces = hard_bounces + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(t)
        .bind(subscriber_id)
        .execute(&mut **tx)
        .await
        .db("counting a hard bounce")?;
        let count: i64 = sqlx::query_scalar("SELECT hard_bounces FROM subscribers WHERE id = $1")
            .bind(subscriber_id)
            .fetch_one(&mut **tx)
            .await
            .db("counting hard bounces")?;
        if count >= i64::from(policy.hard_after) {
            let why = format!("{count} hard bounce(s): the address is gone");
            return set_subscriber_gone(tx, subscriber_id, SubscriberStatus::Bounced, &why, t)
                .await;
        }
    }
    // The run of finished deliveries, newest first, up to this one: bounced or
    // failed ones in a row, with none between them that stayed `sent`.
    let recent: Vec<String> = sqlx::query_scalar(
        "SELECT status FROM deliveries WHERE subscriber_id = $1 AND id <= $2 \
         AND status IN ('sent', 'bounced', 'complained', 'failed') ORDER BY id DESC LIMIT $3",
    )
    .bind(subscriber_id)
    .bind(delivery_id)
    .bind(i64::from(policy.soft_after))
    .fetch_all(&mut **tx)
    .await
    .db("counting bounces in a row")?;
    // A permanent failure at SMTP time (`failed`) is a bounce posthorn saw itself.
    let in_a_row = recent
        .iter()
        .take_while(|s| matches!(s.as_str(), "bounced" | "failed"))
        .count();
    if in_a_row as u64 >= u64::from(policy.soft_after) {
        let why = format!("{in_a_row} bounces in a row");
        return set_subscriber_gone(tx, subscriber_id, SubscriberStatus::Bounced, &why, t).await;
    }
    Ok(())
}

/// The subscriber leaves (`bounced` or `unsubscribed`) with the reason kept, and
/// their waiting deliveries are skipped, as for any unsubscribe.
pub(super) async fn set_subscriber_gone(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    subscriber_id: i64,
    status: SubscriberStatus,
    why: &str,
    t: i64,
) -> Result<(), Error> {
    let changed = sqlx::query(
        "UPDATE subscribers SET status = $1, status_reason = $2, updated_at = $3, \
         unsubscribed_at = CASE WHEN $1 = 'unsubscribed' THEN COALESCE(unsubscribed_at, $3) ELSE unsubscribed_at END \
         WHERE id = $4 AND status IN ('active', 'pending')",
    )
    .bind(status.as_str())
    .bind(why)
    .bind(t)
    .bind(subscriber_id)
    .execute(&mut **tx)
    .await
    .db("changing a subscriber's status")?
    .rows_affected();
    if changed > 0 {
        skip_waiting(tx, subscriber_id, &format!("subscriber {status}: {why}"), t).await?;
    }
    Ok(())
}
