//! What `/metrics` reads from the database: counts kept as rows change
//! (migration 0014), never a scan of the log.

use sqlx::Row;

use super::{Dialect, Store};
use crate::error::{DbContext, Error};

/// Deliveries and reports, counted.
#[derive(Debug, Clone, Default)]
pub struct LogCounts {
    /// Deliveries by status.
    pub deliveries: Vec<(String, i64)>,
    /// Reports by kind (`bounce`, `complaint`, …) and effect.
    pub reports: Vec<(String, String, i64)>,
}

impl Store {
    /// On PostgreSQL, folds the deltas the triggers appended into the counts:
    /// one statement a table, taking the count rows in one order. SQLite's
    /// triggers count in place. Run each tick, so the deltas stay few.
    pub async fn fold_counts(&self) -> Result<(), Error> {
        if self.dialect != Dialect::Postgres {
            return Ok(());
        }
        for sql in [
            "WITH moved AS (DELETE FROM delivery_count_deltas RETURNING status, d) \
             INSERT INTO delivery_counts (status, n) \
             SELECT status, SUM(d)::bigint FROM moved GROUP BY status ORDER BY status \
             ON CONFLICT (status) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n",
            "WITH moved AS (DELETE FROM report_count_deltas RETURNING kind, effect, d) \
             INSERT INTO report_counts (kind, effect, n) \
             SELECT kind, effect, SUM(d)::bigint FROM moved GROUP BY kind, effect ORDER BY kind, effect \
             ON CONFLICT (kind, effect) DO UPDATE SET n = report_counts.n + EXCLUDED.n",
        ] {
            sqlx::query(sql)
                .execute(&self.pool)
                .await
                .db("folding the counts")?;
        }
        Ok(())
    }

    pub async fn log_counts(&self) -> Result<LogCounts, Error> {
        const WHAT: &str = "reading the counts";
        self.fold_counts().await?;
        let deliveries = sqlx::query("SELECT status, n FROM delivery_counts ORDER BY status")
            .fetch_all(&self.pool)
            .await
            .db(WHAT)?
            .iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .db(WHAT)?;
        let reports =
            sqlx::query("SELECT kind, effect, n FROM report_counts ORDER BY kind, effect")
                .fetch_all(&self.pool)
                .await
                .db(WHAT)?
                .iter()
                .map(|r| Ok((r.try_get("kind")?, r.try_get("effect")?, r.try_get("n")?)))
                .collect::<Result<_, sqlx::Error>>()
                .db(WHAT)?;
        Ok(LogCounts {
            deliveries,
            reports,
        })
    }
}
