//! Delivery: workers claim due deliveries from the store, send them over their own
//! long-lived session, and record every result.
//!
//! The engine is handed all it needs and nothing more: the store, an
//! [`IssueSource`] that renders an issue once per run, a [`Transport`] chosen by
//! the caller, a [`Clock`], an [`Observer`] for progress and a [`Stop`] signal.

pub mod dkim;
pub mod lease;
pub mod message;
pub mod rate;
mod recorder;
pub mod transport;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use crate::config::{BouncesConfig, SmtpConfig};
use crate::error::Error;
use crate::store::BouncePolicy;
use crate::store::{OutcomeKind, Store};
pub use message::{Addressee, BodyEncoding, Outgoing, PreparedIssue};
use rate::RateLimiter;
pub use transport::{
    ConfiguredTransport, FileTransport, RelayState, RelayView, SendError, Session, SmtpMeters,
    Transport,
};

/// What one delivery run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DeliverySummary {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Claimed but not attempted (stopping, or the server could not be reached):
    /// back in the queue with their attempt count unchanged.
    pub deferred: u64,
}

impl DeliverySummary {
    fn add(&mut self, kind: &OutcomeKind) {
        match kind {
            OutcomeKind::Sent => self.sent += 1,
            OutcomeKind::Retry { .. } => self.retrying += 1,
            OutcomeKind::Failed { .. } => self.failed += 1,
            OutcomeKind::Skipped => self.skipped += 1,
            OutcomeKind::Released { .. } => self.deferred += 1,
        }
    }

    fn merge(&mut self, other: &DeliverySummary) {
        self.sent += other.sent;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.deferred += other.deferred;
    }

    /// Deliveries that reached an end or a wait in this run.
    pub fn total(&self) -> u64 {
        self.sent + self.retrying + self.failed + self.skipped + self.deferred
    }
}

/// Renders an issue, ready to address to each subscriber. The engine asks once per
/// issue and run, whichever worker needs it first.
pub trait IssueSource: Send + Sync + 'static {
    fn prepare(&self, issue_id: i64) -> impl Future<Output = Result<PreparedIssue, Error>> + Send;
}

/// What time it is, for claims, leases and backoff.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// A clock that starts at a given reading and runs at real speed, so a test can
/// run a send "an hour later" without waiting an hour.
#[derive(Debug, Clone, Copy)]
pub struct RunningClock {
    start: DateTime<Utc>,
    started: Instant,
}

impl RunningClock {
    pub fn starting_at(start: DateTime<Utc>) -> RunningClock {
        RunningClock {
            start,
            started: Instant::now(),
        }
    }
}

impl Clock for RunningClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

/// Watches a run: the command line draws a progress bar from it.
pub trait Observer: Send + Sync {
    /// How many deliveries were due when the run started.
    fn started(&self, _due: u64) {}
    /// Results just committed to the log.
    fn recorded(&self, _batch: &DeliverySummary) {}
}

/// An observer that watches nothing.
pub struct Unobserved;

impl Observer for Unobserved {}

/// Set to stop claiming; sends in flight finish and are recorded.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// One delivery run: what to send, by which clock, watched by whom, until when.
pub struct Run {
    /// Only this issue's deliveries (a manual send); otherwise everything due.
    pub issue_id: Option<i64>,
    pub clock: Arc<dyn Clock>,
    pub observer: Arc<dyn Observer>,
    pub stop: Stop,
}

impl Run {
    /// Everything due at `now`, unobserved, never stopped.
    pub fn due_at(now: DateTime<Utc>) -> Run {
        Run {
            issue_id: None,
            clock: Arc::new(RunningClock::starting_at(now)),
            observer: Arc::new(Unobserved),
            stop: Stop::default(),
        }
    }

    pub fn only(mut self, issue_id: i64) -> Run {
        self.issue_id = Some(issue_id);
        self
    }

    pub fn observed_by(mut self, observer: Arc<dyn Observer>) -> Run {
        self.observer = observer;
        self
    }

    pub fn stopped_by(mut self, stop: Stop) -> Run {
        self.stop = stop;
        self
    }
}

/// The limits of a run, from `[smtp]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: usize,
    pub rate_per_second: u32,
    pub max_attempts: u32,
    pub retry_backoff_seconds: u64,
    pub timeout_seconds: u64,
    pub bounces: BouncePolicy,
}

impl Settings {
    pub fn new(smtp: &SmtpConfig, bounces: &BouncesConfig) -> Settings {
        Settings {
            concurrency: smtp.concurrency,
            rate_per_second: smtp.rate_per_second,
            max_attempts: smtp.max_attempts,
            retry_backoff_seconds: smtp.retry_backoff_seconds,
            timeout_seconds: smtp.timeout_seconds,
            bounces: BouncePolicy {
                hard_after: bounces.hard_after,
                soft_after: bounces.soft_after,
            },
        }
    }
}

/// What the workers and the recorder of one run share.
struct Shared<I> {
    store: Store,
    issues: I,
    settings: Settings,
    run: Run,
    rate: RateLimiter,
    prepared: Mutex<HashMap<i64, Arc<OnceCell<Arc<PreparedIssue>>>>>,
    report: Mutex<DeliverySummary>,
    /// Cleared when the server turns out not to take 8bit bodies.
    eight_bit: AtomicBool,
    batch: i64,
    lease: Duration,
}

impl<I: IssueSource> Shared<I> {
    fn now(&self) -> DateTime<Utc> {
        self.run.clock.now()
    }

    fn encoding(&self) -> BodyEncoding {
        if self.eight_bit.load(Ordering::Relaxed) {
            BodyEncoding::EightBit
        } else {
            BodyEncoding::Base64
        }
    }

    /// The issue rendered once for this run, whichever worker asks first.
    async fn issue(&self, issue_id: i64) -> Result<Arc<PreparedIssue>, Error> {
        let cell = {
            let mut map = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(issue_id).or_default().clone()
        };
        cell.get_or_try_init(|| async { self.issues.prepare(issue_id).await.map(Arc::new) })
            .await
            .cloned()
    }
}

/// Sends every delivery that is due, until none is left (or `run.stop` is set).
pub async fn deliver_due<I: IssueSource, T: Transport>(
    store: &Store,
    issues: I,
    transport: &T,
    settings: &Settings,
    run: Run,
) -> Result<DeliverySummary, Error> {
    let now = run.clock.now();
    // Claims of processes that died (a kill -9, a crash) go back to the queue first.
    let reaped = store
        .reap_leases(now, |owner| lease::is_dead(owner) == Some(true))
        .await?;
    if reaped > 0 {
        tracing::warn!(
            reaped,
            "took back deliveries of a sender that stopped mid-send"
        );
    }
    let due = store.count_due(now, run.issue_id).await?;
    if due == 0 {
        return Ok(DeliverySummary::default());
    }
    run.observer.started(due as u64);
    let workers = settings.concurrency.min(due as usize).max(1);
    let timeout = Duration::from_secs(settings.timeout_seconds);
    let shared = Arc::new(Shared {
        store: store.clone(),
        issues,
        rate: RateLimiter::per_second(settings.rate_per_second),
        settings: settings.clone(),
        run,
        prepared: Mutex::new(HashMap::new()),
        report: Mutex::new(DeliverySummary::default()),
        eight_bit: AtomicBool::new(true),
        // Big enough to amortise the claim and the result transaction, small enough
        // that every worker gets a share of a small send.
        batch: (due / workers as i64).clamp(1, 100),
        // Renewed while a worker is busy; what a crashed process on another host
        // leaves behind waits this long. On this host a dead owner is seen at once.
        lease: Duration::from_secs(60).max(timeout * 2),
    });

    // One recorder for every worker: results are committed in groups, as soon
    // as the previous commit returns, so a kill -9 leaves only that much unrecorded.
    let (results, received) = recorder::channel();
    let recorder = tokio::spawn(recorder::record(shared.clone(), received));
    let mut set = JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker::work(
            shared.clone(),
            transport.session(),
            results.clone(),
        ));
    }
    drop(results);
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let result = joined
            .unwrap_or_else(|e| Err(Error::Internal(format!("a delivery worker stopped: {e}"))));
        if let Err(e) = result {
            tracing::error!(error = %crate::error::chain(&e), "delivery worker failed");
            first_error.get_or_insert(e);
        }
    }
    // The workers are gone, so the channel closes and the recorder flushes.
    let recorded = recorder.await.unwrap_or_else(|e| {
        Err(Error::Internal(format!(
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
