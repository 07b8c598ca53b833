//! The recorder: one task that writes every worker's results to the log, in
//! groups, so a run pays for few commits and a kill -9 loses little.
//!
//! Continuous group commit: whatever arrived while the last commit ran is
//! committed next, at once, with no timer. At a high rate the groups grow by
//! themselves; at a low one each result is committed as it comes. What a kill
//! -9 can leave unrecorded is what arrived during one commit.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{DeliverySummary, IssueSource, Shared};
use crate::error::Error;
use crate::store::Outcome;

/// Results per commit at most.
const GROUP_SIZE: usize = 256;

pub(super) async fn record<I: IssueSource>(
    shared: Arc<Shared<I>>,
    mut results: mpsc::Receiver<Outcome>,
) -> Result<(), Error> {
    let policy = shared.settings.bounces;
    let mut group = Vec::with_capacity(GROUP_SIZE);
    while let Some(first) = results.recv().await {
        group.push(first);
        while group.len() < GROUP_SIZE {
            match results.try_recv() {
                Ok(outcome) => group.push(outcome),
                Err(_) => break,
            }
        }
        shared
            .store
            .record_outcomes(&group, shared.now(), policy)
            .await?;
        let mut batch = DeliverySummary::default();
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
