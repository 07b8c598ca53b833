//! Bounces and complaints: every intake (a pipe from the MTA, IMAP, providers'
//! webhooks) ends in [`Bounces::record`], which ties each recipient of a report
//! to its delivery and records what it means.
//!
//! A report acts only when it proves where it came from, and only for the
//! recipient it names: the VERP token of the address it was sent to (a token
//! that fails its MAC makes the report `forged`), else posthorn's own
//! Message-ID in the returned headers, whose MAC must check. A provider's
//! webhook whose signature checks vouches for its recipient, so it may also be
//! matched by address to the latest delivery. Anything else is kept, listed,
//! and changes nobody.

mod mailbox;
mod reading;
mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Context;
use crate::bounces::webhooks::{ReplayGuard, SendgridKey};
use crate::bounces::ReportKind;
use crate::domain::{MatchedBy, ReportEffect, ReportSource};
use crate::error::Error;
use crate::store::{EventRow, ReportRow};

pub use mailbox::MailboxPoll;
pub use reading::{fingerprint, Claim, Reader, Reading};

/// What one report did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ingested {
    pub kind: ReportKind,
    /// Per recipient: the address and the effect; empty when the message was
    /// not a report (a reply, an auto-reply) and was left alone.
    pub recorded: Vec<RecordedRecipient>,
    /// The same report had been recorded before: nothing changed.
    pub duplicate: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordedRecipient {
    pub address: Option<String>,
    pub effect: ReportEffect,
    pub matched_by: Option<MatchedBy>,
}

impl Ingested {
    /// A report was found and recorded (or had been): an IMAP reader files it away.
    pub fn is_report(&self) -> bool {
        self.duplicate || !self.recorded.is_empty()
    }
}

#[derive(Clone)]
pub struct Bounces {
    pub(super) context: Arc<Context>,
    /// SendGrid's verification key, parsed once at start.
    pub(super) sendgrid: Option<Arc<SendgridKey>>,
    /// SNS signing certificates by URL (or file): read once, not per notification.
    pub(super) certificates: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
    /// Reads messages with posthorn's marks, compiled once at start, not per report.
    pub(super) reader: Reader,
    /// Mailgun's one-time tokens, each accepted once.
    pub(super) mailgun_tokens: Arc<ReplayGuard>,
}

impl Bounces {
    pub(super) fn new(context: Arc<Context>) -> Bounces {
        Bounces {
            reader: Reader::new(Some(&context.config)),
            context,
            sendgrid: None,
            certificates: Arc::default(),
            mailgun_tokens: Arc::default(),
        }
    }

    pub(super) fn with_sendgrid_key(mut self, key: Option<SendgridKey>) -> Bounces {
        self.sendgrid = key.map(Arc::new);
        self
    }

    /// Reads one message and records what it means.
    pub async fn ingest(&self, raw: &[u8], source: ReportSource) -> Result<Ingested, Error> {
        let report = self.reader.report(raw)?;
        self.record(&report, &fingerprint(raw), source).await
    }

    /// Bounce and complaint events, newest first, matched or not.
    pub async fn list(&self, limit: i64) -> Result<Vec<ReportRow>, Error> {
        self.context.store.reports(limit).await
    }

    /// The history of the delivery of the post `slug` to `email`.
    pub async fn history(&self, slug: &str, email: &str) -> Result<Vec<EventRow>, Error> {
        let issue = self.context.issue_of(slug).await?;
        let address = crate::domain::EmailAddress::parse(email).map_err(Error::Invalid)?;
        let subscriber = self
            .context
            .store
            .subscriber_by_email(&address)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{address} is not a subscriber")))?;
        let delivery = self
            .context
            .store
            .delivery_of(issue.id, subscriber.id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("`{slug}` was not sent to {address}")))?;
        self.context.store.delivery_history(delivery).await
    }
}
