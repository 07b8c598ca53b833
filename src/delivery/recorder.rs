//! The recorder: one task that writes every worker's results to the log, in
//! groups, so a run pays for few commits and a kill -9 loses little.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{DeliveryReport, IssueSource, Shared};
use crate::error::Error;
use crate::store::Outcome;

/// Results per commit at most, and how long the first of them may wait.
const GROUP_SIZE: usize = 256;
const GROUP_WAIT: Duration = Duration::from_millis(20);

pub(super) async fn record<I: IssueSource>(
    shared: Arc<Shared<I>>,
    mut results: mpsc::Receiver<Outcome>,
) -> Result<(), Error> {
    let policy = shared.settings.bounces;
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
            .store
            .record_outcomes(&group, shared.now(), policy)
            .await?;
        let mut batch = DeliveryReport::default();
        for o in &group {
            batch.add(&o.kind);
        }
        shared
            .report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(&batch);
        shared.run.observer.recorded(&batch);
        group.clear();
    }
    Ok(())
}
