//! Subscribers: adding, reading, confirming, leaving and their saved choices.
//! Rows are never deleted (deliveries refer to them); leaving is a status.
//! Skipping their deliveries is in `skipping.rs`, erasing a person in `erasure.rs`.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::skipping::skip_waiting;
use super::{from_ms, ms, Store};
use crate::domain::{EmailAddress, Preferences, SubscriberStatus};
use crate::error::{DbContext, Error};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Subscriber {
    pub id: i64,
    pub email: EmailAddress,
    pub name: String,
    pub status: SubscriberStatus,
    pub created_at: DateTime<Utc>,
    /// What they chose on their page (or the import said).
    pub preferences: Preferences,
}

pub(super) const SUBSCRIBER_COLUMNS: &str =
    "id, email, name, status, created_at, frequency, topics";

/// What `add` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    Added(i64),
    /// The address is already there with this status; nothing changed.
    Exists(i64, SubscriberStatus),
}

pub(super) fn subscriber_from_row(row: &AnyRow) -> Result<Subscriber, sqlx::Error> {
    let email: String = row.try_get("email")?;
    let status: String = row.try_get("status")?;
    Ok(Subscriber {
        id: row.try_get("id")?,
        email: EmailAddress::parse(&email).map_err(|e| sqlx::Error::Decode(e.into()))?,
        name: row.try_get("name")?,
        status: status
            .parse()
            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        created_at: from_ms(row.try_get("created_at")?),
        preferences: Preferences {
            frequency: row
                .try_get::<Option<String>, _>("frequency")?
                .map(|f| f.parse())
                .transpose()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            topics: Preferences::parse_topics(row.try_get::<Option<&str>, _>("topics")?),
        },
    })
}

/// Adds `n` new (and, for active ones, confirmed) subscribers at `t` to the
/// hourly growth counts of migration 0007: once per batch, not per row.
pub(super) async fn count_added(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    t: i64,
    n: u64,
    confirmed: bool,
) -> Result<(), Error> {
    if n == 0 {
        return Ok(());
    }
    let series: &[&str] = if confirmed {
        &["new", "confirmed"]
    } else {
        &["new"]
    };
    for s in series {
        sqlx::query(
            "INSERT INTO subscriber_growth (hour, series, n) VALUES ($1, $2, $3) \
             ON CONFLICT (hour, series) DO UPDATE SET n = subscriber_growth.n + excluded.n",
        )
        .bind(t / 3_600_000)
        .bind(*s)
        .bind(n as i64)
        .execute(&mut **tx)
        .await
        .db("counting growth")?;
    }
    Ok(())
}

impl Store {
    /// Adds addresses with `status` in one transaction; for each, reports whether it
    /// was added or which subscriber already has it (that one is left unchanged).
    pub async fn add_subscribers(
        &self,
        rows: &[(EmailAddress, String)],
        status: SubscriberStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<AddOutcome>, Error> {
        let t = ms(now);
        let confirmed = (status == SubscriberStatus::Active).then_some(t);
        let mut tx = self.pool.begin().await.db("adding subscribers")?;
        let mut out = Vec::with_capacity(rows.len());
        for (email, name) in rows {
            let inserted = sqlx::query(
                "INSERT INTO subscribers (email, email_key, name, status, created_at, updated_at, confirmed_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (email_key) DO NOTHING RETURNING id",
            )
            .bind(email.as_str())
            .bind(email.key())
            .bind(name)
            .bind(status.as_str())
            .bind(t)
            .bind(confirmed)
            .fetch_optional(&mut *tx)
            .await
            .db("adding a subscriber")?;
            let outcome = match inserted {
                Some(row) => AddOutcome::Added(row.try_get(0).db("adding a subscriber")?),
                None => {
                    let row =
                        sqlx::query("SELECT id, status FROM subscribers WHERE email_key = $1")
                            .bind(email.key())
                            .fetch_one(&mut *tx)
                            .await
                            .db("reading a subscriber")?;
                    let existing: String = row.try_get("status").db("reading a subscriber")?;
                    AddOutcome::Exists(
                        row.try_get("id").db("reading a subscriber")?,
                        existing.parse().map_err(Error::Internal)?,
                    )
                }
            };
            out.push(outcome);
        }
        let added = out
            .iter()
            .filter(|o| matches!(o, AddOutcome::Added(_)))
            .count() as u64;
        count_added(&mut tx, t, added, confirmed.is_some()).await?;
        tx.commit().await.db("adding subscribers")?;
        Ok(out)
    }

    /// Makes a pending or bounced subscriber active (the author vouches for them).
    pub async fn activate(&self, subscriber_id: i64, now: DateTime<Utc>) -> Result<(), Error> {
        let t = ms(now);
        sqlx::query(
            "UPDATE subscribers SET status = 'active', hard_bounces = 0, confirmed_at = COALESCE(confirmed_at, $1), \
             updated_at = $1 WHERE id = $2 AND status IN ('pending', 'bounced')",
        )
        .bind(t)
        .bind(subscriber_id)
        .execute(&self.pool)
        .await
        .db("activating a subscriber")?;
        Ok(())
    }

    pub async fn subscriber_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Subscriber>, Error> {
        let sql = format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE email_key = $1");
        let row = sqlx::query(&sql)
            .bind(email.key())
            .fetch_optional(&self.pool)
            .await
            .db("reading a subscriber")?;
        row.map(|r| subscriber_from_row(&r))
            .transpose()
            .db("decoding a subscriber")
    }

    pub async fn subscriber_by_id(&self, id: i64) -> Result<Option<Subscriber>, Error> {
        // A forgotten row answers to no token: it is nobody.
        let sql = format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = $1 AND status <> 'forgotten'"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .db("reading a subscriber")?;
        row.map(|r| subscriber_from_row(&r))
            .transpose()
            .db("decoding a subscriber")
    }

    /// A subscriber who asks again after leaving (or bouncing) starts over as pending,
    /// with a confirmation email due at once.
    pub async fn make_pending(&self, subscriber_id: i64, now: DateTime<Utc>) -> Result<(), Error> {
        sqlx::query(
            "UPDATE subscribers SET status = 'pending', hard_bounces = 0, confirm_sent_at = NULL, updated_at = $1 \
             WHERE id = $2 AND status IN ('unsubscribed', 'bounced')",
        )
        .bind(ms(now))
        .bind(subscriber_id)
        .execute(&self.pool)
        .await
        .db("restarting a subscription")?;
        Ok(())
    }

    /// Claims the right to send a confirmation email now: false if one went out less
    /// than `min_gap` ago. Atomic, so two requests at once send one email.
    pub async fn claim_confirmation(
        &self,
        subscriber_id: i64,
        now: DateTime<Utc>,
        min_gap: chrono::Duration,
    ) -> Result<bool, Error> {
        let t = ms(now);
        let claimed = sqlx::query(
            "UPDATE subscribers SET confirm_sent_at = $1 WHERE id = $2 AND status = 'pending' \
             AND (confirm_sent_at IS NULL OR confirm_sent_at <= $3)",
        )
        .bind(t)
        .bind(subscriber_id)
        .bind(t - min_gap.num_milliseconds())
        .execute(&self.pool)
        .await
        .db("recording a confirmation email")?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Gives the claim back when the email could not be sent, so a retry may send.
    pub async fn release_confirmation(&self, subscriber_id: i64) -> Result<(), Error> {
        sqlx::query("UPDATE subscribers SET confirm_sent_at = NULL WHERE id = $1")
            .bind(subscriber_id)
            .execute(&self.pool)
            .await
            .db("releasing a confirmation claim")?;
        Ok(())
    }

    /// Confirms a pending subscriber. Returns the status after the attempt and
    /// whether this call confirmed them (None if the id is unknown); only `pending`
    /// becomes `active`.
    pub async fn confirm(
        &self,
        subscriber_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<(SubscriberStatus, bool)>, Error> {
        let t = ms(now);
        let changed = sqlx::query(
            "UPDATE subscribers SET status = 'active', confirmed_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(t)
        .bind(subscriber_id)
        .execute(&self.pool)
        .await
        .db("confirming a subscriber")?
        .rows_affected()
            == 1;
        Ok(self
            .subscriber_by_id(subscriber_id)
            .await?
            .map(|s| (s.status, changed)))
    }

    /// Unsubscribes at once: the subscriber's queued and retrying deliveries become
    /// `skipped` in the same transaction. Returns false if the id is unknown.
    pub async fn unsubscribe(&self, subscriber_id: i64, now: DateTime<Utc>) -> Result<bool, Error> {
        let t = ms(now);
        let mut tx = self.pool.begin().await.db("unsubscribing")?;
        let changed = sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = COALESCE(unsubscribed_at, $1), \
             updated_at = $1 WHERE id = $2 AND status NOT IN ('unsubscribed', 'forgotten')",
        )
        .bind(t)
        .bind(subscriber_id)
        .execute(&mut *tx)
        .await
        .db("unsubscribing")?
        .rows_affected();
        skip_waiting(&mut tx, subscriber_id, "unsubscribed", t).await?;
        tx.commit().await.db("unsubscribing")?;
        if changed > 0 {
            return Ok(true);
        }
        Ok(self.subscriber_by_id(subscriber_id).await?.is_some())
    }

    /// Subscribers in id order, `limit` at a time after `after_id`: callers page
    /// through them so memory does not grow with the list.
    pub async fn subscribers_page(
        &self,
        status: Option<SubscriberStatus>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Subscriber>, Error> {
        let by_status = format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let everyone = format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE status <> 'forgotten' AND id > $1 \
             ORDER BY id LIMIT $2"
        );
        let rows = match status {
            Some(s) => sqlx::query(&by_status)
                .bind(s.as_str())
                .bind(after_id)
                .bind(limit),
            None => sqlx::query(&everyone).bind(after_id).bind(limit),
        }
        .fetch_all(&self.pool)
        .await
        .db("listing subscribers")?;
        rows.iter()
            .map(subscriber_from_row)
            .collect::<Result<_, _>>()
            .db("decoding subscribers")
    }

    pub async fn count_subscribers(&self, status: SubscriberStatus) -> Result<i64, Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await
            .db("counting subscribers")
    }

    /// Saves a reader's choices (an active or pending reader only).
    pub async fn set_preferences(
        &self,
        subscriber_id: i64,
        prefs: &Preferences,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        Ok(sqlx::query(
            "UPDATE subscribers SET frequency = $1, topics = $2, updated_at = $3 \
             WHERE id = $4 AND status IN ('active', 'pending')",
        )
        .bind(prefs.frequency.map(|f| f.as_str()))
        .bind(prefs.topics_json())
        .bind(ms(now))
        .bind(subscriber_id)
        .execute(&self.pool)
        .await
        .db("saving a reader's choices")?
        .rows_affected()
            == 1)
    }
}
