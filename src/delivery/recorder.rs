//! The recorder: one task that writes every worker's results to the log, in
//! groups, so a run pays for few commits and a kill -9 loses little.
//!
//! Continuous group commit: whatever arrived while the last commit ran is
//! committed next, at once, with no timer. At a high rate the groups grow by
//! themselves; at a low one each result is committed as it comes.
//!
//! What a kill -9 can leave unrecorded is bounded, not only short: a result
//! takes one of [`WINDOW`] places before it is handed over, and gives it back
//! when its group is committed. A worker whose result finds no place waits
//! before it sends anything else, so at most `WINDOW` results plus one message
//! per session (on the wire, or waiting for a place) can go out again.

use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::{DeliverySummary, IssueSource, Shared};
use crate::error::Error;
use crate::store::Outcome;

/// Results handed over and not yet committed, at most. With 16 sessions a kill
/// -9 then re-sends at most 32 messages, and a commit of this many results is
/// far shorter than the time 16 sessions take to send them.
const WINDOW: usize = 16;

/// A result with its place in the window, given back when it is committed.
type Handed = (Outcome, OwnedSemaphorePermit);

/// The workers' side: hands results to the recorder.
#[derive(Clone)]
pub(super) struct Results {
    handed: mpsc::UnboundedSender<Handed>,
    window: Arc<Semaphore>,
}

/// The recorder's side.
pub(super) struct Received(mpsc::UnboundedReceiver<Handed>);

/// A recorder's two ends. The channel needs no bound of its own: the window
/// bounds what is in it.
pub(super) fn channel() -> (Results, Received) {
    let (handed, received) = mpsc::unbounded_channel();
    let window = Arc::new(Semaphore::new(WINDOW));
    (Results { handed, window }, Received(received))
}

impl Results {
    /// Hands `outcome` over, once fewer than [`WINDOW`] results wait for their
    /// commit.
    pub(super) async fn record(&self, outcome: Outcome) -> Result<(), Error> {
        let stopped = || Error::Internal("the delivery recorder stopped".into());
        let place = self
            .window
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| stopped())?;
        self.handed.send((outcome, place)).map_err(|_| stopped())
    }
}

pub(super) async fn record<I: IssueSource>(
    shared: Arc<Shared<I>>,
    Received(mut results): Received,
) -> Result<(), Error> {
    let policy = shared.settings.bounces;
    let mut group = Vec::with_capacity(WINDOW);
    let mut places = Vec::with_capacity(WINDOW);
    while let Some((first, place)) = results.recv().await {
        group.push(first);
        places.push(place);
        while let Ok((outcome, place)) = results.try_recv() {
            group.push(outcome);
            places.push(place);
        }
        shared
            .store
            .record_outcomes(&group, shared.now(), policy)
            .await?;
        // Committed: these places are free for the workers again.
        places.clear();
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
