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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::Context;
use crate::bounces::imap::{ImapError, Mailbox, Watermark};
use crate::bounces::webhooks::{ReplayGuard, SendgridKey};
use crate::bounces::{self, Action, Report, ReportKind, Tracks};
use crate::config::MailboxUrl;
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

/// What one poll of the bounce mailbox did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MailboxPoll {
    /// The mailbox, without its password.
    pub mailbox: String,
    /// Reports recorded and moved to `posthorn/processed`.
    pub processed: usize,
    /// Messages that could not be read, moved to `posthorn/unparsed`.
    pub unparsed: usize,
    /// Messages that are not reports (readers' replies), left where they were, unread.
    pub left: usize,
    /// Why the poll stopped early; the rest waits for the next tick.
    pub error: Option<String>,
}

/// Why a poll stopped: the mailbox (wait for the next tick) or the database (fail).
enum PollStop {
    Imap(ImapError),
    Store(Error),
}

impl From<ImapError> for PollStop {
    fn from(e: ImapError) -> Self {
        PollStop::Imap(e)
    }
}

impl From<Error> for PollStop {
    fn from(e: Error) -> Self {
        PollStop::Store(e)
    }
}

/// What to do with one message of the mailbox.
enum Filing {
    Processed,
    Unparsed,
    Left,
}

#[derive(Clone)]
pub struct Bounces {
    pub(super) context: Arc<Context>,
    /// SendGrid's verification key, parsed once at start.
    pub(super) sendgrid: Option<Arc<SendgridKey>>,
    /// SNS signing certificates by URL (or file): read once, not per notification.
    pub(super) certificates: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
    /// posthorn's marks to look for, compiled once at start, not per report.
    pub(super) tracks: Arc<Tracks>,
    /// Mailgun's one-time tokens, each accepted once.
    pub(super) mailgun_tokens: Arc<ReplayGuard>,
}

impl Bounces {
    pub(super) fn new(context: Arc<Context>) -> Bounces {
        Bounces {
            tracks: Arc::new(tracks(&context.config)),
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

    /// Reads a message without touching the database.
    pub fn parse(&self, raw: &[u8]) -> Result<Report, Error> {
        read(raw, &self.tracks)
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
        let proof = self.proof(report).await?;
        let mut proof_used = false;
        for (i, r) in report.recipients.iter().enumerate() {
            let kind = match r.action {
                Action::Failed => EventKind::Bounce,
                Action::Delayed => EventKind::Delay,
                Action::Complained => EventKind::Complaint,
                Action::Delivered | Action::Relayed | Action::Expanded => continue,
            };
            // A proof names one delivery, and acts only for the recipient the
            // report names (or for a recipient it leaves unnamed, as ARF may).
            let target = match &proof {
                Proof::Forged => Target::Forged,
                Proof::Delivery {
                    delivery_id,
                    recipient,
                    by,
                } if !proof_used && names(r, recipient.as_deref()) => {
                    proof_used = true;
                    Target::Delivery {
                        delivery_id: *delivery_id,
                        by: *by,
                    }
                }
                _ if source.vouches_for_recipient() => self.by_recipient(r).await?,
                _ => Target::Unmatched,
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

    /// What the report proves about where it came from: a VERP token whose MAC
    /// checks, else one of posthorn's Message-IDs whose MAC checks.
    async fn proof(&self, report: &Report) -> Result<Proof, Error> {
        let store = &self.context.store;
        let tokens = self.context.links.tokens();
        let proven = |found: Option<(i64, Option<String>)>, by| match found {
            Some((delivery_id, recipient)) => Proof::Delivery {
                delivery_id,
                recipient,
                by,
            },
            None => Proof::Unproven,
        };
        if !report.verp_tokens.is_empty() {
            for token in &report.verp_tokens {
                if let Ok((issue, subscriber)) = tokens.verify_verp(token) {
                    let found = store.delivery_with_recipient(issue, subscriber).await?;
                    return Ok(proven(found, MatchedBy::Verp));
                }
            }
            tracing::warn!(
                "a report carried a VERP token that fails its signature; it changes nothing"
            );
            return Ok(Proof::Forged);
        }
        let signed = report
            .message_ids
            .iter()
            .find(|m| tokens.verify_message_id(m.issue, m.subscriber, &m.mac));
        match signed {
            Some(id) => {
                let found = store
                    .delivery_with_recipient(id.issue, id.subscriber)
                    .await?;
                Ok(proven(found, MatchedBy::MessageId))
            }
            None => Ok(Proof::Unproven),
        }
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

    /// Polls `[bounces] imap_url` once: each new report is recorded and moved to
    /// `posthorn/processed`, each unreadable message to `posthorn/unparsed`, and
    /// anything else (a reader's reply) stays where it is, unread. A mailbox that
    /// cannot be reached is reported, not fatal; a database that fails is.
    pub async fn poll_mailbox(&self) -> Result<Option<MailboxPoll>, Error> {
        let config = &self.context.config.bounces;
        let Some(address) = &config.imap_url else {
            return Ok(None);
        };
        let mut poll = MailboxPoll {
            mailbox: address.name(),
            ..MailboxPoll::default()
        };
        match self.poll(address, &mut poll).await {
            Ok(()) => {}
            Err(PollStop::Imap(e)) => {
                tracing::warn!(mailbox = %poll.mailbox, error = %e, "the bounce mailbox could not be read; trying again next tick");
                poll.error = Some(e.to_string());
            }
            Err(PollStop::Store(e)) => return Err(e),
        }
        Ok(Some(poll))
    }

    async fn poll(&self, address: &MailboxUrl, poll: &mut MailboxPoll) -> Result<(), PollStop> {
        let config = &self.context.config.bounces;
        let store = &self.context.store;
        let password = config.imap_password.as_ref().map_or("", |p| p.expose());
        let mut mailbox = Mailbox::open(address, password, config.imap_ca_file.as_deref()).await?;
        // Messages left in place are not read again: the poll resumes after the last UID.
        let key = format!("imap:{}", address.name());
        let previous = store
            .meta(&key)
            .await?
            .as_deref()
            .and_then(Watermark::parse);
        let mut mark = mailbox.resume(previous);
        let (mut processed, mut unparsed) = (None, None);
        for uid in mailbox.arrived_after(mark).await? {
            let filing = match mailbox.read(uid).await? {
                None => Filing::Unparsed,
                Some(raw) => match bounces::read(&raw, &self.tracks) {
                    Err(e) => {
                        tracing::warn!(uid, error = %e, "an unreadable message in the bounce mailbox; set aside");
                        Filing::Unparsed
                    }
                    Ok(report) => {
                        let ingested = self
                            .record(&report, &fingerprint(&raw), ReportSource::Imap)
                            .await?;
                        if ingested.is_report() {
                            Filing::Processed
                        } else {
                            Filing::Left
                        }
                    }
                },
            };
            match filing {
                Filing::Processed => {
                    let folder = folder(&mut mailbox, &mut processed, "processed").await?;
                    mailbox.file(uid, &folder).await?;
                    poll.processed += 1;
                }
                Filing::Unparsed => {
                    let folder = folder(&mut mailbox, &mut unparsed, "unparsed").await?;
                    mailbox.file(uid, &folder).await?;
                    poll.unparsed += 1;
                }
                Filing::Left => poll.left += 1,
            }
            mark.last_uid = uid;
            store.set_meta(&key, &mark.to_string()).await?;
        }
        mailbox.close().await;
        Ok(())
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

/// Which delivery a report proves it is about.
enum Proof {
    Delivery {
        delivery_id: i64,
        /// The address key of the delivery's recipient.
        recipient: Option<String>,
        by: MatchedBy,
    },
    /// A VERP token that fails its MAC: the report changes nothing at all.
    Forged,
    /// Nothing that checks: only a provider's signed webhook may still act.
    Unproven,
}

/// Whether the report's recipient is the delivery's: the same address, or no
/// address at all (a feedback report may redact it).
fn names(r: &bounces::Recipient, delivery_recipient: Option<&str>) -> bool {
    match &r.address {
        None => true,
        Some(address) => delivery_recipient == Some(address.key().as_str()),
    }
}

/// The folder `posthorn/LEAF`, looked up (and created) once per poll.
async fn folder(
    mailbox: &mut Mailbox,
    known: &mut Option<String>,
    leaf: &str,
) -> Result<String, ImapError> {
    if let Some(name) = known {
        return Ok(name.clone());
    }
    let name = mailbox.folder(leaf).await?;
    *known = Some(name.clone());
    Ok(name)
}

/// The marks posthorn leaves on its mail, from the config.
pub fn tracks(config: &crate::config::Config) -> Tracks {
    Tracks::new(
        config.bounces.return_path.as_ref(),
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
