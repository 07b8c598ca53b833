//! Writing a backup: lines in, gzip out, with the running checksum.

use std::io::Write;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::format::{ColumnLine, EndLine, Header, TableLine};
use super::TableRows;
use crate::store::BackupTable;

/// Writes a backup: lines in, gzip out, with the running checksum.
pub struct BackupWriter<W: Write> {
    out: flate2::write::GzEncoder<W>,
    hash: Sha256,
    table: Option<&'static BackupTable>,
    rows_in_table: u64,
    rows: u64,
    tables: Vec<TableRows>,
}

/// A whole backup, written.
pub struct Written<W> {
    pub out: W,
    pub rows: u64,
    pub tables: Vec<TableRows>,
}

impl<W: Write> BackupWriter<W> {
    pub fn new(out: W, header: &Header) -> std::io::Result<Self> {
        let mut writer = BackupWriter {
            // Level 1: the file is mostly addresses and times, which the
            // fastest level already packs about tenfold; higher levels cost
            // several times the CPU for a few percent.
            out: flate2::write::GzEncoder::new(out, flate2::Compression::fast()),
            hash: Sha256::new(),
            table: None,
            rows_in_table: 0,
            rows: 0,
            tables: Vec::new(),
        };
        writer.control(header)?;
        Ok(writer)
    }

    fn line(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.hash.update(b"\n");
        self.out.write_all(bytes)?;
        self.out.write_all(b"\n")
    }

    fn control<T: Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        self.line(&bytes)
    }

    pub fn table(&mut self, table: &'static BackupTable) -> std::io::Result<()> {
        self.end_table()?;
        self.table = Some(table);
        self.control(&TableLine {
            table: table.name.to_string(),
            columns: table
                .columns
                .iter()
                .map(|c| ColumnLine {
                    name: c.name.to_string(),
                    kind: c.kind,
                })
                .collect(),
        })
    }

    /// `n` rows of the current table, joined by newlines.
    pub fn rows(&mut self, text: &str, n: u64) -> std::io::Result<()> {
        self.rows_in_table += n;
        self.line(text.as_bytes())
    }

    fn end_table(&mut self) -> std::io::Result<()> {
        if let Some(table) = self.table.take() {
            let rows = std::mem::take(&mut self.rows_in_table);
            self.rows += rows;
            self.tables.push(TableRows {
                table: table.name.to_string(),
                rows,
            });
            self.control(&EndLine {
                end: table.name.to_string(),
                rows,
                tables: None,
                sha256: None,
            })?;
        }
        Ok(())
    }

    /// Ends the last table, writes the checksum line and ends the gzip stream.
    pub fn finish(mut self) -> std::io::Result<Written<W>> {
        self.end_table()?;
        let sha256 = crate::domain::hex(&self.hash.clone().finalize());
        let end = EndLine {
            end: "backup".into(),
            rows: self.rows,
            tables: Some(self.tables.len() as u64),
            sha256: Some(sha256),
        };
        let bytes = serde_json::to_vec(&end).map_err(std::io::Error::other)?;
        self.out.write_all(&bytes)?;
        self.out.write_all(b"\n")?;
        Ok(Written {
            out: self.out.finish()?,
            rows: self.rows,
            tables: self.tables,
        })
    }
}
