//! The backup file: gzip-compressed JSON lines, documented in
//! docs/operations.md ("Backup and restore").
//!
//! ```text
//! {"posthorn_backup":1,"schema":14,"engine":"sqlite","taken_at":"…","posthorn":"0.1.0"}
//! {"table":"subscribers","columns":[{"name":"id","kind":"integer"},…]}
//! [1,"reader@example.com",…]
//! {"end":"subscribers","rows":1}
//! …
//! {"end":"backup","tables":17,"rows":…,"sha256":"…"}
//! ```
//!
//! The last line's SHA-256 covers every byte before it: a file cut short or
//! changed by a single byte is refused before anything is written.

use serde::{Deserialize, Serialize};

use crate::store::ColumnKind;

/// The version of the format this posthorn writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// No line is longer (a post's whole HTML is one cell, and posthorn reads no
/// post file past 10 MB): a file that says otherwise is not a backup, and is
/// not read into memory to find out.
pub const MAX_LINE: usize = 32 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub posthorn_backup: u32,
    /// The newest migration of the database it was taken from.
    pub schema: i64,
    pub engine: String,
    pub taken_at: chrono::DateTime<chrono::Utc>,
    pub posthorn: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ColumnLine {
    pub(super) name: String,
    pub(super) kind: ColumnKind,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TableLine {
    pub(super) table: String,
    pub(super) columns: Vec<ColumnLine>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct EndLine {
    pub(super) end: String,
    pub(super) rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tables: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sha256: Option<String>,
}

/// Why a file is not a backup this posthorn can restore.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(
        "it is not a posthorn backup (it does not begin with a backup's header, gzip-compressed)"
    )]
    NotABackup,
    #[error(
        "it was written by a newer posthorn (backup format {found}); this posthorn reads format {FORMAT_VERSION} and older. Upgrade posthorn, then restore"
    )]
    NewerFormat { found: u32 },
    #[error(
        "it was taken from a newer posthorn's database (schema {found}; this posthorn knows up to {known}). Upgrade posthorn, then restore"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("it is cut short: {0}")]
    Truncated(String),
    #[error("line {line}: {why}")]
    Line { line: u64, why: String },
    #[error("its compressed stream is damaged")]
    Damaged(#[source] std::io::Error),
    #[error("its checksum does not match its contents: the file was changed or damaged")]
    Checksum,
    #[error("it cannot be read: {0}")]
    Io(#[source] std::io::Error),
}
