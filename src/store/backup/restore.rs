//! Loading a backup's rows, on either engine, in one transaction, into a
//! database that must be empty.

use chrono::{DateTime, Utc};
use sqlx::{Any, Transaction};

use super::{BackupTable, Column, ColumnKind, BACKUP_TABLES};
use crate::error::{DbContext, Error};
use crate::store::{ms, Dialect, Store};

impl Dialect {
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
        let taken_back = sqlx::query(crate::store::deliveries::TAKE_BACK)
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
            for table in BACKUP_TABLES.iter().filter(|t| t.keyed_by_id()) {
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
