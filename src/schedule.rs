//! The scheduler: a cron job (tokio-cron-scheduler, six fields with seconds, read in
//! the site's time zone) that runs the same tick as `posthorn check`.
//!
//! [`Ticker::tick`] is the step: tests call it directly, without waiting for a clock.
//! A tick that is still running when the next one is due is not started twice.
//! [`Ticker::wake`] asks for a tick now, as the admin API does after queueing a send.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{Mutex, Notify};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::app::{Tick, TickReport};
use crate::delivery::Stop;
use crate::error::Error;

pub struct Ticker {
    tick: Tick,
    running: Mutex<()>,
    stop: Stop,
    woken: Notify,
}

impl Ticker {
    pub fn new(tick: Tick, stop: Stop) -> Ticker {
        Ticker {
            tick,
            running: Mutex::new(()),
            stop,
            woken: Notify::new(),
        }
    }

    /// One tick, unless one is running already (then `None`) or we are stopping.
    pub async fn tick(&self) -> Option<Result<TickReport, Error>> {
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
    ) -> Option<Result<TickReport, Error>> {
        if self.stop.is_stopped() {
            return None;
        }
        let result = self.tick.run_once(Utc::now(), self.stop.clone()).await;
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

/// Starts the cron jobs: a tick at each `check`, and one at each `digest` time
/// (queued behind a running tick, never skipped, so the digest goes out on
/// time). They run until the returned scheduler is shut down.
pub async fn start(
    ticker: Arc<Ticker>,
    cron: &str,
    digest: &str,
    tz: chrono_tz::Tz,
) -> Result<JobScheduler, Error> {
    let scheduler_error =
        |e: tokio_cron_scheduler::JobSchedulerError| Error::Config(format!("scheduler: {e}"));
    let scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
    let digest_ticker = ticker.clone();
    let job = Job::new_async_tz(cron, tz, move |_, _| {
        let ticker = ticker.clone();
        Box::pin(async move {
            // The tick runs in its own task so a slow one never blocks the scheduler.
            tokio::spawn(async move {
                ticker.tick().await;
            });
        })
    })
    .map_err(scheduler_error)?;
    scheduler.add(job).await.map_err(scheduler_error)?;
    let digest_job = Job::new_async_tz(digest, tz, move |_, _| {
        let ticker = digest_ticker.clone();
        Box::pin(async move { ticker.wake() })
    })
    .map_err(scheduler_error)?;
    scheduler.add(digest_job).await.map_err(scheduler_error)?;
    scheduler.start().await.map_err(scheduler_error)?;
    Ok(scheduler)
}
