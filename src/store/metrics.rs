//! What `/metrics` reads from the database: counts kept as rows change
//! (migration 0014), never a scan of the log.

use sqlx::Row;

use super::Store;
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
    pub async fn log_counts(&self) -> Result<LogCounts, Error> {
        const WHAT: &str = "reading the counts";
        let deliveries = sqlx::query(
            "SELECT status, CAST(SUM(n) AS BIGINT) AS n FROM delivery_counts GROUP BY status ORDER BY status",
        )
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
