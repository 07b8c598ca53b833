//! `posthorn backup` and `posthorn restore`: the whole database as one
//! engine-neutral file, taken from a snapshot while everything runs, and
//! loaded back into an empty SQLite or PostgreSQL database.

mod destination;
mod format;
mod reader;
mod row;
mod writer;

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

pub use format::{FormatError, Header, FORMAT_VERSION};

use super::Context;
use crate::error::Error;
use crate::store::{newest_schema, BackupTable, Column, SnapshotPart};
use destination::Destination;
use reader::{BackupReader, Item};
use writer::BackupWriter;

/// Rows loaded in one statement, at most, and their bytes at most: enough to
/// spend the time in the engine, not in round trips.
const RESTORE_ROWS: usize = 10_000;
const RESTORE_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableRows {
    pub table: String,
    pub rows: u64,
}

/// What `backup` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    pub engine: &'static str,
    pub schema: i64,
    /// When the snapshot was taken: the backup holds the database as it was then.
    pub taken_at: DateTime<Utc>,
    pub rows: u64,
    pub tables: Vec<TableRows>,
}

/// What a backup file holds, checked whole.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verified {
    pub file: PathBuf,
    pub header: Header,
    pub rows: u64,
    pub tables: Vec<TableRows>,
}

/// What `restore` loaded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub file: PathBuf,
    pub from_engine: String,
    pub into_engine: &'static str,
    pub taken_at: DateTime<Utc>,
    pub rows: u64,
    pub tables: Vec<TableRows>,
    /// Deliveries the backup caught being sent, taken back to be sent again
    /// (as after a crash): whether their message left cannot be known.
    pub taken_back: u64,
}

#[derive(Clone)]
pub struct Backups {
    context: Arc<Context>,
}

impl Backups {
    pub(super) fn new(context: Arc<Context>) -> Self {
        Backups { context }
    }

    /// Writes a backup to `path`, or to standard output for `-`. A file is
    /// first written under a name of its own beside `path`, readable by its
    /// owner only (it holds every address, and the site's generated secret),
    /// then renamed into place once whole and on disk: an earlier backup at
    /// `path` stays until then. Only a regular file that is a backup is
    /// replaced. A database that holds nothing is refused: that is a wrong
    /// `database.url` far more often than a site.
    pub async fn backup(&self, path: &Path) -> Result<BackupReport, Error> {
        if self.context.store.holds_nothing().await? {
            return Err(Error::Invalid(format!(
                "the database ({}) holds no readers, posts or deliveries: is database.url the \
                 site's? Nothing was written",
                self.context.store.dialect().name()
            )));
        }
        let taken_at = Utc::now();
        let destination = Destination::open(path)?;
        // Nothing of ours exists if this fails: the file is made new.
        let out = destination.file()?;
        let (parts, mut received) = mpsc::channel::<SnapshotPart>(2);
        let at = destination.writing().to_path_buf();
        // Compressing runs on a thread of its own while the database reads on.
        let writer = tokio::task::spawn_blocking(move || {
            let io = |e| Error::io(&at, e);
            // The snapshot says first which schema it reads.
            let Some(SnapshotPart::Begin { engine, schema }) = received.blocking_recv() else {
                return Err(Error::Internal("the snapshot never began".into()));
            };
            let header = Header {
                posthorn_backup: FORMAT_VERSION,
                schema,
                engine: engine.name().to_string(),
                taken_at,
                posthorn: env!("CARGO_PKG_VERSION").to_string(),
            };
            let mut writer =
                BackupWriter::new(BufWriter::with_capacity(1 << 20, out), &header).map_err(io)?;
            while let Some(part) = received.blocking_recv() {
                match part {
                    SnapshotPart::Begin { .. } => {
                        return Err(Error::Internal("a snapshot began twice".into()))
                    }
                    SnapshotPart::Table(table) => writer.table(table).map_err(io)?,
                    SnapshotPart::Rows { text, rows } => writer.rows(&text, rows).map_err(io)?,
                }
            }
            let written = writer.finish().map_err(io)?;
            let mut out = written.out.into_inner().map_err(|e| io(e.into_error()))?;
            out.sync().map_err(io)?;
            Ok::<_, Error>((header, written.rows, written.tables, out.bytes))
        });
        let snapshot = self.context.store.snapshot(parts).await;
        let written = writer
            .await
            .map_err(|e| Error::Internal(format!("the backup's writer failed: {e}")));
        let (header, rows, tables, bytes) = match (snapshot, written) {
            (Ok(()), Ok(Ok(done))) => done,
            (Err(e), _) | (Ok(()), Err(e)) | (Ok(()), Ok(Err(e))) => {
                destination.discard();
                return Err(e);
            }
        };
        destination.finish()?;
        Ok(BackupReport {
            file: path.to_path_buf(),
            bytes,
            engine: self.context.store.dialect().name(),
            schema: header.schema,
            taken_at,
            rows,
            tables,
        })
    }

    /// Loads the backup at `path` into this site's database, which must be
    /// empty. All in one transaction, committed only once the whole file has
    /// been read and its checksum matched: a restore that fails at any point
    /// leaves the database empty. Check the file first with [`verify`], so
    /// that a damaged one is refused before the database is even opened.
    pub async fn restore(&self, path: &Path) -> Result<RestoreReport, Error> {
        let store = &self.context.store;
        let mut restoring = store.begin_restore().await?;
        let (parts, mut received) = mpsc::channel::<RowBatch>(2);
        let file = path.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || read(&file, Some(parts)));
        let mut loading = Ok(());
        while let Some(batch) = received.recv().await {
            loading = restoring
                .insert(batch.table, &batch.columns, &batch.rows)
                .await
                .map(drop);
            if loading.is_err() {
                // Dropping the receiver stops the reader at its next batch.
                break;
            }
        }
        drop(received);
        let read = reader
            .await
            .map_err(|e| Error::Internal(format!("the backup's reader failed: {e}")))?;
        loading?;
        let verified = read?;
        let taken_back = restoring.commit(Utc::now()).await?;
        // PostgreSQL's counts for /metrics, appended as the rows went in.
        store.fold_counts().await?;
        Ok(RestoreReport {
            file: path.to_path_buf(),
            from_engine: verified.header.engine,
            into_engine: store.dialect().name(),
            taken_at: verified.header.taken_at,
            rows: verified.rows,
            tables: verified.tables,
            taken_back,
        })
    }
}

/// Reads the backup at `path` whole and checks it (format, version, every
/// row's shape, the checksum), without a database.
pub fn verify(path: &Path) -> Result<Verified, Error> {
    read(path, None)
}

/// Reads a backup's plain text (gunzipped) whole and checks it; its row
/// count. What `verify` does past the compression, for the fuzzer.
pub fn check_text(input: impl std::io::BufRead) -> Result<u64, FormatError> {
    let mut reader = BackupReader::new(input, newest_schema())?;
    let mut rows = 0;
    loop {
        match reader.next_item()? {
            Item::Row(_) => rows += 1,
            Item::Table(..) => {}
            Item::End => return Ok(rows),
        }
    }
}

/// Rows of one table, as one JSON array of row arrays.
struct RowBatch {
    table: &'static BackupTable,
    columns: Vec<&'static Column>,
    rows: String,
    count: usize,
}

impl RowBatch {
    fn new(table: &'static BackupTable, columns: Vec<&'static Column>) -> Self {
        RowBatch {
            table,
            columns,
            rows: String::from("["),
            count: 0,
        }
    }

    fn is_full_for(&self, row: &[u8]) -> bool {
        self.count == RESTORE_ROWS || self.rows.len() + row.len() > RESTORE_BYTES
    }

    fn push(&mut self, row: &[u8]) {
        if self.count > 0 {
            self.rows.push(',');
        }
        // The reader has parsed the row as JSON, so it is UTF-8.
        self.rows.push_str(&String::from_utf8_lossy(row));
        self.count += 1;
    }
}

/// Reads and checks the file, sending its rows in batches to `parts` if given.
/// Returns what it holds only if the whole file checks out.
fn read(path: &Path, parts: Option<mpsc::Sender<RowBatch>>) -> Result<Verified, Error> {
    let refused = |e: FormatError| {
        Error::Invalid(format!(
            "{} cannot be restored: {}. Nothing was written",
            path.display(),
            crate::error::chain(&e)
        ))
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let gunzip = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
    let mut reader = BackupReader::new(BufReader::with_capacity(1 << 20, gunzip), newest_schema())
        .map_err(refused)?;
    let mut tables = Vec::new();
    let mut batch: Option<RowBatch> = None;
    let send = |batch: Option<RowBatch>| -> Result<(), Error> {
        if let (Some(parts), Some(mut batch)) = (&parts, batch) {
            batch.rows.push(']');
            parts
                .blocking_send(batch)
                .map_err(|_| Error::Internal("the restore stopped reading".into()))?;
        }
        Ok(())
    };
    loop {
        match reader.next_item().map_err(refused)? {
            Item::Table(table, columns) => {
                send(batch.take())?;
                tables.push(TableRows {
                    table: table.name.to_string(),
                    rows: 0,
                });
                if parts.is_some() {
                    batch = Some(RowBatch::new(table, columns));
                }
            }
            Item::Row(row) => {
                if let Some(last) = tables.last_mut() {
                    last.rows += 1;
                }
                let Some(open) = batch.as_mut() else { continue };
                if open.is_full_for(row) {
                    let next = RowBatch::new(open.table, open.columns.clone());
                    send(Some(std::mem::replace(open, next)))?;
                }
                open.push(row);
            }
            Item::End => break,
        }
    }
    send(batch.take())?;
    let rows = tables.iter().map(|t| t.rows).sum();
    Ok(Verified {
        file: path.to_path_buf(),
        header: reader.header.clone(),
        rows,
        tables,
    })
}
