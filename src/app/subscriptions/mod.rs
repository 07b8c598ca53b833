//! Subscriptions, one concern a file: opt-in and leaving by a link
//! (`opt_in.rs`), the author's own hand on the list (`list.rs`, `posthorn
//! subscribers add|remove|forget`), readers' choices on their own page
//! (`choices.rs`), and the list as CSV (`import.rs`, `export.rs`).

mod choices;
mod export;
mod import;
mod list;
mod opt_in;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::task::TaskTracker;

use super::Context;
use crate::domain::EmailAddress;
use crate::error::Error;
use crate::store::Subscriber;
use crate::tokens::{Purpose, TokenError};

pub use choices::{PreferencesPage, SavedChoices, TopicChoice};
pub use import::{ExportFormat, ImportSummary, Rejected};
pub use list::Added;

#[derive(Clone)]
pub struct Subscriptions {
    context: Arc<Context>,
    /// Subscription requests handed off by [`Subscriptions::subscribe`].
    requests: TaskTracker,
}

impl Subscriptions {
    pub(in crate::app) fn new(context: Arc<Context>) -> Subscriptions {
        Subscriptions {
            context,
            requests: TaskTracker::new(),
        }
    }

    /// The subscriber a signed link names, if the link is good for `purpose` now.
    fn verify(&self, token: &str, purpose: Purpose, now: DateTime<Utc>) -> Result<i64, TokenError> {
        self.context.links.tokens().verify(token, purpose, now)
    }

    pub async fn subscriber(&self, email: &EmailAddress) -> Result<Option<Subscriber>, Error> {
        self.context.store.subscriber_by_email(email).await
    }
}
