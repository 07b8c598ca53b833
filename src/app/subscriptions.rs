//! Subscriptions: the double opt-in of the web form, confirming, leaving, and the
//! author's own hand on the list (`posthorn subscribers add|remove|import`).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Context;
use crate::delivery::message::transactional;
use crate::delivery::Transport;
use crate::domain::{EmailAddress, SubscriberStatus};
use crate::error::Error;
use crate::store::{AddOutcome, Subscriber};
use crate::tokens::{Purpose, TokenError};

/// What adding one address by hand did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    AlreadyActive,
    /// It was pending or bounced; the author's word makes it active.
    Reactivated,
}

#[derive(Clone)]
pub struct Subscriptions {
    context: Arc<Context>,
}

impl Subscriptions {
    pub(super) fn new(context: Arc<Context>) -> Subscriptions {
        Subscriptions { context }
    }

    /// A subscription request from the web form: double opt-in. The caller shows the
    /// same answer whatever the address's state, so nobody can probe who subscribes.
    pub async fn subscribe(
        &self,
        email: &EmailAddress,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let store = &self.context.store;
        let outcome = store
            .add_subscribers(
                &[(email.clone(), name.to_string())],
                SubscriberStatus::Pending,
                now,
            )
            .await?;
        let id = match outcome.first() {
            Some(AddOutcome::Added(id))
            | Some(AddOutcome::Exists(id, SubscriberStatus::Pending)) => *id,
            Some(AddOutcome::Exists(
                id,
                SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced,
            )) => {
                store.make_pending(*id, now).await?;
                *id
            }
            // Already active: nothing to do, and nothing to tell a stranger.
            Some(AddOutcome::Exists(_, SubscriberStatus::Active)) | None => return Ok(()),
        };
        // At most one confirmation email per address every ten minutes.
        if !store
            .claim_confirmation(id, now, chrono::Duration::minutes(10))
            .await?
        {
            return Ok(());
        }
        let result = self.send_confirmation(id, email, name, now).await;
        if result.is_err() {
            store.release_confirmation(id).await?;
        }
        result
    }

    async fn send_confirmation(
        &self,
        id: i64,
        email: &EmailAddress,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let c = &self.context;
        let confirm_url = c.links.confirm(id, now + chrono::Duration::days(7));
        let body = c.templates.confirmation(name, &confirm_url)?;
        let message = transactional(
            &c.config,
            c.signer.as_deref(),
            email,
            &body.subject,
            body.text,
            body.html,
        )?;
        let reply = c
            .transport
            .send_one(&message)
            .await
            .map_err(|e| Error::Send {
                context: format!("the confirmation to {email} was not sent"),
                source: e.into(),
            })?;
        tracing::info!(subscriber = id, reply, "confirmation sent");
        Ok(())
    }

    /// `GET /confirm/{token}`.
    pub async fn confirm(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), TokenError>, Error> {
        let id = match self.verify(token, Purpose::Confirm, now) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match self.context.store.confirm(id, now).await? {
            Some(SubscriberStatus::Active) => Ok(()),
            // Unsubscribed or bounced since the link was sent: the old link is void.
            _ => Err(TokenError::Invalid),
        })
    }

    /// Where the one button of `GET /unsubscribe/{token}` posts to. Checking the
    /// token changes nothing, so a link scanner unsubscribes no one.
    pub fn unsubscribe_action(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<String, TokenError> {
        self.verify(token, Purpose::Unsubscribe, now)?;
        Ok(self.context.links.with_token("unsubscribe", token))
    }

    /// `POST /unsubscribe/{token}` (and `List-Unsubscribe-Post`). Idempotent.
    pub async fn unsubscribe_by_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), TokenError>, Error> {
        let id = match self.verify(token, Purpose::Unsubscribe, now) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        self.context.store.unsubscribe(id, now).await?;
        Ok(Ok(()))
    }

    fn verify(&self, token: &str, purpose: Purpose, now: DateTime<Utc>) -> Result<i64, TokenError> {
        self.context.links.tokens().verify(token, purpose, now)
    }

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
            Some(AddOutcome::Exists(_, SubscriberStatus::Unsubscribed)) | None => {
                Err(Error::Conflict(format!(
                    "{email} unsubscribed; posthorn does not re-add people who left. \
                 They can subscribe again on the site's /subscribe page"
                )))
            }
        }
    }

    /// Adds many addresses as active in one transaction; returns how many were new
    /// and how many were there already (those are left unchanged).
    pub async fn import(
        &self,
        rows: &[(EmailAddress, String)],
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), Error> {
        let outcomes = self
            .context
            .store
            .add_subscribers(rows, SubscriberStatus::Active, now)
            .await?;
        let added = outcomes
            .iter()
            .filter(|o| matches!(o, AddOutcome::Added(_)))
            .count() as u64;
        Ok((added, outcomes.len() as u64 - added))
    }

    /// Unsubscribes an address at once; its waiting deliveries are skipped.
    pub async fn remove(&self, email: &EmailAddress, now: DateTime<Utc>) -> Result<(), Error> {
        let subscriber = self
            .subscriber(email)
            .await?
            .ok_or_else(|| Error::Invalid(format!("{email} is not a subscriber")))?;
        self.context.store.unsubscribe(subscriber.id, now).await?;
        Ok(())
    }

    pub async fn subscriber(&self, email: &EmailAddress) -> Result<Option<Subscriber>, Error> {
        self.context.store.subscriber_by_email(email).await
    }
}
