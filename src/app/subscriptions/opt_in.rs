//! Opt-in and leaving: the double opt-in of the web form, confirming, and the
//! unsubscribe link.

use chrono::{DateTime, Utc};

use super::Subscriptions;
use crate::delivery::message::transactional;
use crate::delivery::Transport;
use crate::domain::{EmailAddress, SubscriberStatus};
use crate::error::Error;
use crate::store::AddOutcome;
use crate::tokens::{Purpose, TokenError};

impl Subscriptions {
    /// A subscription request from the web form: double opt-in. It returns at
    /// once and the work (recording the address, mailing the confirmation)
    /// goes on in the background, so the caller answers the same way at the
    /// same speed whatever the address's state: nobody can probe who
    /// subscribes. A failure is logged; a confirmation that could not be sent
    /// gives its claim back, so the reader can ask again.
    pub fn subscribe(&self, email: EmailAddress, name: String, now: DateTime<Utc>) {
        let this = self.clone();
        self.requests.spawn(async move {
            if let Err(e) = this.request_confirmation(&email, &name, now).await {
                tracing::warn!(error = %crate::error::chain(&e), "a subscription request failed");
            }
        });
    }

    /// Waits for the subscription requests handed off so far (a server
    /// stopping; tests).
    pub async fn settled(&self) {
        self.requests.close();
        self.requests.wait().await;
        self.requests.reopen();
    }

    async fn request_confirmation(
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
            // Already active: nothing to do, and nothing to tell a stranger. (A
            // forgotten row has no address, so no address finds it.)
            Some(AddOutcome::Exists(_, SubscriberStatus::Active | SubscriberStatus::Forgotten))
            | None => return Ok(()),
        };
        // At most one confirmation email per address every ten minutes.
        if !store
            .claim_confirmation(id, now, chrono::Duration::minutes(10))
            .await?
        {
            return Ok(());
        }
        let result = self.send_confirmation(id, email, now).await;
        if result.is_err() {
            store.release_confirmation(id).await?;
        }
        result
    }

    async fn send_confirmation(
        &self,
        id: i64,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let c = &self.context;
        let confirm_url = c.links.confirm(id, now + chrono::Duration::days(7));
        let body = c.templates.confirmation(&confirm_url)?;
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
    pub async fn confirm(&self, token: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let id = self.verify(token, Purpose::Confirm, now)?;
        match self.context.store.confirm(id, now).await? {
            Some((SubscriberStatus::Active, confirmed_now)) => {
                // A welcome once per confirmation: a second click confirms nothing.
                if confirmed_now {
                    self.context.letters().plan_welcome(id, now).await?;
                }
                Ok(())
            }
            // Unsubscribed or bounced since the link was sent: the old link is void.
            _ => Err(TokenError::Invalid.into()),
        }
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
    pub async fn unsubscribe_by_token(&self, token: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let id = self.verify(token, Purpose::Unsubscribe, now)?;
        self.context.store.unsubscribe(id, now).await?;
        Ok(())
    }
}
