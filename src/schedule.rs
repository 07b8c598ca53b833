//! The scheduler: a cron job (tokio-cron-scheduler, six fields with seconds, read in
//! the site's time zone) that runs the same tick as `posthorn check`.
//!
//! [`Ticker::tick`] is the step: tests call it directly, without waiting for a clock.
//! A tick that is still running when the next one is due is not started twice.
//! [`Ticker::wake`] asks for a tick now, as the admin API does after queueing a send.
//!
//! A tick that panics is caught, logged with its cause and counted: the worker
//! and the scheduler go on. [`Ticker::health`] says whether both are running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Mutex, Notify};
use tokio_cron_scheduler::{Job, JobBuilder, JobScheduler, JobSchedulerError, JobToRunAsync};

use crate::app::{Tick, TickSummary};
use crate::config::{next_time, Cron};
use crate::delivery::Stop;
use crate::error::{catch_panic, caught_panics, Error};

pub struct Ticker {
    tick: Tick,
    running: Mutex<()>,
    stop: Stop,
    woken: Notify,
    /// The wake loop ([`Ticker::serve_wakes`]) is running.
    serving: AtomicBool,
    /// A tick is running now (read by the health check, which must not take
    /// the tick's lock even for a moment: a tick would be skipped).
    in_tick: AtomicBool,
    /// The cron job's heartbeat, once [`start`] has started it.
    cron: std::sync::Mutex<Option<Heartbeat>>,
    /// Ticks run and failed, and the last that succeeded.
    ticks: std::sync::Mutex<TickCounts>,
    /// Since when this ticker has been able to tick.
    started: DateTime<Utc>,
}

/// Ticks since start: how many ran, how many failed, when one last succeeded.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TickCounts {
    pub ticks: u64,
    pub failures: u64,
    pub last_success: Option<DateTime<Utc>>,
}

/// How many of the scheduler's firings may pass with no tick succeeding
/// before the health check says so: one failure is a blip (a relay that was
/// down), several in a row are a site that sends nothing.
const TICK_PERIODS: u32 = 3;

/// When the cron job last fired, and how it fires: it is late (so stopped) once
/// its next time has passed by more than [`CRON_GRACE`].
#[derive(Debug, Clone)]
struct Heartbeat {
    cron: Cron,
    tz: chrono_tz::Tz,
    last: DateTime<Utc>,
}

/// How late the cron job may fire before the scheduler counts as stopped.
const CRON_GRACE: chrono::Duration = chrono::Duration::seconds(90);

/// Whether one part of the process is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Running {
    Yes,
    No,
    /// Not part of this process (a web-only server, or one without a cron).
    NotHere,
}

/// What `/healthz` reports about the worker and the scheduler.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub worker: Running,
    pub scheduler: Running,
    /// `no` once no tick has succeeded for [`TICK_PERIODS`] of the
    /// scheduler's periods.
    pub ticking: Running,
    pub ticks: TickCounts,
    /// Panics caught (and survived) since start: ticks and deliveries.
    pub panics: u64,
}

impl Health {
    /// Neither the worker nor the scheduler has stopped, and ticks succeed.
    pub fn ok(&self) -> bool {
        self.worker != Running::No && self.scheduler != Running::No && self.ticking != Running::No
    }
}

/// What the admin API and the dashboard wake after queueing a send.
impl crate::app::Worker for Ticker {
    fn wake(&self) {
        Ticker::wake(self);
    }
}

impl Ticker {
    pub fn new(tick: Tick, stop: Stop) -> Ticker {
        Ticker {
            tick,
            running: Mutex::new(()),
            stop,
            woken: Notify::new(),
            serving: AtomicBool::new(false),
            in_tick: AtomicBool::new(false),
            cron: std::sync::Mutex::new(None),
            ticks: std::sync::Mutex::new(TickCounts::default()),
            started: Utc::now(),
        }
    }

    /// Whether the wake loop and the cron job are running at `now`.
    pub fn health(&self, now: DateTime<Utc>) -> Health {
        let worker = if self.serving.load(Ordering::Acquire) {
            Running::Yes
        } else {
            Running::No
        };
        let beat = self.cron.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let scheduler = match &beat {
            None => Running::NotHere,
            Some(b) => match next_time(&b.cron, b.tz, b.last) {
                Some(next) if now > next + CRON_GRACE => Running::No,
                _ => Running::Yes,
            },
        };
        let ticks = *self.ticks.lock().unwrap_or_else(|e| e.into_inner());
        // A tick still running (a long send) is ticking; otherwise one must
        // have succeeded by the third firing after the last success.
        let in_progress = self.in_tick.load(Ordering::Acquire);
        let ticking = match &beat {
            None => Running::NotHere,
            Some(_) if in_progress => Running::Yes,
            Some(b) => {
                let since = ticks.last_success.unwrap_or(self.started);
                match nth_time(&b.cron, b.tz, since, TICK_PERIODS) {
                    Some(deadline) if now > deadline + CRON_GRACE => Running::No,
                    _ => Running::Yes,
                }
            }
        };
        Health {
            worker,
            scheduler,
            ticking,
            ticks,
            panics: caught_panics(),
        }
    }

    /// Ticks since start.
    pub fn ticks(&self) -> TickCounts {
        *self.ticks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cron job fired (or was just started) at `now`.
    fn beat(&self, cron: &Cron, tz: chrono_tz::Tz, now: DateTime<Utc>) {
        *self.cron.lock().unwrap_or_else(|e| e.into_inner()) = Some(Heartbeat {
            cron: cron.clone(),
            tz,
            last: now,
        });
    }

    /// One tick, unless one is running already (then `None`) or we are stopping.
    pub async fn tick(&self) -> Option<Result<TickSummary, Error>> {
        let Ok(running) = self.running.try_lock() else {
            tracing::warn!("the previous tick is still running; this one is skipped");
            return None;
        };
        self.run(running).await
    }

    /// Asks for a tick as soon as the running one (if any) is done.
    pub fn wake(&self) {
        self.woken.notify_one();
    }

    /// Runs a tick each time [`Ticker::wake`] is called, until we are stopping.
    pub async fn serve_wakes(self: Arc<Self>) {
        /// Says the loop has stopped however it ends, a panic included.
        struct Serving<'a>(&'a AtomicBool);
        impl Drop for Serving<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        self.serving.store(true, Ordering::Release);
        let _serving = Serving(&self.serving);
        loop {
            self.woken.notified().await;
            if self.stop.is_stopped() {
                return;
            }
            let running = self.running.lock().await;
            self.run(running).await;
        }
    }

    async fn run(
        &self,
        _running: tokio::sync::MutexGuard<'_, ()>,
    ) -> Option<Result<TickSummary, Error>> {
        if self.stop.is_stopped() {
            return None;
        }
        self.in_tick.store(true, Ordering::Release);
        let result = catch_panic("a tick", self.tick.run_once(Utc::now(), self.stop.clone()))
            .await
            .unwrap_or_else(|why| Err(Error::Internal(why)));
        self.in_tick.store(false, Ordering::Release);
        {
            let mut counts = self.ticks.lock().unwrap_or_else(|e| e.into_inner());
            counts.ticks += 1;
            match &result {
                Ok(_) => counts.last_success = Some(Utc::now()),
                Err(_) => counts.failures += 1,
            }
        }
        match &result {
            Ok(report) => {
                let d = &report.deliveries;
                if !report.issues.is_empty() || d.sent + d.retrying + d.failed + d.deferred > 0 {
                    tracing::info!(
                        issues = report.issues.len(),
                        sent = d.sent,
                        retrying = d.retrying,
                        failed = d.failed,
                        deferred = d.deferred,
                        "tick"
                    );
                }
            }
            Err(e) => tracing::error!(error = %crate::error::chain(e), "tick failed"),
        }
        Some(result)
    }

    /// Stops: no new tick starts, and this returns once a running one has finished
    /// (its in-flight sends recorded).
    pub async fn stop(&self) {
        self.stop.stop();
        self.woken.notify_one();
        let _ = self.running.lock().await;
    }
}

/// The cron job's `n`th firing after `after` (an office-hours schedule's
/// third firing after the evening's last is the next morning's).
fn nth_time(cron: &Cron, tz: chrono_tz::Tz, after: DateTime<Utc>, n: u32) -> Option<DateTime<Utc>> {
    (0..n).try_fold(after, |t, _| next_time(cron, tz, t))
}

/// Starts the cron jobs: a tick at each `check`, and one at each `digest` time
/// (queued behind a running tick, never skipped, so the digest goes out on
/// time). They run until the returned scheduler is shut down.
pub async fn start(
    ticker: Arc<Ticker>,
    cron: &Cron,
    digest: &Cron,
    tz: chrono_tz::Tz,
) -> Result<JobScheduler, Error> {
    let scheduler_error = |e: JobSchedulerError| Error::Config(format!("scheduler: {e}"));
    let scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
    let digest_ticker = ticker.clone();
    ticker.beat(cron, tz, Utc::now());
    let beating = cron.clone();
    let tick_job = job(
        cron,
        tz,
        Box::new(move |_, _| {
            let ticker = ticker.clone();
            ticker.beat(&beating, tz, Utc::now());
            Box::pin(async move {
                // The tick runs in its own task so a slow one never blocks the scheduler.
                tokio::spawn(async move {
                    ticker.tick().await;
                });
            })
        }),
    )
    .map_err(scheduler_error)?;
    scheduler.add(tick_job).await.map_err(scheduler_error)?;
    let digest_job = job(
        digest,
        tz,
        Box::new(move |_, _| {
            let ticker = digest_ticker.clone();
            Box::pin(async move { ticker.wake() })
        }),
    )
    .map_err(scheduler_error)?;
    scheduler.add(digest_job).await.map_err(scheduler_error)?;
    scheduler.start().await.map_err(scheduler_error)?;
    Ok(scheduler)
}

/// A job on the schedule the config parsed: the scheduler is given it as it is,
/// not as text to parse again.
fn job(cron: &Cron, tz: chrono_tz::Tz, run: Box<JobToRunAsync>) -> Result<Job, JobSchedulerError> {
    JobBuilder {
        schedule: Some(cron.schedule().clone()),
        ..JobBuilder::new()
            .with_timezone(tz)
            .with_cron_job_type()
            .with_run_async(run)
    }
    .build()
}
