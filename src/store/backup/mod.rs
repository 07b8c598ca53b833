//! The database's side of backups: which tables and columns a backup holds,
//! one consistent snapshot of them as rows of JSON, and loading those rows
//! back, on either engine, in one transaction.
//!
//! A row is a JSON array of its columns in the listed order: integers as
//! numbers, text as strings, bytes as lowercase hex, NULL as `null`. Each
//! engine writes and reads that array itself, so a row never passes through a
//! typed Rust value on its way to or from the file.

mod restore;
mod tables;

pub use restore::Restoring;
pub use tables::{backup_table, BackupTable, Column, ColumnKind, BACKUP_TABLES, NOT_BACKED_UP};

use futures_util::TryStreamExt;
use tokio::sync::mpsc;

use super::{Dialect, Store};
use crate::error::{DbContext, Error};

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
}

impl Store {
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
            if table.keyed_by_id() {
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
}
