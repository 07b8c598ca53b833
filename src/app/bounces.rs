//! Bounces and complaints: every intake (a pipe from the MTA, IMAP, providers'
//! webhooks) ends in [`Bounces::record`], which ties each recipient of a report
//! to its delivery and records what it means.
//!
//! Matching, in order: the VERP token of the address the report was sent to
//! (HMAC-signed; a token that fails its signature makes the report `forged`
//! and changes nothing), posthorn's own Message-ID in the returned headers, and
//! last the recipient's address with the latest delivery to it.

use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::Context;
use crate::bounces::{self, Action, Report, ReportKind, Tracks};
use crate::domain::{hex, EventKind, MatchedBy, ReportEffect, ReportSource};
use crate::error::Error;
use crate::store::{BouncePolicy, EventRow, NewReport, ReportRow, Target};

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
    context: Arc<Context>,
}

impl Bounces {
    pub(super) fn new(context: Arc<Context>) -> Bounces {
        Bounces { context }
    }

    /// Reads a message without touching the database.
    pub fn parse(&self, raw: &[u8]) -> Result<Report, Error> {
        read(raw, &tracks(&self.context.config))
    }

    /// Reads one message and records what it means.
    pub async fn ingest(&self, raw: &[u8], source: ReportSource) -> Result<Ingested, Error> {
        let report = self.parse(raw)?;
        self.record(&report, &fingerprint(raw), source).await
    }

    /// Records a report already read (from mail or a provider's webhook).
    /// `fingerprint` names the report, so that the same one twice counts once.
    pub async fn record(
        &self,
        report: &Report,
        fingerprint: &str,
        source: ReportSource,
    ) -> Result<Ingested, Error> {
        let mut out = Ingested {
            kind: report.kind,
            recorded: Vec::new(),
            duplicate: false,
        };
        if matches!(
            report.kind,
            ReportKind::AutoReply | ReportKind::Unknown | ReportKind::Delivered
        ) {
            // Not a report about a failure: never counted, left alone.
            return Ok(out);
        }
        let config = &self.context.config;
        let policy = BouncePolicy {
            hard_after: config.bounces.hard_after,
            soft_after: config.bounces.soft_after,
        };
        let mut by_track = self.tracked_delivery(report).await?;
        for (i, r) in report.recipients.iter().enumerate() {
            let kind = match r.action {
                Action::Failed => EventKind::Bounce,
                Action::Delayed => EventKind::Delay,
                Action::Complained => EventKind::Complaint,
                Action::Delivered | Action::Relayed | Action::Expanded => continue,
            };
            // The tracks name one delivery: they go with the first recipient.
            let target = match by_track.take() {
                Some(t) => t,
                None => self.by_recipient(r).await?,
            };
            let new = NewReport {
                fingerprint: format!("{fingerprint}:{i}"),
                source,
                kind,
                recipient: r.address.as_ref().map(|a| a.to_string()),
                status: r.status.map(|s| s.to_string()),
                hard: r.hard,
                diagnostic: r.diagnostic.clone(),
                feedback_type: report.feedback_type.clone(),
                target,
            };
            let now = Utc::now();
            match self.context.store.record_report(&new, now, policy).await? {
                Some(effect) => {
                    tracing::info!(
                        kind = %kind,
                        recipient = new.recipient.as_deref().unwrap_or("?"),
                        effect = %effect,
                        "report recorded"
                    );
                    out.recorded.push(RecordedRecipient {
                        address: new.recipient,
                        effect,
                        matched_by: match target {
                            Target::Delivery { by, .. } => Some(by),
                            _ => None,
                        },
                    });
                }
                None => out.duplicate = true,
            }
        }
        Ok(out)
    }

    /// The delivery named by a VERP token or one of posthorn's Message-IDs.
    async fn tracked_delivery(&self, report: &Report) -> Result<Option<Target>, Error> {
        let store = &self.context.store;
        if !report.verp_tokens.is_empty() {
            let tokens = self.context.links.tokens();
            for token in &report.verp_tokens {
                if let Ok((issue, subscriber)) = tokens.verify_verp(token) {
                    return Ok(Some(match store.delivery_of(issue, subscriber).await? {
                        Some(delivery_id) => Target::Delivery {
                            delivery_id,
                            by: MatchedBy::Verp,
                        },
                        None => Target::Unmatched,
                    }));
                }
            }
            tracing::warn!(
                "a report carried a VERP token that fails its signature; it changes nothing"
            );
            return Ok(Some(Target::Forged));
        }
        let instance = store.instance().await?;
        for id in report.message_ids.iter().filter(|m| m.instance == instance) {
            if let Some(delivery_id) = store.delivery_of(id.issue, id.subscriber).await? {
                return Ok(Some(Target::Delivery {
                    delivery_id,
                    by: MatchedBy::MessageId,
                }));
            }
        }
        Ok(None)
    }

    async fn by_recipient(&self, r: &bounces::Recipient) -> Result<Target, Error> {
        let Some(address) = &r.address else {
            return Ok(Target::Unmatched);
        };
        Ok(
            match self
                .context
                .store
                .latest_delivery_to(&address.key())
                .await?
            {
                Some(delivery_id) => Target::Delivery {
                    delivery_id,
                    by: MatchedBy::Recipient,
                },
                None => Target::Unmatched,
            },
        )
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
            .ok_or_else(|| Error::Invalid(format!("{address} is not a subscriber")))?;
        let delivery = self
            .context
            .store
            .delivery_of(issue.id, subscriber.id)
            .await?
            .ok_or_else(|| Error::Invalid(format!("`{slug}` was not sent to {address}")))?;
        self.context.store.delivery_history(delivery).await
    }
}

/// The marks posthorn leaves on its mail, from the config.
pub fn tracks(config: &crate::config::Config) -> Tracks {
    Tracks::new(
        config.bounces.verp(),
        Some(&config.email.from.domain().to_ascii_lowercase()),
    )
}

/// Reads a message; what cannot be read is the sender's fault, not posthorn's.
pub fn read(raw: &[u8], tracks: &Tracks) -> Result<Report, Error> {
    bounces::read(raw, tracks).map_err(|e| Error::Invalid(e.to_string()))
}

/// Names a payload: the same bytes are the same report.
pub fn fingerprint(raw: &[u8]) -> String {
    hex(&Sha256::digest(raw))
}
