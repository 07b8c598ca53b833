//! The scheduler: a cron job (tokio-cron-scheduler, six fields with seconds, read in
//! the site's time zone) that calls the same `run_once` as `posthorn check`.
//!
//! [`Ticker::tick`] is the step: tests call it directly, without waiting for a clock.
//! A tick that is still running when the next one is due is not started twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::app::{App, TickReport};
use crate::delivery::DeliverOptions;
use crate::error::Error;

pub struct Ticker {
    app: App,
    running: tokio::sync::Mutex<()>,
    stop: Arc<AtomicBool>,
}

impl Ticker {
    pub fn new(app: App, stop: Arc<AtomicBool>) -> Ticker {
        Ticker {
            app,
            running: tokio::sync::Mutex::new(()),
            stop,
        }
    }

    /// One tick, unless one is running already (then `None`) or we are stopping.
    pub async fn tick(&self) -> Option<Result<TickReport, Error>> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let Ok(_running) = self.running.try_lock() else {
            tracing::warn!("the previous tick is still running; this one is skipped");
            return None;
        };
        let options = DeliverOptions {
            stop: Some(self.stop.clone()),
            ..Default::default()
        };
        let result = self.app.run_once(Utc::now(), options).await;
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
            Err(e) => tracing::error!(error = %e, "tick failed"),
        }
        Some(result)
    }

    /// Waits for a running tick to finish (its in-flight sends recorded).
    pub async fn wait_idle(&self) {
        let _ = self.running.lock().await;
    }
}

/// Checks `schedule.check` without starting anything.
pub fn validate(cron: &str, tz: chrono_tz::Tz) -> Result<(), Error> {
    job(cron, tz, |_| Box::pin(async {})).map(|_| ())
}

fn job(
    cron: &str,
    tz: chrono_tz::Tz,
    run: impl Fn(()) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync
        + 'static,
) -> Result<Job, Error> {
    Job::new_async_tz(cron, tz, move |_, _| run(())).map_err(|e| {
        Error::Config(format!(
            "schedule.check `{cron}` is not a six-field cron expression: {e}"
        ))
    })
}

/// Starts the cron job; it runs until the returned scheduler is shut down.
pub async fn start(
    ticker: Arc<Ticker>,
    cron: &str,
    tz: chrono_tz::Tz,
) -> Result<JobScheduler, Error> {
    let scheduler_error =
        |e: tokio_cron_scheduler::JobSchedulerError| Error::Config(format!("scheduler: {e}"));
    let scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
    let job = job(cron, tz, move |_| {
        let ticker = ticker.clone();
        Box::pin(async move {
            // The tick runs in its own task so a slow one never blocks the scheduler.
            tokio::spawn(async move {
                ticker.tick().await;
            });
        })
    })?;
    scheduler.add(job).await.map_err(scheduler_error)?;
    scheduler.start().await.map_err(scheduler_error)?;
    Ok(scheduler)
}
