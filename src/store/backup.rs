//! The database's side of backups: which tables and columns a backup holds,
//! one consistent snapshot of them as rows of JSON, and loading those rows
//! back, on either engine, in one transaction.
//!
//! A row is a JSON array of its columns in the listed order: integers as
//! numbers, text as strings, bytes as lowercase hex, NULL as `null`. Each
//! engine writes and reads that array itself, so a row never passes through a
//! typed Rust value on its way to or from the file.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{Any, Transaction};
use tokio::sync::mpsc;

use super::{ms, Dialect, Store};
use crate::error::{DbContext, Error};

/// How a column's values are written in a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Integer,
    Text,
    /// Hex in the file: JSON has no bytes.
    Bytes,
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnKind,
}

/// A table a backup holds.
#[derive(Debug)]
pub struct BackupTable {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// The primary key: rows are written in its order.
    order: &'static str,
    /// Rows left out: `meta`'s locks belong to the processes running now.
    only: Option<&'static str>,
    /// Filled by the migrations themselves (`meta`, a count made when 0013
    /// ran): replaced by the backup's rows rather than checked to be empty.
    seeded: bool,
}

impl BackupTable {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether the key is an `id` that PostgreSQL draws from a sequence.
    fn has_id_sequence(&self) -> bool {
        self.order == "id"
    }
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnKind::Integer,
    }
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnKind::Text,
    }
}

const fn bytes(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnKind::Bytes,
    }
}

const fn table(name: &'static str, order: &'static str, columns: &'static [Column]) -> BackupTable {
    BackupTable {
        name,
        columns,
        order,
        only: None,
        seeded: false,
    }
}

/// Every table a backup holds, each after the tables it refers to.
///
/// Left out, and why: `admin_sessions` (sign-ins belong to the browsers of
/// the site that made them); `delivery_counts`, `report_counts` and their
/// PostgreSQL deltas (rebuilt by their triggers as the rows are loaded). A
/// test checks that every other table and column of the schema is here, so a
/// migration that adds one cannot be forgotten.
pub static BACKUP_TABLES: &[BackupTable] = &[
    BackupTable {
        name: "meta",
        columns: &[text("key"), text("value")],
        order: "key",
        only: Some("key NOT LIKE 'lock:%'"),
        seeded: true,
    },
    BackupTable {
        name: "forgotten_before_hashes",
        columns: &[int("n")],
        order: "n",
        only: None,
        seeded: true,
    },
    table("forgotten_addresses", "key_hash", &[text("key_hash")]),
    table(
        "subscribers",
        "id",
        &[
            int("id"),
            text("email"),
            text("email_key"),
            text("name"),
            text("status"),
            int("created_at"),
            int("updated_at"),
            int("confirmed_at"),
            int("unsubscribed_at"),
            int("hard_bounces"),
            int("confirm_sent_at"),
            text("status_reason"),
            text("frequency"),
            text("topics"),
        ],
    ),
    table(
        "subscriber_growth",
        "hour, series",
        &[int("hour"), text("series"), int("n")],
    ),
    table(
        "posts",
        "id",
        &[
            int("id"),
            text("uid"),
            text("slug"),
            text("source"),
            text("title"),
            text("summary"),
            text("content_html"),
            text("tags"),
            int("published_at"),
            int("updated_at"),
            int("draft"),
            int("email"),
            text("external_url"),
            text("content_hash"),
            int("announce"),
            int("first_seen_at"),
            int("synced_at"),
            int("removed_at"),
            int("planned_at"),
        ],
    ),
    table(
        "sources",
        "id",
        &[
            int("id"),
            text("url"),
            text("fetch_url"),
            text("etag"),
            text("last_modified"),
            int("first_fetched_at"),
            int("last_fetch_at"),
            text("last_status"),
            text("last_error"),
            int("created_at"),
        ],
    ),
    table(
        "source_entries",
        "id",
        &[
            int("id"),
            int("source_id"),
            text("entry_key"),
            text("link"),
            int("post_id"),
            int("first_seen_at"),
        ],
    ),
    table(
        "issues",
        "id",
        &[
            int("id"),
            int("post_id"),
            text("subject"),
            text("origin"),
            int("created_at"),
            text("kind"),
            text("frequency"),
        ],
    ),
    table(
        "issue_posts",
        "issue_id, post_id",
        &[int("issue_id"), int("post_id")],
    ),
    table(
        "deliveries",
        "id",
        &[
            int("id"),
            int("issue_id"),
            int("subscriber_id"),
            text("status"),
            int("attempts"),
            int("attempt_base"),
            text("last_error"),
            text("smtp_reply"),
            int("created_at"),
            int("updated_at"),
            int("next_attempt_at"),
            int("lease_until"),
            int("sent_at"),
            text("lease_owner"),
            text("relay"),
        ],
    ),
    table(
        "reports",
        "id",
        &[
            int("id"),
            text("fingerprint"),
            int("received_at"),
            text("source"),
            text("kind"),
            text("recipient"),
            text("status"),
            int("hard"),
            text("diagnostic"),
            text("feedback_type"),
            int("delivery_id"),
            text("matched_by"),
            text("effect"),
            text("reason"),
        ],
    ),
    table(
        "delivery_events",
        "id",
        &[
            int("id"),
            int("delivery_id"),
            int("at"),
            text("kind"),
            text("outcome"),
            text("detail"),
            int("report_id"),
            text("relay"),
        ],
    ),
    table(
        "issue_counts",
        "issue_id",
        &[
            int("issue_id"),
            int("clicks"),
            bytes("clickers"),
            int("opens"),
            bytes("openers"),
            int("machine_opens"),
        ],
    ),
    table(
        "link_counts",
        "issue_id, url_key",
        &[
            int("issue_id"),
            text("url_key"),
            text("url"),
            int("clicks"),
            bytes("clickers"),
        ],
    ),
    table(
        "post_views",
        "post_id, day",
        &[int("post_id"), text("day"), int("views")],
    ),
    table(
        "feed_followers",
        "feed, service",
        &[
            text("feed"),
            text("service"),
            int("followers"),
            int("seen_at"),
        ],
    ),
];

/// Tables of the schema a backup leaves out on purpose (see [`BACKUP_TABLES`]).
pub const NOT_BACKED_UP: &[&str] = &[
    "admin_sessions",
    "delivery_counts",
    "delivery_count_deltas",
    "report_counts",
    "report_count_deltas",
    "_sqlx_migrations",
];

pub fn backup_table(name: &str) -> Option<&'static BackupTable> {
    BACKUP_TABLES.iter().find(|t| t.name == name)
}

/// Rows read at once from a table keyed by `id`.
const SNAPSHOT_PAGE: i64 = 4096;

/// What a snapshot sends, in order: `Begin`, then for each table its `Table`
/// and its rows.
#[derive(Debug)]
pub enum SnapshotPart {
    Begin {
        engine: Dialect,
        schema: i64,
    },
    Table(&'static BackupTable),
    /// `rows` rows of the last table named, each a JSON array, joined by
    /// newlines (JSON text holds none of its own).
    Rows {
        text: String,
        rows: u64,
    },
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// Each row of `table` as a JSON array: the cells' SQL.
    fn row_array(self, table: &BackupTable) -> String {
        let values = table
            .columns
            .iter()
            .map(|c| match (c.kind, self) {
                (ColumnKind::Bytes, Dialect::Sqlite) => {
                    format!(
                        "CASE WHEN {0} IS NULL THEN NULL ELSE lower(hex({0})) END",
                        c.name
                    )
                }
                (ColumnKind::Bytes, Dialect::Postgres) => format!("encode({}, 'hex')", c.name),
                _ => c.name.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            Dialect::Sqlite => format!("json_array({values})"),
            Dialect::Postgres => format!("json_build_array({values})::text"),
        }
    }

    /// Every row of a small table, in key order.
    fn snapshot_rows(self, table: &BackupTable) -> String {
        let only = table
            .only
            .map(|w| format!(" WHERE {w}"))
            .unwrap_or_default();
        format!(
            "SELECT {} FROM {}{only} ORDER BY {}",
            self.row_array(table),
            table.name,
            table.order
        )
    }

    /// A page of a table keyed by `id`: the rows after id `$1`, at most `$2`,
    /// joined by newlines into one text, and the last id. A page is one value
    /// from the engine instead of thousands: for the log's millions of rows,
    /// passing each row alone cost more than reading it.
    fn snapshot_page(self, table: &BackupTable) -> String {
        let join = match self {
            Dialect::Sqlite => "group_concat(j, char(10) ORDER BY id)",
            Dialect::Postgres => "string_agg(j, E'\\n' ORDER BY id)",
        };
        format!(
            "SELECT MAX(id), CAST(COUNT(*) AS BIGINT), {join} FROM \
             (SELECT id, {} AS j FROM {} WHERE id > $1 ORDER BY id LIMIT $2) AS page",
            self.row_array(table),
            table.name
        )
    }

    /// Inserts the rows of the JSON array (of arrays) bound at `$1`, whose
    /// cells are `columns` in that order.
    fn restore_rows(self, table: &BackupTable, columns: &[&'static Column]) -> String {
        let names = columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ");
        let values = columns
            .iter()
            .enumerate()
            .map(|(i, c)| match (c.kind, self) {
                (ColumnKind::Integer | ColumnKind::Text, Dialect::Sqlite) => {
                    format!("value ->> {i}")
                }
                (ColumnKind::Bytes, Dialect::Sqlite) => format!("unhex(value ->> {i})"),
                (ColumnKind::Integer, Dialect::Postgres) => format!("(r ->> {i})::bigint"),
                (ColumnKind::Text, Dialect::Postgres) => format!("r ->> {i}"),
                (ColumnKind::Bytes, Dialect::Postgres) => format!("decode(r ->> {i}, 'hex')"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let from = match self {
            Dialect::Sqlite => "json_each($1)",
            Dialect::Postgres => "jsonb_array_elements($1::jsonb) AS r",
        };
        format!(
            "INSERT INTO {} ({names}) SELECT {values} FROM {from}",
            table.name
        )
    }
}

/// A restore in progress: one transaction, so a restore that fails at any
/// point leaves the database as empty as it found it.
pub struct Restoring {
    tx: Transaction<'static, Any>,
    dialect: Dialect,
    /// PostgreSQL: the secondary indexes dropped for the load, rebuilt
    /// before the commit (each name and `CREATE INDEX` statement).
    indexes: Vec<(String, String)>,
}

impl Store {
    /// The newest migration this database has run.
    pub async fn schema_version(&self) -> Result<i64, Error> {
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .db("reading the schema version")
    }

    /// Sends every row of [`BACKUP_TABLES`] to `parts`, all from one snapshot
    /// of the database: SQLite's WAL and PostgreSQL's `REPEATABLE READ` let
    /// the worker go on writing meanwhile, unseen. Stops early, without error,
    /// if the receiver goes away (it failed, and says why).
    pub async fn snapshot(&self, parts: mpsc::Sender<SnapshotPart>) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.db("starting the snapshot")?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .db("starting the snapshot")?;
        }
        // SQLite's snapshot begins with the first read, and this is it.
        let schema: i64 =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&mut *tx)
                .await
                .db("reading the schema version")?;
        let begin = SnapshotPart::Begin {
            engine: self.dialect,
            schema,
        };
        if parts.send(begin).await.is_err() {
            return Ok(());
        }
        for table in BACKUP_TABLES {
            if parts.send(SnapshotPart::Table(table)).await.is_err() {
                return Ok(());
            }
            let context = format!("reading {}", table.name);
            if table.has_id_sequence() {
                let sql = self.dialect.snapshot_page(table);
                let mut after = 0_i64;
                loop {
                    let (last, rows, text): (Option<i64>, i64, Option<String>) =
                        sqlx::query_as(&sql)
                            .bind(after)
                            .bind(SNAPSHOT_PAGE)
                            .fetch_one(&mut *tx)
                            .await
                            .db(&context)?;
                    let (Some(last), Some(text)) = (last, text) else {
                        break;
                    };
                    after = last;
                    let rows = rows.unsigned_abs();
                    if parts.send(SnapshotPart::Rows { text, rows }).await.is_err() {
                        return Ok(());
                    }
                }
                continue;
            }
            let sql = self.dialect.snapshot_rows(table);
            let mut rows = sqlx::query_scalar::<_, String>(&sql).fetch(&mut *tx);
            let mut text = String::new();
            let mut n = 0;
            while let Some(row) = rows.try_next().await.db(&context)? {
                if n > 0 {
                    text.push('\n');
                }
                text.push_str(&row);
                n += 1;
            }
            if n > 0
                && parts
                    .send(SnapshotPart::Rows { text, rows: n })
                    .await
                    .is_err()
            {
                return Ok(());
            }
        }
        tx.rollback().await.db("ending the snapshot")?;
        Ok(())
    }

    /// Whether the database holds nothing a backup would keep (the
    /// migrations' own rows aside): what `backup` refuses, since it means a
    /// wrong `database.url` more often than a site with nothing in it.
    pub async fn holds_nothing(&self) -> Result<bool, Error> {
        let filled: Vec<(String, i64)> = sqlx::query_as(&filled_tables())
            .fetch_all(&self.pool)
            .await
            .db("looking into the database")?;
        Ok(filled.is_empty())
    }

    /// Starts a restore: refused unless every table a backup fills is empty
    /// (the migrations' own rows aside, which the backup's replace).
    pub async fn begin_restore(&self) -> Result<Restoring, Error> {
        let mut tx = self.pool.begin().await.db("starting the restore")?;
        if self.dialect == Dialect::Postgres {
            // Writers that come meanwhile wait for the restore to end.
            let all: Vec<&str> = BACKUP_TABLES.iter().map(|t| t.name).collect();
            sqlx::query(&format!(
                "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
                all.join(", ")
            ))
            .execute(&mut *tx)
            .await
            .db("locking the tables to restore into")?;
        }
        let filled: Vec<(String, i64)> = sqlx::query_as(&filled_tables())
            .fetch_all(&mut *tx)
            .await
            .db("checking that the database is empty")?;
        if !filled.is_empty() {
            let rows: Vec<String> = filled.iter().map(|(t, n)| format!("{n} in {t}")).collect();
            return Err(Error::Conflict(format!(
                "the database is not empty (rows: {}); restore only into an empty database, \
                 so that nothing in it is lost or mixed with the backup's. Nothing was written",
                rows.join(", ")
            )));
        }
        for table in BACKUP_TABLES.iter().filter(|t| t.seeded) {
            let only = table
                .only
                .map(|w| format!(" WHERE {w}"))
                .unwrap_or_default();
            sqlx::query(&format!("DELETE FROM {}{only}", table.name))
                .execute(&mut *tx)
                .await
                .db("clearing the migrations' own rows")?;
        }
        // PostgreSQL builds an index once over all the rows much faster than
        // it keeps one up to date row by row, as pg_restore does. Only
        // indexes no constraint needs; all inside the transaction.
        let mut indexes: Vec<(String, String)> = Vec::new();
        if self.dialect == Dialect::Postgres {
            let names: Vec<String> = BACKUP_TABLES
                .iter()
                .map(|t| format!("'{}'", t.name))
                .collect();
            indexes = sqlx::query_as(&format!(
                "SELECT indexname::text, indexdef FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename IN ({}) \
                 AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname",
                names.join(", ")
            ))
            .fetch_all(&mut *tx)
            .await
            .db("reading the indexes")?;
            for (name, _) in &indexes {
                sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
                    .execute(&mut *tx)
                    .await
                    .db("setting an index aside for the load")?;
            }
        }
        Ok(Restoring {
            tx,
            dialect: self.dialect,
            indexes,
        })
    }
}

/// Each table a backup fills (the seeded aside) that has rows, with its count.
fn filled_tables() -> String {
    let counts: Vec<String> = BACKUP_TABLES
        .iter()
        .filter(|t| !t.seeded)
        .map(|t| {
            format!(
                "SELECT '{0}' AS t, CAST(COUNT(*) AS BIGINT) AS n FROM {0}",
                t.name
            )
        })
        .collect();
    format!(
        "SELECT t, n FROM ({}) AS counts WHERE n > 0",
        counts.join(" UNION ALL ")
    )
}

impl Restoring {
    /// Inserts `rows`, a JSON array of row arrays whose cells are `columns`.
    pub async fn insert(
        &mut self,
        table: &BackupTable,
        columns: &[&'static Column],
        rows: &str,
    ) -> Result<u64, Error> {
        let sql = self.dialect.restore_rows(table, columns);
        sqlx::query(&sql)
            .bind(rows)
            .execute(&mut *self.tx)
            .await
            .map(|done| done.rows_affected())
            .db(&format!("restoring {}", table.name))
    }

    /// Takes back the deliveries the backup caught on the wire (their sender
    /// is not this site's: whether their message left is unknown, so they
    /// are sent again), moves PostgreSQL's id sequences past the restored
    /// ids, and commits. Returns how many were taken back.
    pub async fn commit(mut self, now: DateTime<Utc>) -> Result<u64, Error> {
        let taken_back = sqlx::query(super::deliveries::TAKE_BACK)
            .bind(ms(now))
            .execute(&mut *self.tx)
            .await
            .db("taking back the deliveries caught on the wire")?
            .rows_affected();
        for (_, create) in &self.indexes {
            sqlx::query(create)
                .execute(&mut *self.tx)
                .await
                .db("building an index again")?;
        }
        if self.dialect == Dialect::Postgres {
            for table in BACKUP_TABLES.iter().filter(|t| t.has_id_sequence()) {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE(MAX(id), 1), \
                     MAX(id) IS NOT NULL) FROM {0}",
                    table.name
                );
                sqlx::query(&sql)
                    .execute(&mut *self.tx)
                    .await
                    .db("moving the id sequences past the restored rows")?;
            }
        }
        self.tx.commit().await.db("committing the restore")?;
        Ok(taken_back)
    }
}
