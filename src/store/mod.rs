//! The database. This is the only module that writes SQL, and the only place that
//! knows SQLite from PostgreSQL: queries are written once with `$N` parameters (both
//! engines accept them) and the few differences live in [`Dialect`].
//!
//! Times are stored as milliseconds since the Unix epoch, the same on both engines.

mod backup;
mod counts;
mod dashboard;
mod deliveries;
mod erasure;
mod import;
mod issues;
mod letters;
mod matching;
mod meta;
mod metrics;
mod posts;
mod reports;
mod skipping;
mod sources;
mod subscribers;

pub use backup::{
    backup_table, BackupTable, Column, ColumnKind, Restoring, SnapshotPart, BACKUP_TABLES,
    NOT_BACKED_UP,
};
pub use counts::{Engagement, FeedFollowers, IssueTally, LinkCount, PostCounts, Tallies, Tally};
pub use dashboard::{DayCounts, LogFilter, PostRow, SubscriberDelivery};
pub use deliveries::{Claimed, DeliveryLogRow, Outcome, OutcomeKind};
pub use erasure::Forgotten;
pub use import::{ImportedBatch, KeptAway, NewSubscriber, StatusCounts};
pub use issues::{issue_id_in_key, IssueQueued, IssueRecord, IssueStatus, COMPLAINT_RATE_LIMIT};
pub use letters::{Letter, LetterIssue, PlanPost, Planning, Readers};
pub use metrics::LogCounts;
pub use posts::SyncSummary;
pub use reports::{BouncePolicy, EventRow, NewReport, ReportRow, Target};
pub use skipping::WaitingDelivery;
pub use sources::{EntriesSummary, Source};
pub use subscribers::{AddOutcome, Subscriber};

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::error::{DbContext, Error};
use meta::{lock, read_meta, time_of_meta, write_meta};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The newest migration this posthorn knows: a database or a backup from a
/// newer one is refused.
pub fn newest_schema() -> i64 {
    SQLITE_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Appended to the row selection of a claim. PostgreSQL workers skip rows another
    /// worker is claiming instead of waiting on them; SQLite serialises writers anyway.
    fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// The recorder's one statement for a group of results, bound as one JSON
    /// array at `$2` (objects with the delivery `i`, status `s`, error `e`,
    /// reply `rp`, next attempt `n`, sent time `t`, relay `y` and the history's
    /// detail `d`), at time `$1`: each row updated while it is `sending`, and
    /// each attempt added to the history. One statement is one transaction and
    /// one round trip: at full speed, the commit stays as short as the crash
    /// window needs. In SQLite the work is the `delivery_results` view's
    /// trigger (migration 0011), each row found by its key.
    fn record_statement(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "INSERT INTO delivery_results (i, s, e, rp, n, t, y, d, at) \
                 SELECT value ->> '$.i', value ->> '$.s', value ->> '$.e', value ->> '$.rp', \
                 value ->> '$.n', value ->> '$.t', value ->> '$.y', value ->> '$.d', $1 \
                 FROM json_each($2) ORDER BY key"
            }
            Dialect::Postgres => {
                "WITH r AS (SELECT * FROM json_to_recordset($2::json) \
                   AS r(i bigint, s text, e text, rp text, n bigint, t bigint, y text, d text)), \
                 updated AS (UPDATE deliveries d SET status = r.s, \
                   last_error = CASE WHEN s.status = 'forgotten' THEN NULL ELSE r.e END, \
                   smtp_reply = CASE WHEN s.status = 'forgotten' THEN NULL ELSE COALESCE(r.rp, d.smtp_reply) END, \
                   next_attempt_at = r.n, sent_at = r.t, lease_until = NULL, updated_at = $1, \
                   relay = COALESCE(r.y, d.relay) \
                   FROM r, subscribers s \
                   WHERE d.id = r.i AND d.status = 'sending' AND s.id = d.subscriber_id) \
                 INSERT INTO delivery_events (delivery_id, at, kind, outcome, detail, relay) \
                 SELECT d.id, $1, 'attempt', r.s, CASE WHEN s.status = 'forgotten' THEN NULL ELSE r.d END, r.y \
                 FROM r JOIN deliveries d ON d.id = r.i JOIN subscribers s ON s.id = d.subscriber_id"
            }
        }
    }

    /// Inserts the subscribers in the JSON array bound at `$2` (see
    /// `import::wire_rows`), each an array (address, name, key, status,
    /// created, confirmed, unsubscribed, reason, frequency, topics, forgotten
    /// hash) whose empty cells take the defaults: the key is the address,
    /// the status `active`, created at `$1`, an active reader confirmed when
    /// created if the file says when (else unknown: an earlier import must
    /// not outweigh a later unsubscribe). An address already there is left as it is, and one whose hash
    /// was forgotten is left out. SQLite reads each row's array once
    /// (`MATERIALIZED`), not once per cell.
    fn insert_subscribers(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "WITH r (v) AS MATERIALIZED (SELECT value FROM json_each($2)) \
                 INSERT INTO subscribers (email, email_key, name, status, created_at, updated_at, \
                 confirmed_at, unsubscribed_at, status_reason, frequency, topics) \
                 SELECT v ->> 0, COALESCE(v ->> 2, v ->> 0), v ->> 1, COALESCE(v ->> 3, 'active'), \
                 COALESCE(v ->> 4, $1), $1, \
                 CASE WHEN v ->> 3 IS NULL THEN COALESCE(v ->> 5, v ->> 4) END, \
                 v ->> 6, v ->> 7, v ->> 8, v ->> 9 \
                 FROM r \
                 WHERE v ->> 10 IS NULL OR NOT EXISTS \
                 (SELECT 1 FROM forgotten_addresses WHERE key_hash = v ->> 10) \
                 ON CONFLICT (email_key) DO NOTHING"
            }
            Dialect::Postgres => {
                "INSERT INTO subscribers (email, email_key, name, status, created_at, updated_at, \
                 confirmed_at, unsubscribed_at, status_reason, frequency, topics) \
                 SELECT r ->> 0, COALESCE(r ->> 2, r ->> 0), r ->> 1, COALESCE(r ->> 3, 'active'), \
                 COALESCE((r ->> 4)::bigint, $1), $1, \
                 CASE WHEN r ->> 3 IS NULL THEN COALESCE((r ->> 5)::bigint, (r ->> 4)::bigint) END, \
                 (r ->> 6)::bigint, r ->> 7, r ->> 8, r ->> 9 \
                 FROM json_array_elements($2::json) AS r \
                 WHERE r ->> 10 IS NULL OR NOT EXISTS \
                 (SELECT 1 FROM forgotten_addresses WHERE key_hash = r ->> 10) \
                 ON CONFLICT (email_key) DO NOTHING"
            }
        }
    }

    /// The strings of the JSON array bound at parameter `param`, as a subquery
    /// for `IN (…)`.
    fn texts(self, param: usize) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each(${param})"),
            Dialect::Postgres => {
                format!("SELECT value FROM json_array_elements_text(${param}::json)")
            }
        }
    }

    /// The ids of the JSON array bound at parameter `param` (see [`id_list`]), as a
    /// subquery for `id IN (…)`. One parameter for any number of ids: binding
    /// each id costs a name lookup over all of a statement's parameters, so long
    /// lists grew quadratically, and every length was a statement of its own.
    fn ids(self, param: usize) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each(${param})"),
            Dialect::Postgres => {
                format!("SELECT value::bigint FROM json_array_elements_text(${param}::json)")
            }
        }
    }
}

/// A SQLite connection's page cache: 512 KiB keeps memory flat as the log
/// grows; the hot rows are few.
const SQLITE_CACHE: &str = "PRAGMA cache_size = -512";

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite has one writer at a time, and its busy handler sleeps and polls: under
    /// continuous group commit a claim could wait a second for a gap. Writers on the
    /// hot path queue here instead, first come first served.
    writers: Arc<tokio::sync::Mutex<()>>,
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Store {
    /// Opens (creating if needed) the database at `url` and runs the migrations.
    /// A relative SQLite path is read against `base_dir`.
    pub async fn open(url: &str, base_dir: &Path) -> Result<Store, Error> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (dialect, url) = if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if path.is_empty() || path == ":memory:" {
                return Err(Error::Config(
                    "database.url must name a SQLite file, e.g. sqlite://subscribers/posthorn.db"
                        .into(),
                ));
            }
            let path = Path::new(path);
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base_dir.join(path)
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let query = if query.is_empty() {
                "mode=rwc".to_string()
            } else {
                query.to_string()
            };
            (
                Dialect::Sqlite,
                format!("sqlite://{}?{}", path.display(), query),
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(Error::Config(format!(
                "database.url `{url}` is neither sqlite://… nor postgres://…"
            )));
        };

        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| Error::Config(format!("database.url: {e}")))?;
        let pool_options = match dialect {
            // One writer at a time is SQLite's nature; a few connections let readers in.
            Dialect::Sqlite => AnyPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;")
                            .await?;
                        conn.execute(SQLITE_CACHE).await?;
                        Ok(())
                    })
                }),
            Dialect::Postgres => AnyPoolOptions::new().max_connections(16),
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .db("connecting to the database")?;
        let store = Store {
            pool,
            dialect,
            writers: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A turn to write on the delivery hot path (claims and recorded results), held
    /// for one statement or transaction. PostgreSQL has row locks and needs no turn.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.dialect {
            Dialect::Sqlite => Some(self.writers.lock().await),
            Dialect::Postgres => None,
        }
    }

    async fn migrate(&self) -> Result<(), Error> {
        match self.dialect {
            Dialect::Sqlite => {
                // WAL lets `check`, `send` and `serve` read while one of them writes.
                // The mode is stored in the file, so only the first open changes it.
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(&self.pool)
                    .await
                    .db("reading the journal mode")?;
                if !mode.eq_ignore_ascii_case("wal") {
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&self.pool)
                        .await
                        .db("switching to WAL mode")?;
                }
                // A migration that rebuilds a table (to add a CHECK) must run with
                // foreign keys off; every reference is checked before they are on again.
                let mut conn = self.pool.acquire().await.db("opening a connection")?;
                sqlx::query("PRAGMA foreign_keys = OFF")
                    .execute(&mut *conn)
                    .await
                    .db("preparing migrations")?;
                let migrated = SQLITE_MIGRATIONS.run(&mut *conn).await;
                let broken = sqlx::query("PRAGMA foreign_key_check")
                    .fetch_all(&mut *conn)
                    .await
                    .db("checking references after migrating")?;
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&mut *conn)
                    .await
                    .db("finishing migrations")?;
                migrated?;
                if !broken.is_empty() {
                    return Err(Error::Internal(format!(
                        "after migrating, {} rows refer to rows that do not exist",
                        broken.len()
                    )));
                }
            }
            Dialect::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        let now = ms(Utc::now()).to_string();
        let instance = crate::domain::hex(&rand::random::<[u8; 6]>());
        for (key, value) in [
            ("created_at", now.as_str()),
            ("instance", instance.as_str()),
            ("lock:sync", ""),
            ("lock:issues", ""),
            ("lock:reports", ""),
            ("lock:counts", ""),
        ] {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .db("initialising meta")?;
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .db("asking the database for a sign of life")
    }

    /// Rewrites the database so that deleted and overwritten values leave no copy
    /// behind: SQLite rebuilds the file (free pages and page slack included) and
    /// empties its write-ahead log; PostgreSQL vacuums the tables that held a person.
    /// False when SQLite could not empty its log because a reader (a backup,
    /// say) still reads an older snapshot: old copies stay until a later one.
    pub async fn compact(&self) -> Result<bool, Error> {
        const WHAT: &str = "compacting the database";
        match self.dialect {
            Dialect::Sqlite => {
                sqlx::query("VACUUM").execute(&self.pool).await.db(WHAT)?;
                // (busy, frames in the log, frames copied): busy means a
                // reader held the log, which is then not emptied.
                let busy: i64 = sqlx::query_scalar("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&self.pool)
                    .await
                    .db(WHAT)?;
                Ok(busy == 0)
            }
            Dialect::Postgres => {
                sqlx::query("VACUUM subscribers, deliveries, delivery_events, reports")
                    .execute(&self.pool)
                    .await
                    .db(WHAT)?;
                Ok(true)
            }
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `$1, $2, …` for an `IN (…)` list starting at parameter `first` (of a few
/// texts; ids go in one parameter, see [`Dialect::ids`]).
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ids` as the JSON array that [`Dialect::ids`] reads.
fn id_list(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 8 + 2);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out.push(']');
    out
}
