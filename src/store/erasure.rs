//! Erasing a person across tables: the subscriber row, every quote of the
//! address in the log, and the database's free pages.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::skipping::skip_waiting;
use super::{ms, Store};
use crate::domain::EmailAddress;
use crate::error::{DbContext, Error};

/// What forgetting a person did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Forgotten {
    /// Whether a subscriber had the address. Without one, only the keyed hash
    /// is kept, so that no import adds the person.
    pub was_subscriber: bool,
    /// Deliveries kept for the counts, no longer linked to the person.
    pub deliveries_kept: i64,
    /// Replies, errors and reports the address was cut out of.
    pub quotes_cut: u64,
    /// The file transport's `.eml` files to the person, removed.
    pub outbox_files_removed: u64,
    /// SQLite's log could not be emptied: a reader of an older snapshot (a
    /// backup running now) held it, so old copies of the person's rows stay
    /// in the file until a later `forget` or compaction.
    pub old_copies_left: bool,
}

impl Store {
    /// Keeps the keyed hash of an address no subscriber has, so that no import
    /// adds the person (someone who asks to be forgotten before the list
    /// moves in, or after an upgrade from before hashes were kept).
    pub async fn remember_forgotten(&self, hashed: &str) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO forgotten_addresses (key_hash) VALUES ($1) ON CONFLICT (key_hash) DO NOTHING",
        )
        .bind(hashed)
        .execute(&self.pool)
        .await
        .db("remembering a forgotten address")?;
        Ok(())
    }

    /// Erases a person: their row keeps only its id and times, the address is
    /// cut out of every reply, error and report that quotes it, and their
    /// deliveries stay (for the counts) linked to that nameless row. Then the
    /// database is compacted so that no old copy of a page keeps the address.
    /// `None` when no subscriber has the address. `hashed` (a keyed hash of
    /// the address) is kept so that an import can leave the person out.
    pub async fn forget(
        &self,
        email: &EmailAddress,
        hashed: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Forgotten>, Error> {
        let t = ms(now);
        let mut tx = self.pool.begin().await.db("forgetting a person")?;
        let row = sqlx::query("SELECT id FROM subscribers WHERE email_key = $1")
            .bind(email.key())
            .fetch_optional(&mut *tx)
            .await
            .db("forgetting a person")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id").db("forgetting a person")?;
        skip_waiting(&mut tx, id, "forgotten", t).await?;
        sqlx::query(
            "UPDATE subscribers SET email = '', email_key = $1, name = '', status = 'forgotten', \
             frequency = NULL, topics = NULL, status_reason = NULL, confirmed_at = NULL, \
             unsubscribed_at = NULL, confirm_sent_at = NULL, hard_bounces = 0, updated_at = $2 WHERE id = $3",
        )
        .bind(format!("forgotten:{id}"))
        .bind(t)
        .bind(id)
        .execute(&mut *tx)
        .await
        .db("forgetting a person")?;
        sqlx::query(
            "INSERT INTO forgotten_addresses (key_hash) VALUES ($1) ON CONFLICT (key_hash) DO NOTHING",
        )
        .bind(hashed)
        .execute(&mut *tx)
        .await
        .db("forgetting a person")?;
        // Wherever a reply, an error or a report quotes the address, in any case.
        let key = email.key();
        let pattern = format!("%{}%", like_escape(&key));
        let quoted = regex::Regex::new(&format!("(?i){}", regex::escape(&key)))
            .map_err(|e| Error::Internal(format!("matching an address: {e}")))?;
        let mut cut = 0;
        for (table, column, theirs) in [
            ("deliveries", "last_error", Some("subscriber_id = $2")),
            ("deliveries", "smtp_reply", Some("subscriber_id = $2")),
            (
                "delivery_events",
                "detail",
                Some("delivery_id IN (SELECT id FROM deliveries WHERE subscriber_id = $2)"),
            ),
            // Reports may be unmatched: every one is looked at.
            ("reports", "diagnostic", None),
            ("reports", "recipient", None),
        ] {
            // Table, column and scope are the constants above, never input.
            let scope = theirs.map(|s| format!(" AND {s}")).unwrap_or_default();
            let sql = format!(
                "SELECT id, {column} FROM {table} WHERE LOWER({column}) LIKE $1 ESCAPE '\\'{scope}"
            );
            let query = sqlx::query(&sql).bind(&pattern);
            let query = if theirs.is_some() {
                query.bind(id)
            } else {
                query
            };
            let rows = query
                .fetch_all(&mut *tx)
                .await
                .db("finding the address in the log")?;
            for row in rows {
                let row_id: i64 = row.try_get(0).db("finding the address in the log")?;
                let text: String = row.try_get(1).db("finding the address in the log")?;
                // A report's recipient is the address itself: it goes whole.
                let value = (column != "recipient")
                    .then(|| quoted.replace_all(&text, "[forgotten]").into_owned());
                let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2");
                sqlx::query(&sql)
                    .bind(value)
                    .bind(row_id)
                    .execute(&mut *tx)
                    .await
                    .db("cutting the address out of the log")?;
                cut += 1;
            }
        }
        let kept: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE subscriber_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .db("counting deliveries")?;
        tx.commit().await.db("forgetting a person")?;
        let compacted = self.compact().await?;
        Ok(Some(Forgotten {
            was_subscriber: true,
            deliveries_kept: kept,
            quotes_cut: cut,
            outbox_files_removed: 0,
            old_copies_left: !compacted,
        }))
    }
}

/// `LIKE` matches `%` and `_` as wildcards; an address may contain `_`.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
