//! Subscribers read in from a file: posthorn's own export, any CSV with an
//! `email` column, or another service's export, alone or in a ZIP. One concern
//! a file: the shape of a file, told by its columns (`formats.rs`); what each
//! service's status words mean (`standing.rs`); cells and values as shown
//! (`cells.rs`); the reading thread and its bounds (`reading.rs`). Here: the
//! writer, which stores one batch while the next is read, and the report.

mod cells;
mod formats;
mod reading;
mod services;
mod standing;

use std::io::{Read, Seek};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::Subscriptions;
use crate::error::Error;
use crate::store::{KeptAway, StatusCounts};
#[cfg(test)]
pub(super) use cells::from_cell;
use reading::Reading;
pub use services::ExportFormat;

/// Rows per transaction of an import: big enough that commits are rare, small
/// enough that memory stays flat.
const IMPORT_BATCH: usize = 10_000;

/// Several topics in one CSV cell.
pub(super) const TOPIC_SEPARATOR: &str = ";";

/// A row of an imported file that was not taken, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    /// The file in a ZIP, when the import read several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// As a spreadsheet numbers it: the header is row 1.
    pub row: usize,
    /// At most 100 characters of the address cell.
    pub value: String,
    pub reason: String,
}

/// What importing a file did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportSummary {
    /// Whose export it was (the first file's, for a ZIP).
    pub format: Option<ExportFormat>,
    /// New subscribers, in all.
    pub added: u64,
    /// New subscribers by the status they were given.
    pub statuses: StatusCounts,
    /// Addresses posthorn had, left as they were.
    pub already_present: u64,
    /// Readers posthorn had as active or pending whom the file lists as gone
    /// (after posthorn last confirmed them): they are now.
    pub left_now: StatusCounts,
    /// Addresses the file lists as subscribed that posthorn has as
    /// unsubscribed, bounced, complained or forgotten: they stay so.
    pub kept_away: KeptAway,
    /// The first 1,000 rejected rows (`reading::REJECTED_KEPT`).
    pub rejected: Vec<Rejected>,
    /// Every rejected row, those not listed included.
    pub rejected_total: u64,
    /// People forgotten before posthorn kept a keyed hash of each address (an
    /// upgrade from before): an import cannot recognise them. `subscribers
    /// forget ADDRESS` remembers one again.
    pub forgotten_unrecognised: i64,
}

impl ImportSummary {
    fn count(&mut self, batch: crate::store::ImportedBatch) {
        self.added += batch.added.total();
        self.statuses.merge(batch.added);
        self.already_present += batch.already_present;
        self.left_now.merge(batch.left_now);
        self.kept_away.merge(batch.kept_away);
    }
}

/// An import's input: a file or an upload.
pub trait ImportInput: Read + Seek + Send + 'static {}
impl<T: Read + Seek + Send + 'static> ImportInput for T {}

impl Subscriptions {
    /// Imports a subscriber file (see the module), in transactions of
    /// [`IMPORT_BATCH`] (10,000) good rows. `name` names the file in errors
    /// and reports; `from` names its format, or `None` tells it by its
    /// columns. Bad rows are reported, not fatal; a file of an unknown shape
    /// is an error and changes nothing.
    pub async fn import_file(
        &self,
        input: impl ImportInput,
        name: &str,
        from: Option<ExportFormat>,
        now: DateTime<Utc>,
    ) -> Result<ImportSummary, Error> {
        let store = &self.context.store;
        let (out, mut chunks) = mpsc::channel(1);
        let forgotten = store
            .any_forgotten()
            .await?
            .then(|| self.context.links.tokens().clone());
        let reading = Reading::new(
            from,
            self.context.config.posts.topics.clone(),
            forgotten,
            out,
        );
        let name = name.to_string();
        let reader = tokio::task::spawn_blocking(move || reading.read(input, &name));
        let mut summary = ImportSummary {
            forgotten_unrecognised: store.forgotten_before_hashes().await?,
            ..ImportSummary::default()
        };
        while let Some(chunk) = chunks.recv().await {
            summary.rejected_total += chunk.rejected.len() as u64 + chunk.unlisted;
            summary.rejected.extend(chunk.rejected);
            if !chunk.rows.is_empty() {
                summary.count(store.import_subscribers(&chunk.rows, now).await?);
            }
        }
        summary.format = reader
            .await
            .map_err(|e| Error::Internal(format!("reading an import stopped: {e}")))??;
        Ok(summary)
    }
}
