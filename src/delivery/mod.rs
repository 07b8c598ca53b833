//! Delivery: workers claim due deliveries from the store, send them over their own
//! long-lived session, and record every result. Rendering happens once per issue.

pub mod dkim;
pub mod lease;
pub mod message;
pub mod rate;
pub mod transport;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, OnceCell};
use tokio::task::JoinSet;

use crate::app::App;
use crate::config::TransportKind;
use crate::domain::SubscriberStatus;
use crate::error::Error;
use crate::render::email::{render_digest, render_issue};
use crate::store::{Claimed, Outcome, OutcomeKind};
use message::{Addressee, PreparedIssue};
use rate::RateLimiter;
use transport::{FileTransport, SendError, Session, SmtpTransport, Transport};

/// What one delivery run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Claimed but not attempted (stopping, or the server could not be reached):
    /// back in the queue with their attempt count unchanged.
    pub deferred: u64,
}

impl DeliveryReport {
    fn add(&mut self, kind: &OutcomeKind) {
        match kind {
            OutcomeKind::Sent => self.sent += 1,
            OutcomeKind::Retry { .. } => self.retrying += 1,
            OutcomeKind::Failed { .. } => self.failed += 1,
            OutcomeKind::Skipped => self.skipped += 1,
            OutcomeKind::Released { .. } => self.deferred += 1,
        }
    }
}

/// How a delivery run is scoped and observed.
#[derive(Default, Clone)]
pub struct DeliverOptions {
    /// Only this issue's deliveries (a manual send); otherwise everything due.
    pub issue_id: Option<i64>,
    pub progress: Option<indicatif::ProgressBar>,
    /// Set to stop claiming; sends in flight finish and are recorded.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Sends every delivery that is due at `now`, until none is left.
///
/// `now` is the clock's reading at the start; it advances with real time from there,
/// so tests can run a send "an hour later" without waiting an hour.
pub async fn deliver_due(
    app: &App,
    now: DateTime<Utc>,
    options: DeliverOptions,
) -> Result<DeliveryReport, Error> {
    match app.config.email.transport {
        TransportKind::File => run(app, FileTransport::new(&app.config), now, options).await,
        TransportKind::Smtp => run(app, SmtpTransport::new(&app.config), now, options).await,
    }
}

/// Sends one message outside the queue, such as a test copy.
pub async fn send_single(app: &App, message: &message::Outgoing) -> Result<String, SendError> {
    async fn once<T: Transport>(
        transport: T,
        message: &message::Outgoing,
    ) -> Result<String, SendError> {
        let mut session = transport.session();
        let result = session.send(message).await;
        session.close().await;
        result
    }
    match app.config.email.transport {
        TransportKind::File => once(FileTransport::new(&app.config), message).await,
        TransportKind::Smtp => once(SmtpTransport::new(&app.config), message).await,
    }
}

/// A clock that starts at a given time and runs at real speed.
#[derive(Clone, Copy)]
struct Clock {
    start: DateTime<Utc>,
    started: Instant,
}

impl Clock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

struct Shared {
    app: App,
    clock: Clock,
    rate: RateLimiter,
    issues: Mutex<HashMap<i64, Arc<OnceCell<Arc<PreparedIssue>>>>>,
    report: Mutex<DeliveryReport>,
    options: DeliverOptions,
    batch: i64,
    lease: Duration,
    instance: String,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// The issue rendered once for this run, whichever worker asks first.
    async fn issue(&self, issue_id: i64) -> Result<Arc<PreparedIssue>, Error> {
        let cell = {
            let mut map = self.issues.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(issue_id).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let app = &self.app;
            let issue = app
                .store
                .issue_by_id(issue_id)
                .await?
                .ok_or_else(|| Error::Invalid(format!("issue {issue_id} does not exist")))?;
            let mut posts = Vec::new();
            for post_id in app.store.issue_post_ids(issue.id).await? {
                if let Some(post) = app.store.post_by_id(post_id).await? {
                    posts.push(post);
                }
            }
            let bodies = match (issue.kind.as_str(), posts.as_slice()) {
                ("digest", posts) if !posts.is_empty() => {
                    render_digest(&app.config, &app.templates, posts)?
                }
                (_, [post, ..]) => render_issue(&app.config, &app.templates, post)?,
                _ => return Err(Error::Invalid(format!("issue {issue_id} has no posts"))),
            };
            Ok(Arc::new(PreparedIssue::new(
                &app.config,
                issue.id,
                &issue.subject,
                &self.instance,
                bodies,
                app.signer.clone(),
            )?))
        })
        .await
        .cloned()
    }
}

async fn run<T: Transport>(
    app: &App,
    transport: T,
    now: DateTime<Utc>,
    options: DeliverOptions,
) -> Result<DeliveryReport, Error> {
    // Claims of processes that died (a kill -9, a crash) go back to the queue first.
    let reaped = app
        .store
        .reap_leases(now, |owner| lease::is_dead(owner) == Some(true))
        .await?;
    if reaped > 0 {
        tracing::warn!(
            reaped,
            "took back deliveries of a sender that stopped mid-send"
        );
    }
    let due = app.store.count_due(now, options.issue_id).await?;
    if due == 0 {
        return Ok(DeliveryReport::default());
    }
    let smtp = &app.config.smtp;
    let workers = smtp.concurrency.min(due as usize).max(1);
    // Big enough to amortise the claim and the result transaction, small enough
    // that every worker gets a share of a small send.
    let batch = (due / workers as i64).clamp(1, 100);
    let timeout = Duration::from_secs(smtp.timeout_seconds);
    let shared = Arc::new(Shared {
        app: app.clone(),
        clock: Clock {
            start: now,
            started: Instant::now(),
        },
        rate: RateLimiter::per_second(smtp.rate_per_second),
        issues: Mutex::new(HashMap::new()),
        report: Mutex::new(DeliveryReport::default()),
        options,
        batch,
        // Renewed while a worker is busy; what a crashed process on another host
        // leaves behind waits this long. On this host a dead owner is seen at once.
        lease: Duration::from_secs(60).max(timeout * 2),
        instance: app.store.instance().await?,
    });

    // One recorder for every worker: results are committed in groups, a few
    // milliseconds after they happen, so a kill -9 leaves only that much unrecorded.
    let (results, received) = mpsc::channel(1024);
    let recorder = tokio::spawn(record(shared.clone(), received));
    let mut set = JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker(shared.clone(), transport.session(), results.clone()));
    }
    drop(results);
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let result = joined
            .unwrap_or_else(|e| Err(Error::Invalid(format!("a delivery worker stopped: {e}"))));
        if let Err(e) = result {
            tracing::error!(error = %e, "delivery worker failed");
            first_error.get_or_insert(e);
        }
    }
    // The workers are gone, so the channel closes and the recorder flushes.
    let recorded = recorder.await.unwrap_or_else(|e| {
        Err(Error::Invalid(format!(
            "the delivery recorder stopped: {e}"
        )))
    });
    if let Err(e) = recorded {
        first_error.get_or_insert(e);
    }
    let report = *shared.report.lock().unwrap_or_else(|e| e.into_inner());
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Results per commit at most, and how long the first of them may wait.
const GROUP_SIZE: usize = 256;
const GROUP_WAIT: Duration = Duration::from_millis(20);

async fn record(shared: Arc<Shared>, mut results: mpsc::Receiver<Outcome>) -> Result<(), Error> {
    let bounce_after = shared.app.config.smtp.bounce_after;
    let mut group = Vec::with_capacity(GROUP_SIZE);
    while let Some(first) = results.recv().await {
        group.push(first);
        let deadline = tokio::time::Instant::now() + GROUP_WAIT;
        while group.len() < GROUP_SIZE {
            match tokio::time::timeout_at(deadline, results.recv()).await {
                Ok(Some(outcome)) => group.push(outcome),
                Ok(None) | Err(_) => break,
            }
        }
        shared
            .app
            .store
            .record_outcomes(&group, shared.clock.now(), bounce_after)
            .await?;
        {
            let mut report = shared.report.lock().unwrap_or_else(|e| e.into_inner());
            for o in &group {
                report.add(&o.kind);
            }
        }
        if let Some(progress) = &shared.options.progress {
            progress.inc(group.len() as u64);
        }
        group.clear();
    }
    Ok(())
}

async fn worker<S: Session>(
    shared: Arc<Shared>,
    mut session: S,
    results: mpsc::Sender<Outcome>,
) -> Result<(), Error> {
    let result = worker_loop(&shared, &mut session, &results).await;
    session.close().await;
    result
}

async fn worker_loop<S: Session>(
    shared: &Shared,
    session: &mut S,
    results: &mpsc::Sender<Outcome>,
) -> Result<(), Error> {
    let store = &shared.app.store;
    let smtp = &shared.app.config.smtp;
    let owner = lease::Owner::current().as_str();
    let lease = chrono::Duration::from_std(shared.lease).unwrap_or_default();
    // A send must never outlive the lease under it.
    let margin = chrono::Duration::seconds(smtp.timeout_seconds as i64 + 5);
    let report = |outcome: Outcome| async {
        results
            .send(outcome)
            .await
            .map_err(|_| Error::Invalid("the delivery recorder stopped".into()))
    };
    loop {
        if shared.stopping() {
            return Ok(());
        }
        let claimed_at = shared.clock.now();
        let claimed = store
            .claim_deliveries(
                claimed_at,
                lease.num_milliseconds(),
                shared.batch,
                shared.options.issue_id,
                owner,
            )
            .await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let mut lease_end = claimed_at + lease;
        let mut server_down = false;
        for (i, c) in claimed.iter().enumerate() {
            let now = shared.clock.now();
            if lease_end - now < margin {
                let rest: Vec<i64> = claimed[i..].iter().map(|c| c.delivery_id).collect();
                lease_end = now + lease;
                store.renew_leases(&rest, owner, lease_end).await?;
            }
            if server_down || shared.stopping() {
                report(released(c, now, None)).await?;
                continue;
            }
            match deliver_one(shared, session, c).await {
                Ok(outcome) => {
                    server_down = matches!(outcome.kind, OutcomeKind::Released { .. });
                    report(outcome).await?;
                }
                Err(e) => {
                    // Put the rest back before giving up, so nothing waits for a lease.
                    report(released(c, now, Some(e.to_string()))).await?;
                    for rest in &claimed[i + 1..] {
                        report(released(rest, now, None)).await?;
                    }
                    return Err(e);
                }
            }
        }
        if server_down {
            // The server is unreachable: stop here; the next tick tries again.
            return Ok(());
        }
    }
}

fn released(c: &Claimed, now: DateTime<Utc>, error: Option<String>) -> Outcome {
    Outcome {
        delivery_id: c.delivery_id,
        subscriber_id: c.subscriber_id,
        kind: OutcomeKind::Released { retry_at: now },
        error,
        smtp_reply: None,
    }
}

async fn deliver_one<S: Session>(
    shared: &Shared,
    session: &mut S,
    c: &Claimed,
) -> Result<Outcome, Error> {
    let app = &shared.app;
    let outcome = |kind, error: Option<String>, smtp_reply: Option<String>| Outcome {
        delivery_id: c.delivery_id,
        subscriber_id: c.subscriber_id,
        kind,
        error,
        smtp_reply,
    };
    let email = match (&c.email, c.subscriber_status) {
        (Some(email), Some(SubscriberStatus::Active)) => email,
        (_, status) => {
            let why = status.map_or("gone".to_string(), |s| s.to_string());
            return Ok(outcome(
                OutcomeKind::Skipped,
                Some(format!("subscriber is {why}")),
                None,
            ));
        }
    };
    let issue = shared.issue(c.issue_id).await?;
    let unsubscribe_url = app.unsubscribe_url(c.subscriber_id);
    let build = {
        let (issue, email, name, subscriber_id) = (
            issue.clone(),
            email.clone(),
            c.name.clone(),
            c.subscriber_id,
        );
        move || {
            issue.message_for(
                &Addressee {
                    subscriber_id,
                    email: &email,
                    name: &name,
                    unsubscribe_url: &unsubscribe_url,
                },
                SystemTime::now(),
            )
        }
    };
    // Signing is CPU work: keep it off the threads that drive the connections.
    let message = if app.signer.is_some() {
        tokio::task::spawn_blocking(build)
            .await
            .map_err(|e| Error::Email(format!("building a message: {e}")))?
    } else {
        build()
    };
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            return Ok(outcome(
                OutcomeKind::Failed { permanent: false },
                Some(e.to_string()),
                None,
            ));
        }
    };
    shared.rate.acquire().await;
    let smtp = &app.config.smtp;
    let now = shared.clock.now();
    Ok(match session.send(&message).await {
        Ok(reply) => outcome(OutcomeKind::Sent, None, Some(reply)),
        Err(SendError::Permanent { message, reply }) => outcome(
            OutcomeKind::Failed { permanent: true },
            Some(message),
            reply,
        ),
        Err(SendError::Transient { message, reply }) => {
            let kind = if c.attempt >= i64::from(smtp.max_attempts) {
                OutcomeKind::Failed { permanent: false }
            } else {
                OutcomeKind::Retry {
                    next_attempt_at: retry_at(now, c.attempt, smtp.retry_backoff_seconds),
                }
            };
            outcome(kind, Some(message), reply)
        }
        Err(SendError::Connection { message }) => {
            tracing::warn!(error = %message, "SMTP server unreachable; deliveries wait for the next run");
            let retry_at = now + chrono::Duration::seconds(smtp.retry_backoff_seconds as i64);
            outcome(OutcomeKind::Released { retry_at }, Some(message), None)
        }
    })
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
