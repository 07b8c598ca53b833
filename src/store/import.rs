//! Subscribers arriving from an export, a batch at a time: new addresses are
//! added with the status the export gave them, and an address posthorn knows
//! already keeps posthorn's word, except that leaving always wins.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::reports::set_subscriber_gone;
use super::subscribers::count_added;
use super::{ms, Dialect, Store};
use crate::domain::{EmailAddress, Preferences, SubscriberStatus};
use crate::error::{DbContext, Error};

/// A subscriber to insert: an import's row.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: EmailAddress,
    pub name: String,
    pub preferences: Preferences,
    /// `active`, `pending` (gets no mail until confirmed), `unsubscribed` or
    /// `bounced`; never `forgotten`.
    pub status: SubscriberStatus,
    /// Why they left, kept with them: "unsubscribed at Mailchimp", "complaint
    /// at Kit".
    pub reason: Option<String>,
    /// When they signed up, if the export says; else the time of the import.
    pub created_at: Option<DateTime<Utc>>,
    /// When they confirmed (active readers): the sign-up time when unknown, and
    /// unknown when neither is given.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When they left, if the export says.
    pub left_at: Option<DateTime<Utc>>,
    /// The keyed hash of the address (see `Tokens::forgotten_address`), set
    /// when some address was ever forgotten.
    pub forgotten: Option<String>,
}

impl NewSubscriber {
    /// An address the author vouches for: active from now, as `subscribers add` makes.
    pub fn active(email: EmailAddress, name: String, preferences: Preferences) -> NewSubscriber {
        NewSubscriber {
            email,
            name,
            preferences,
            status: SubscriberStatus::Active,
            reason: None,
            created_at: None,
            confirmed_at: None,
            left_at: None,
            forgotten: None,
        }
    }

    fn leaves(&self) -> bool {
        matches!(
            self.status,
            SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced
        )
    }
}

/// Subscribers by status, as an import added or changed them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    pub active: u64,
    pub pending: u64,
    pub unsubscribed: u64,
    pub bounced: u64,
}

impl StatusCounts {
    pub fn add(&mut self, status: SubscriberStatus, n: u64) {
        match status {
            SubscriberStatus::Active => self.active += n,
            SubscriberStatus::Pending => self.pending += n,
            SubscriberStatus::Unsubscribed => self.unsubscribed += n,
            SubscriberStatus::Bounced | SubscriberStatus::Forgotten => self.bounced += n,
        }
    }

    pub fn merge(&mut self, other: StatusCounts) {
        self.active += other.active;
        self.pending += other.pending;
        self.unsubscribed += other.unsubscribed;
        self.bounced += other.bounced;
    }

    pub fn total(&self) -> u64 {
        self.active + self.pending + self.unsubscribed + self.bounced
    }
}

/// Addresses an export listed as subscribed that posthorn has as gone: they
/// stay gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeptAway {
    pub unsubscribed: u64,
    pub bounced: u64,
    pub complained: u64,
    pub forgotten: u64,
}

impl KeptAway {
    pub fn merge(&mut self, other: KeptAway) {
        self.unsubscribed += other.unsubscribed;
        self.bounced += other.bounced;
        self.complained += other.complained;
        self.forgotten += other.forgotten;
    }

    pub fn total(&self) -> u64 {
        self.unsubscribed + self.bounced + self.complained + self.forgotten
    }
}

/// What one batch of an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedBatch {
    /// New subscribers, by the status they were given.
    pub added: StatusCounts,
    /// Addresses posthorn had, left as they were.
    pub already_present: u64,
    /// Subscribers posthorn had as active or pending whom the export lists as
    /// unsubscribed or bounced (after posthorn last confirmed them): they are
    /// now, and their waiting deliveries are skipped.
    pub left_now: StatusCounts,
    pub kept_away: KeptAway,
}

/// A subscriber the batch found already there.
struct Present {
    id: i64,
    status: SubscriberStatus,
    complained: bool,
    created_at: i64,
    confirmed_at: Option<i64>,
}

impl Store {
    /// Whether any address was ever forgotten: only then is an import's every
    /// address hashed to look for them.
    pub async fn any_forgotten(&self) -> Result<bool, Error> {
        let row = sqlx::query("SELECT EXISTS (SELECT 1 FROM forgotten_addresses) AS any")
            .fetch_one(&self.pool)
            .await
            .db("reading forgotten addresses")?;
        // SQLite answers an integer, PostgreSQL a boolean.
        row.try_get::<bool, _>("any")
            .or_else(|_| row.try_get::<i64, _>("any").map(|n| n != 0))
            .db("reading forgotten addresses")
    }

    /// How many people were forgotten before their hashes were kept (see
    /// migration 0013): an import cannot recognise them.
    pub async fn forgotten_before_hashes(&self) -> Result<i64, Error> {
        sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM forgotten_before_hashes",
        )
        .fetch_one(&self.pool)
        .await
        .db("reading forgotten addresses")
    }

    /// Imports one batch in one transaction, thousands of rows per statement.
    /// New addresses (not forgotten ones) are added with their own status and
    /// times; for the rest see [`ImportedBatch`].
    pub async fn import_subscribers(
        &self,
        rows: &[NewSubscriber],
        now: DateTime<Utc>,
    ) -> Result<ImportedBatch, Error> {
        const ROWS_PER_STATEMENT: usize = 5_000;
        const WHAT: &str = "importing subscribers";
        let t = ms(now);
        let mut tx = self.pool.begin().await.db(WHAT)?;
        // A big batch touches pages all over the address index: a larger page
        // cache for its length, then the connection's own again.
        if self.dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA cache_size = -16384")
                .execute(&mut *tx)
                .await
                .db(WHAT)?;
        }
        // Rows up to this id were there before: whatever the batch did not add
        // and finds at or below it was present already.
        let before: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) AS n FROM subscribers")
            .fetch_one(&mut *tx)
            .await
            .db(WHAT)?
            .try_get("n")
            .db(WHAT)?;
        let mut added = 0;
        // One JSON array per statement: binding each value costs a name lookup
        // over all of a statement's parameters, so hundreds of them made an
        // import quadratic.
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let rows = wire_rows(chunk, t);
            added += sqlx::query(self.dialect.insert_subscribers())
                .bind(t)
                .bind(rows)
                .execute(&mut *tx)
                .await
                .db(WHAT)?
                .rows_affected();
        }
        let mut batch = ImportedBatch::default();
        if added == rows.len() as u64 {
            for row in rows {
                batch.added.add(row.status, 1);
            }
        } else {
            let present = present(&mut tx, self.dialect, rows, before).await?;
            let forgotten = forgotten(&mut tx, self.dialect, rows).await?;
            for row in rows {
                if let Some(p) = present.get(&row.email.key()) {
                    self.settle(&mut tx, row, p, &mut batch, t).await?;
                } else if row
                    .forgotten
                    .as_ref()
                    .is_some_and(|h| forgotten.contains(h))
                {
                    batch.kept_away.forgotten += 1;
                } else {
                    batch.added.add(row.status, 1);
                }
            }
        }
        count_added(&mut tx, t, batch.added.active, true).await?;
        if self.dialect == Dialect::Sqlite {
            sqlx::query(super::SQLITE_CACHE)
                .execute(&mut *tx)
                .await
                .db(WHAT)?;
        }
        tx.commit().await.db(WHAT)?;
        Ok(batch)
    }

    /// An address the export lists and posthorn has: posthorn's word stands,
    /// except that an export's leaving after posthorn last confirmed them is
    /// applied.
    async fn settle(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        row: &NewSubscriber,
        present: &Present,
        batch: &mut ImportedBatch,
        t: i64,
    ) -> Result<(), Error> {
        match present.status {
            SubscriberStatus::Active | SubscriberStatus::Pending => {
                // Leaving wins unless posthorn knows the reader chose again
                // later: confirmed (active) or signed up (pending) after the
                // time the file gives for leaving.
                let chose_again = match present.status {
                    SubscriberStatus::Active => present.confirmed_at,
                    _ => Some(present.created_at),
                };
                let after_choosing = match (row.left_at, chose_again) {
                    (Some(left), Some(chose)) => ms(left) > chose,
                    _ => true,
                };
                if row.leaves() && after_choosing {
                    let why = row.reason.as_deref().unwrap_or("left, says the import");
                    set_subscriber_gone(tx, present.id, row.status, why, t).await?;
                    batch.left_now.add(row.status, 1);
                } else {
                    batch.already_present += 1;
                }
            }
            _ if row.leaves() => batch.already_present += 1,
            SubscriberStatus::Unsubscribed if present.complained => batch.kept_away.complained += 1,
            SubscriberStatus::Unsubscribed => batch.kept_away.unsubscribed += 1,
            SubscriberStatus::Bounced => batch.kept_away.bounced += 1,
            SubscriberStatus::Forgotten => batch.kept_away.forgotten += 1,
        }
        Ok(())
    }
}

/// A cell of a row on the wire.
enum Cell<'a> {
    Text(&'a str),
    Number(i64),
}

/// A batch as the insert statement reads it (see `Dialect::insert_subscribers`):
/// a JSON array of arrays, each written straight into one buffer. Defaults are
/// left empty (the key when it is the address, `active`, created now,
/// confirmed when created) and trailing empty cells left off, so that the
/// common row is `["address","name"]`: less to write, and less for the
/// database to read a million times.
fn wire_rows(rows: &[NewSubscriber], t: i64) -> String {
    let mut out = Vec::with_capacity(rows.len() * 64);
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let key = row.email.key();
        let active = row.status == SubscriberStatus::Active;
        let created = row.created_at.map(ms);
        let confirmed = row
            .confirmed_at
            .map(ms)
            .filter(|c| active && Some(*c) != created);
        let unsubscribed =
            (row.status == SubscriberStatus::Unsubscribed).then(|| row.left_at.map_or(t, ms));
        let topics = row.preferences.topics_json();
        let cells = [
            Some(Cell::Text(row.email.as_str())),
            Some(Cell::Text(&row.name)),
            (key != row.email.as_str()).then_some(Cell::Text(&key)),
            (!active).then_some(Cell::Text(row.status.as_str())),
            created.map(Cell::Number),
            confirmed.map(Cell::Number),
            unsubscribed.map(Cell::Number),
            row.reason.as_deref().map(Cell::Text),
            row.preferences.frequency.map(|f| Cell::Text(f.as_str())),
            topics.as_deref().map(Cell::Text),
            row.forgotten.as_deref().map(Cell::Text),
        ];
        let used = cells
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |last| last + 1);
        out.push(b'[');
        for (j, cell) in cells[..used].iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            match cell {
                None => out.extend_from_slice(b"null"),
                Some(Cell::Number(n)) => out.extend_from_slice(n.to_string().as_bytes()),
                // Writing a string into a Vec cannot fail.
                Some(Cell::Text(s)) => {
                    let _ = serde_json::to_writer(&mut out, s);
                }
            }
        }
        out.push(b']');
    }
    out.push(b']');
    // Only JSON was written: ASCII punctuation and escaped UTF-8 strings.
    String::from_utf8(out).unwrap_or_default()
}

/// The subscribers among `rows` that were there before the batch (ids up to
/// `before`), by address key.
async fn present(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    rows: &[NewSubscriber],
    before: i64,
) -> Result<HashMap<String, Present>, Error> {
    const WHAT: &str = "reading the subscribers an import names";
    let keys: Vec<String> = rows.iter().map(|r| r.email.key()).collect();
    let keys = serde_json::to_string(&keys).map_err(|e| Error::Internal(e.to_string()))?;
    let sql = format!(
        "SELECT id, email_key, status, status_reason, created_at, confirmed_at FROM subscribers \
         WHERE id <= $1 AND email_key IN ({})",
        dialect.texts(2)
    );
    let found = sqlx::query(&sql)
        .bind(before)
        .bind(keys)
        .fetch_all(&mut **tx)
        .await
        .db(WHAT)?;
    let mut present = HashMap::with_capacity(found.len());
    for r in found {
        let status: String = r.try_get("status").db(WHAT)?;
        let reason: Option<String> = r.try_get("status_reason").db(WHAT)?;
        present.insert(
            r.try_get("email_key").db(WHAT)?,
            Present {
                id: r.try_get("id").db(WHAT)?,
                status: status.parse().map_err(Error::Internal)?,
                complained: reason.is_some_and(|r| r.starts_with("complaint")),
                created_at: r.try_get("created_at").db(WHAT)?,
                confirmed_at: r.try_get("confirmed_at").db(WHAT)?,
            },
        );
    }
    Ok(present)
}

/// The hashes among `rows` of addresses that were forgotten.
async fn forgotten(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    rows: &[NewSubscriber],
) -> Result<HashSet<String>, Error> {
    const WHAT: &str = "reading forgotten addresses";
    let hashes: Vec<&str> = rows.iter().filter_map(|r| r.forgotten.as_deref()).collect();
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let hashes = serde_json::to_string(&hashes).map_err(|e| Error::Internal(e.to_string()))?;
    let sql = format!(
        "SELECT key_hash FROM forgotten_addresses WHERE key_hash IN ({})",
        dialect.texts(1)
    );
    sqlx::query(&sql)
        .bind(hashes)
        .fetch_all(&mut **tx)
        .await
        .db(WHAT)?
        .iter()
        .map(|r| r.try_get("key_hash").db(WHAT))
        .collect()
}
