use std::process::ExitCode;

use chrono::Utc;

use super::{shutdown_signal, Output};
use crate::app::App;
use crate::delivery::{RelayState, Stop};
use crate::error::Error;

pub async fn run(app: &App, out: &Output) -> Result<ExitCode, Error> {
    // SIGINT/SIGTERM: claim nothing more, finish and record the sends in flight.
    let stop = Stop::default();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing the sends in flight");
        on_signal.stop();
    });
    let report = app.tick().run_once(Utc::now(), stop).await?;
    let relays = app.probe_relays().await;
    out.print(&report, || {
        let p = &report.posts;
        let d = &report.deliveries;
        let mut s = format!(
            "posts: {} new, {} updated, {} removed, {} unchanged, {} with errors\n",
            p.report.new.len(),
            p.report.updated.len(),
            p.report.removed.len(),
            p.report.unchanged,
            p.errors.len() + p.report.conflicts.len()
        );
        for e in &p.errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        for c in &p.report.conflicts {
            s.push_str(&format!("  error: {c}\n"));
        }
        for issue in &report.issues {
            s.push_str(&format!(
                "new issue: {} ({} deliveries queued)\n",
                issue.slug, issue.queued
            ));
        }
        s.push_str(&format!(
            "deliveries: {} sent, {} retrying, {} failed, {} skipped, {} deferred\n",
            d.sent, d.retrying, d.failed, d.skipped, d.deferred
        ));
        for relay in &relays {
            match relay.state {
                RelayState::Up => s.push_str(&format!("relay {}: answers\n", relay.name)),
                RelayState::SetAside => s.push_str(&format!(
                    "relay {}: set aside ({}); its mail goes through the others\n",
                    relay.name,
                    relay.last_error.as_deref().unwrap_or("no answer")
                )),
            }
        }
        if !relays.is_empty() && relays.iter().all(|r| r.state == RelayState::SetAside) {
            s.push_str("every relay is set aside: deliveries wait, with their backoff, until one answers\n");
        }
        if let Some(b) = &report.bounces {
            s.push_str(&format!(
                "bounce mailbox {}: {} reports processed, {} unparsed set aside, {} other messages left\n",
                b.mailbox, b.processed, b.unparsed, b.left
            ));
            if let Some(e) = &b.error {
                s.push_str(&format!("  error: {e}\n"));
            }
        }
        s
    });
    Ok(ExitCode::SUCCESS)
}
