//! `meta`: the database's own facts (its creation time, its instance id,
//! the generated secret, planning marks) and the named locks.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Executor;

use super::{from_ms, Store};
use crate::error::{DbContext, Error};

impl Store {
    pub async fn meta(&self, key: &str) -> Result<Option<String>, Error> {
        read_meta(&self.pool, key).await
    }

    /// A time kept in `meta` (see [`Planning::meta_time`]).
    pub async fn meta_time(&self, key: &str) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(time_of_meta(self.meta(key).await?))
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), Error> {
        write_meta(&self.pool, key, value).await
    }

    /// Stores `value` under `key` unless a value is already there; returns the stored one.
    /// Two processes racing to initialise a key end up with the same value.
    pub async fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String, Error> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .db("writing meta")?;
        self.meta(key)
            .await?
            .ok_or_else(|| Error::Internal(format!("meta key {key} vanished")))
    }

    /// When the database was created: posts published before this are archive.
    /// A missing or unreadable value is an error, never the epoch: with the epoch,
    /// every post would look new and be mailed.
    pub async fn created_at(&self) -> Result<DateTime<Utc>, Error> {
        let value = self.meta("created_at").await?;
        value
            .as_deref()
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "the database's creation time is {}; posthorn will not guess it \
                     (every post would look new and be mailed). Restore meta.created_at",
                    value.map_or("missing".to_string(), |v| format!("unreadable (`{v}`)"))
                ))
            })
    }

    /// A random id of this database, part of every Message-ID.
    pub async fn instance(&self) -> Result<String, Error> {
        Ok(self.meta("instance").await?.unwrap_or_default())
    }
}

/// A time in `meta` is kept in milliseconds, as every column keeps time; an
/// unreadable one reads as missing.
pub(super) fn time_of_meta(value: Option<String>) -> Option<DateTime<Utc>> {
    value.and_then(|v| v.parse().ok()).map(from_ms)
}

/// A `meta` value, through the pool or inside a transaction.
pub(super) async fn read_meta<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    key: &str,
) -> Result<Option<String>, Error> {
    sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_optional(db)
        .await
        .db("reading meta")
}

/// Stores `value` under `key`, replacing what was there.
pub(super) async fn write_meta<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    key: &str,
    value: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(db)
    .await
    .db("writing meta")?;
    Ok(())
}

/// Serialises the transactions that take the same named lock, on both engines: the
/// row update takes SQLite's write lock at once (so a read never has to be upgraded,
/// which is what fails with "database is locked") and a row lock in PostgreSQL.
pub(super) async fn lock(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
) -> Result<(), Error> {
    let key = format!("lock:{name}");
    sqlx::query("UPDATE meta SET value = value WHERE key = $1")
        .bind(&key)
        .execute(&mut **tx)
        .await
        .db("taking a lock")?;
    Ok(())
}
