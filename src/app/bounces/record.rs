//! Tying each recipient of a report to its delivery, and recording what it means.

use chrono::Utc;

use super::{Bounces, Ingested, RecordedRecipient};
use crate::bounces::{self, Action, Report, ReportKind};
use crate::domain::{EventKind, MatchedBy, ReportSource};
use crate::error::Error;
use crate::store::{BouncePolicy, NewReport, Target};

impl Bounces {
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
                reason: r.reason.as_str().into(),
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
