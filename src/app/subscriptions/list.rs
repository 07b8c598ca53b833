//! The author's own hand on the list: adding, removing and forgetting people
//! (`posthorn subscribers add|remove|forget`, the dashboard's buttons).

use chrono::{DateTime, Utc};

use super::Subscriptions;
use crate::delivery::FileTransport;
use crate::domain::{EmailAddress, Preferences, SubscriberStatus};
use crate::error::Error;
use crate::store::{AddOutcome, Forgotten, NewSubscriber};

/// What adding one address by hand did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    AlreadyActive,
    /// It was pending or bounced; the author's word makes it active.
    Reactivated,
}

impl Subscriptions {
    /// Adds an address as active: the author vouches for it.
    pub async fn add(
        &self,
        email: &EmailAddress,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Added, Error> {
        let store = &self.context.store;
        let outcome = store
            .add_subscribers(
                &[(email.clone(), name.to_string())],
                SubscriberStatus::Active,
                now,
            )
            .await?;
        match outcome.first() {
            Some(AddOutcome::Added(_)) => Ok(Added::New),
            Some(AddOutcome::Exists(_, SubscriberStatus::Active)) => Ok(Added::AlreadyActive),
            Some(AddOutcome::Exists(id, SubscriberStatus::Pending | SubscriberStatus::Bounced)) => {
                store.activate(*id, now).await?;
                Ok(Added::Reactivated)
            }
            Some(AddOutcome::Exists(
                _,
                SubscriberStatus::Unsubscribed | SubscriberStatus::Forgotten,
            ))
            | None => Err(Error::Conflict(format!(
                "{email} unsubscribed; posthorn does not re-add people who left. \
                 They can subscribe again on the site's /subscribe page"
            ))),
        }
    }

    /// Adds many addresses as active in one transaction; returns how many were new
    /// and how many were there already (those are left unchanged).
    pub async fn import(
        &self,
        rows: &[(EmailAddress, String)],
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), Error> {
        let rows: Vec<NewSubscriber> = rows
            .iter()
            .map(|(email, name)| {
                NewSubscriber::active(email.clone(), name.clone(), Preferences::default())
            })
            .collect();
        let batch = self.context.store.import_subscribers(&rows, now).await?;
        Ok((batch.added.total(), batch.already_present))
    }

    /// Unsubscribes an address at once; its waiting deliveries are skipped.
    pub async fn remove(&self, email: &EmailAddress, now: DateTime<Utc>) -> Result<(), Error> {
        let subscriber = self
            .subscriber(email)
            .await?
            .ok_or_else(|| not_a_subscriber(email))?;
        self.unsubscribe_id(subscriber.id, now).await
    }

    /// Unsubscribes by id (the dashboard's button).
    pub async fn unsubscribe_id(&self, id: i64, now: DateTime<Utc>) -> Result<(), Error> {
        self.context.store.unsubscribe(id, now).await?;
        Ok(())
    }

    /// Erases a person (see [`crate::store::Store::forget`]). An address no
    /// subscriber has is remembered as a keyed hash only, so that no import
    /// adds the person.
    pub async fn forget(
        &self,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<Forgotten, Error> {
        let store = &self.context.store;
        // The outbox first (whatever the transport is now: a site that began on
        // files keeps them), so that if either step fails, running `forget`
        // again finishes the job.
        let files = FileTransport::new(&self.context.config)
            .remove_addressed_to(email)
            .await?;
        let hashed = self.context.links.tokens().forgotten_address(&email.key());
        let Some(mut forgotten) = store.forget(email, &hashed, now).await? else {
            store.remember_forgotten(&hashed).await?;
            // Forgetting again finishes a compaction a reader held up.
            let compacted = store.compact().await?;
            return Ok(Forgotten {
                outbox_files_removed: files,
                old_copies_left: !compacted,
                ..Forgotten::default()
            });
        };
        forgotten.outbox_files_removed = files;
        tracing::info!(
            deliveries_kept = forgotten.deliveries_kept,
            outbox_files_removed = forgotten.outbox_files_removed,
            "a person was forgotten"
        );
        Ok(forgotten)
    }

    /// [`Subscriptions::forget`] by id (the dashboard's button).
    pub async fn forget_id(&self, id: i64, now: DateTime<Utc>) -> Result<Forgotten, Error> {
        let subscriber = self
            .context
            .store
            .subscriber_by_id(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no subscriber {id}")))?;
        self.forget(&subscriber.email, now).await
    }
}

fn not_a_subscriber(email: &EmailAddress) -> Error {
    Error::NotFound(format!("{email} is not a subscriber"))
}
