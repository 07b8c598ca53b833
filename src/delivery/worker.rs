//! A worker: claims a batch of due deliveries, sends each over its own session,
//! and hands every result to the recorder. The retry policy reads the transport
//! error's kind, never its text.

use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use std::sync::atomic::Ordering;

use lettre::transport::smtp::extension::Extension;

use super::message::{Addressee, BodyEncoding, Outgoing, PreparedIssue};
use super::recorder::Results;
use super::{lease, IssueSource, SendError, Session, Shared};
use crate::bounces;
use crate::domain::SubscriberStatus;
use crate::error::{catch_panic, chain, Error};
use crate::store::{Claimed, Outcome, OutcomeKind};

pub(super) async fn work<I: IssueSource, S: Session>(
    shared: Arc<Shared<I>>,
    mut session: S,
    results: Results,
) -> Result<(), Error> {
    let result = claim_and_send(&shared, &mut session, &results).await;
    session.close().await;
    result
}

async fn claim_and_send<I: IssueSource, S: Session>(
    shared: &Shared<I>,
    session: &mut S,
    results: &Results,
) -> Result<(), Error> {
    let store = &shared.store;
    let owner = lease::Owner::current().as_str();
    let lease = chrono::Duration::from_std(shared.lease).unwrap_or_default();
    // A send must never outlive the lease under it.
    let margin = chrono::Duration::seconds(shared.settings.timeout_seconds as i64 + 5);
    let report = |outcome: Outcome| results.record(outcome);
    loop {
        if shared.run.stop.is_stopped() {
            return Ok(());
        }
        let claimed_at = shared.now();
        let claimed = store
            .claim_deliveries(
                claimed_at,
                lease.num_milliseconds(),
                shared.batch,
                shared.run.issue_id,
                owner,
            )
            .await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let mut lease_end = claimed_at + lease;
        let mut server_down = false;
        for (i, c) in claimed.iter().enumerate() {
            let now = shared.now();
            if lease_end - now < margin {
                let rest: Vec<i64> = claimed[i..].iter().map(|c| c.delivery_id).collect();
                lease_end = now + lease;
                store.renew_leases(&rest, owner, lease_end).await?;
            }
            if server_down || shared.run.stop.is_stopped() {
                report(released(c, now, None)).await?;
                continue;
            }
            // A fault of ours on one delivery fails that delivery, not the run.
            let delivered = catch_panic("a delivery", deliver_one(shared, session, c))
                .await
                .unwrap_or_else(|why| Ok(failed_by_us(c, why)));
            match delivered {
                Ok(outcome) => {
                    server_down = matches!(outcome.kind, OutcomeKind::Released { .. });
                    report(outcome).await?;
                }
                Err(e) => {
                    // Put the rest back before giving up, so nothing waits for a lease.
                    report(released(c, now, Some(chain(&e)))).await?;
                    for rest in &claimed[i + 1..] {
                        report(released(rest, now, None)).await?;
                    }
                    return Err(e);
                }
            }
        }
        if server_down {
            // The server is unreachable: stop here; the next run tries again.
            return Ok(());
        }
    }
}

/// A delivery posthorn itself failed on: `failed`, not retried by itself (the
/// same input would fail again), so `posthorn retry` sends it after a fix.
fn failed_by_us(c: &Claimed, why: String) -> Outcome {
    Outcome {
        delivery_id: c.delivery_id,
        subscriber_id: c.subscriber_id,
        kind: OutcomeKind::Failed {
            permanent: false,
            hard: false,
        },
        error: Some(why),
        smtp_reply: None,
        relay: None,
    }
}

fn released(c: &Claimed, now: DateTime<Utc>, error: Option<String>) -> Outcome {
    Outcome {
        delivery_id: c.delivery_id,
        subscriber_id: c.subscriber_id,
        kind: OutcomeKind::Released { retry_at: now },
        error,
        smtp_reply: None,
        relay: None,
    }
}

async fn deliver_one<I: IssueSource, S: Session>(
    shared: &Shared<I>,
    session: &mut S,
    c: &Claimed,
) -> Result<Outcome, Error> {
    let outcome = |kind, error: Option<String>, smtp_reply: Option<String>, relay| Outcome {
        delivery_id: c.delivery_id,
        subscriber_id: c.subscriber_id,
        kind,
        error,
        smtp_reply,
        relay,
    };
    let email = match (&c.email, c.subscriber_status) {
        (Some(email), Some(SubscriberStatus::Active)) => email,
        (_, status) => {
            let why = status.map_or("gone".to_string(), |s| s.to_string());
            return Ok(outcome(
                OutcomeKind::Skipped,
                Some(format!("subscriber is {why}")),
                None,
                None,
            ));
        }
    };
    let issue = shared.issue(c.issue_id).await?;
    let addressee = Addressee {
        subscriber_id: c.subscriber_id,
        email,
        name: &c.name,
    };
    let mut message = match build(&issue, &addressee, shared.encoding()).await {
        Ok(m) => m,
        Err(e) => {
            return Ok(outcome(
                OutcomeKind::Failed {
                    permanent: false,
                    hard: false,
                },
                Some(chain(&e)),
                None,
                None,
            ));
        }
    };
    shared.rate.acquire().await;
    let mut sent = session.send(&message).await;
    if matches!(sent, Err(SendError::Unsupported(Extension::EightBitMime))) {
        // Nothing went out: this server wants 7-bit bodies, from now on for every worker.
        shared.eight_bit.store(false, Ordering::Relaxed);
        message = build(&issue, &addressee, BodyEncoding::Base64).await?;
        sent = session.send(&message).await;
    }
    let settings = &shared.settings;
    let now = shared.now();
    let relay = session.relay().map(|r| r.to_string());
    let outcome = |kind, error, smtp_reply| outcome(kind, error, smtp_reply, relay.clone());
    Ok(match sent {
        Ok(reply) => outcome(OutcomeKind::Sent, None, Some(reply)),
        Err(e) if e.is_connection() => {
            tracing::warn!(error = %chain(&e), "SMTP server unreachable; deliveries wait for the next run");
            let retry_at = now + chrono::Duration::seconds(settings.retry_backoff_seconds as i64);
            outcome(OutcomeKind::Released { retry_at }, Some(chain(&e)), None)
        }
        Err(e) if e.is_permanent() => {
            // The same reading as for bounce reports: 550 5.1.1 is hard at once,
            // 554 5.7.1 (blocked as spam) is about the message, not the reader.
            let reply = e.reply();
            let mut words = reply.clone().unwrap_or_else(|| chain(&e));
            // The command the reply answered is known here: say it, as a
            // report would ("in reply to RCPT TO command").
            if let Some(stage) = e.stage() {
                words.push_str(&format!(" (in reply to {stage} command)"));
            }
            let status = bounces::StatusCode::find(&words);
            let hard = bounces::classify(status, &words) == bounces::Severity::Hard;
            outcome(
                OutcomeKind::Failed {
                    permanent: true,
                    hard,
                },
                Some(chain(&e)),
                reply,
            )
        }
        Err(e) => {
            let kind = if c.attempt >= i64::from(settings.max_attempts) {
                OutcomeKind::Failed {
                    permanent: false,
                    hard: false,
                }
            } else {
                OutcomeKind::Retry {
                    next_attempt_at: retry_at(now, c.attempt, settings.retry_backoff_seconds),
                }
            };
            outcome(kind, Some(chain(&e)), e.reply())
        }
    })
}

/// One recipient's copy. Signed here, on the worker's own thread: a hop to a
/// blocking thread per message cost more than the signing it moved.
async fn build(
    issue: &Arc<PreparedIssue>,
    to: &Addressee<'_>,
    encoding: BodyEncoding,
) -> Result<Outgoing, Error> {
    issue.message_for(to, SystemTime::now(), encoding)
}

/// Exponential backoff with ±25 % jitter: `base`, `2·base`, `4·base`, …
pub fn retry_at(now: DateTime<Utc>, attempt: i64, base_seconds: u64) -> DateTime<Utc> {
    let exponent = (attempt.max(1) - 1).min(20) as u32;
    let delay = base_seconds as f64 * f64::from(2u32.pow(exponent));
    let jitter = 0.75 + rand::random::<f64>() * 0.5;
    now + chrono::Duration::milliseconds((delay * jitter * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter() {
        let now = Utc::now();
        for (attempt, base) in [(1, 60.0), (2, 120.0), (3, 240.0)] {
            let d = (retry_at(now, attempt, 60) - now).num_milliseconds() as f64 / 1000.0;
            assert!(
                d >= base * 0.75 && d <= base * 1.25,
                "attempt {attempt}: {d}"
            );
        }
    }
}
