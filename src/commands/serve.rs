use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::{shutdown_signal, Output};
use crate::app::App;
use crate::delivery::Stop;
use crate::error::Error;
use crate::schedule::{self, Ticker};
use crate::web::Server;

/// The web server and the scheduler until SIGINT or SIGTERM; `worker_only` runs
/// the scheduler (sending) without the web server.
pub async fn run(app: &App, _out: &Output, worker_only: bool) -> Result<ExitCode, Error> {
    let config = app.config();
    let ticker = Arc::new(Ticker::new(app.tick().clone(), Stop::default()));
    // One tick at once: whatever a stopped process left behind goes out now.
    let first = ticker.clone();
    tokio::spawn(async move {
        first.tick().await;
    });
    let wakes = tokio::spawn(ticker.clone().serve_wakes());
    let schedule = &config.schedule;
    let mut scheduler = schedule::start(
        ticker.clone(),
        &schedule.check,
        &schedule.digest,
        config.site.timezone,
    )
    .await?;
    tracing::info!(cron = %schedule.check, digest = %schedule.digest, timezone = %config.site.timezone, "scheduler started");

    if worker_only {
        super::line("worker running (no web server)");
        shutdown_signal().await;
    } else {
        let sync = app.tick().sync_posts(Utc::now()).await?;
        for error in &sync.errors {
            tracing::warn!("{error}");
        }
        let server = Server::bind(app.clone(), &config.server.bind)
            .await?
            .with_worker(ticker.clone());
        let addr = server.local_addr()?;
        tracing::info!("serving http://{addr}/");
        super::line(&format!("listening on http://{addr}/"));
        // Pick up posts changed by other processes (or reaching their date) within a second.
        let site = server.site();
        let refresher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                // A fault of ours on one refresh must not freeze the site for good.
                match crate::error::catch_panic("refreshing the site", site.refresh()).await {
                    Ok(Ok(_)) | Err(_) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %crate::error::chain(&e), "refreshing the site")
                    }
                }
            }
        });
        server.run(shutdown_signal()).await?;
        refresher.abort();
    }

    // Graceful stop: claim nothing more, let the sends in flight finish and be recorded.
    tracing::info!("stopping: finishing the sends in flight");
    let _ = scheduler.shutdown().await;
    ticker.stop().await;
    let _ = wakes.await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
