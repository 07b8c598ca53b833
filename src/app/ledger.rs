//! The ledger: what the log says. Issue statuses, one issue's deliveries, the
//! upstream feeds, the subscriber list. Reads only.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Context;
use crate::domain::{DeliveryStatus, SubscriberStatus};
use crate::error::Error;
use crate::store::{DeliveryLogRow, IssueStatus, Source, Subscriber};

#[derive(Clone)]
pub struct Ledger {
    context: Arc<Context>,
}

impl Ledger {
    pub(super) fn new(context: Arc<Context>) -> Ledger {
        Ledger { context }
    }

    /// Delivery counts per status for every issue (or the one of `slug`), newest first.
    pub async fn issue_statuses(&self, slug: Option<&str>) -> Result<Vec<IssueStatus>, Error> {
        // An unknown slug is an error, not an empty list; `~ID` names an issue.
        match slug {
            Some(key) if crate::store::issue_id_in_key(key).is_some() => {
                self.context.post_and_issue(key).await?;
            }
            Some(slug) => {
                self.context.post(slug).await?;
            }
            None => {}
        }
        self.context.store.issue_statuses(slug).await
    }

    /// The delivery log of the issue of `slug`, one row per subscriber.
    pub async fn delivery_log(
        &self,
        slug: &str,
        status: Option<DeliveryStatus>,
    ) -> Result<Vec<DeliveryLogRow>, Error> {
        let issue = self.context.issue_of(slug).await?;
        self.context.store.delivery_log(issue.id, status).await
    }

    pub async fn sources(&self) -> Result<Vec<Source>, Error> {
        self.context.store.sources().await
    }

    /// Subscribers whose address starts with `prefix` (or all), of `status` (or
    /// any), in id order, `limit` at a time after `after_id`.
    pub async fn subscribers(
        &self,
        prefix: Option<&str>,
        status: Option<SubscriberStatus>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Subscriber>, Error> {
        self.context
            .store
            .search_subscribers(prefix, status, after_id, limit)
            .await
    }

    /// When the database was created: posts published before are archive.
    pub async fn created_at(&self) -> Result<DateTime<Utc>, Error> {
        self.context.store.created_at().await
    }

    /// Whether the database answers a query now: the health check.
    /// Deliveries by status and reports by kind, as kept counts (no scan).
    pub async fn log_counts(&self) -> Result<crate::store::LogCounts, Error> {
        self.context.store.log_counts().await
    }

    pub async fn database_answers(&self) -> Result<(), Error> {
        self.context.store.ping().await
    }
}
