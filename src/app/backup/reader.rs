//! Reading a backup back: every line checked as it comes, in linear time
//! and bounded memory, the checksum last.

use std::io::BufRead;

use serde::de::DeserializeSeed;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::format::{EndLine, FormatError, Header, TableLine, FORMAT_VERSION, MAX_LINE};
use super::row::RowSeed;
use crate::store::{BackupTable, Column, ColumnKind, BACKUP_TABLES};

/// What a reader finds, in file order.
#[derive(Debug)]
pub enum Item<'a> {
    /// A table starts; its rows' cells are these columns, in this order.
    Table(&'static BackupTable, Vec<&'static Column>),
    /// A row of that table: a JSON array, checked against the columns.
    Row(&'a [u8]),
    /// The checksum matched and the file ended there.
    End,
}

/// The table whose rows are being read.
struct OpenTable {
    table: &'static BackupTable,
    kinds: Vec<ColumnKind>,
    rows: u64,
}

/// Reads and checks a backup, line by line, in linear time and bounded memory.
pub struct BackupReader<R: BufRead> {
    input: R,
    hash: Sha256,
    buf: Vec<u8>,
    line: u64,
    table: Option<OpenTable>,
    /// The place in [`BACKUP_TABLES`] of the last table read: each comes
    /// once, in that order (after the tables it refers to).
    last_table: Option<usize>,
    saw_meta: bool,
    rows: u64,
    tables: u64,
    pub header: Header,
}

impl<R: BufRead> BackupReader<R> {
    /// Reads the header: refuses anything that is not a backup, or is newer
    /// than this posthorn (`schema`, its newest migration).
    pub fn new(input: R, schema: i64) -> Result<Self, FormatError> {
        let mut reader = BackupReader {
            input,
            hash: Sha256::new(),
            buf: Vec::new(),
            line: 0,
            table: None,
            last_table: None,
            saw_meta: false,
            rows: 0,
            tables: 0,
            header: Header {
                posthorn_backup: 0,
                schema: 0,
                engine: String::new(),
                taken_at: chrono::DateTime::default(),
                posthorn: String::new(),
            },
        };
        if !reader.next_line()? {
            return Err(FormatError::NotABackup);
        }
        // The version is read alone first: a newer header may have other fields.
        #[derive(Deserialize)]
        struct Version {
            posthorn_backup: u32,
        }
        let version: Version =
            serde_json::from_slice(&reader.buf).map_err(|_| FormatError::NotABackup)?;
        if version.posthorn_backup > FORMAT_VERSION {
            return Err(FormatError::NewerFormat {
                found: version.posthorn_backup,
            });
        }
        reader.header = serde_json::from_slice(&reader.buf).map_err(|_| FormatError::NotABackup)?;
        if !["sqlite", "postgres"].contains(&reader.header.engine.as_str()) {
            return Err(FormatError::NotABackup);
        }
        if reader.header.schema > schema {
            return Err(FormatError::NewerSchema {
                found: reader.header.schema,
                known: schema,
            });
        }
        reader.hash_line();
        Ok(reader)
    }

    /// Reads the next line into `buf`, without its newline. False at the end.
    fn next_line(&mut self) -> Result<bool, FormatError> {
        self.buf.clear();
        self.line += 1;
        // `take` bounds the read: a line without end is not read whole.
        let read = std::io::Read::take(&mut self.input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| match e.kind() {
                // Not even a gzip header: some other file.
                _ if self.line == 1 && e.kind() != std::io::ErrorKind::Other => {
                    FormatError::NotABackup
                }
                std::io::ErrorKind::UnexpectedEof => {
                    FormatError::Truncated(format!("the compressed stream breaks off ({e})"))
                }
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                    FormatError::Damaged(e)
                }
                _ => FormatError::Io(e),
            })?;
        if read == 0 {
            return Ok(false);
        }
        if self.buf.last() != Some(&b'\n') {
            if self.buf.len() > MAX_LINE {
                return Err(self.error(format!("longer than {} MiB", MAX_LINE >> 20)));
            }
            return Err(FormatError::Truncated(format!(
                "line {} ends without a newline",
                self.line
            )));
        }
        self.buf.pop();
        Ok(true)
    }

    fn hash_line(&mut self) {
        self.hash.update(&self.buf);
        self.hash.update(b"\n");
    }

    fn error(&self, why: impl Into<String>) -> FormatError {
        FormatError::Line {
            line: self.line,
            why: why.into(),
        }
    }

    /// The next item. After [`Item::End`], the file has been read whole.
    pub fn next_item(&mut self) -> Result<Item<'_>, FormatError> {
        if !self.next_line()? {
            return Err(FormatError::Truncated(format!(
                "it ends at line {} without its checksum line{}",
                self.line - 1,
                self.table
                    .as_ref()
                    .map(|t| format!(", inside table {}", t.table.name))
                    .unwrap_or_default()
            )));
        }
        match self.buf.first() {
            Some(b'[') => {
                let Some(open) = &self.table else {
                    return Err(self.error("a row outside any table"));
                };
                let mut de = serde_json::Deserializer::from_slice(&self.buf);
                RowSeed(&open.kinds)
                    .deserialize(&mut de)
                    .and_then(|()| de.end())
                    .map_err(|e| self.error(format!("not a row of this table: {e}")))?;
                if let Some(open) = self.table.as_mut() {
                    open.rows += 1;
                }
                self.hash_line();
                Ok(Item::Row(&self.buf))
            }
            Some(b'{') => self.control(),
            _ => Err(self.error("neither a row nor a control line")),
        }
    }

    fn control(&mut self) -> Result<Item<'_>, FormatError> {
        if let Ok(end) = serde_json::from_slice::<EndLine>(&self.buf) {
            if end.end == "backup" {
                return self.finish(end);
            }
            let Some(OpenTable { table, rows, .. }) = self.table.take() else {
                return Err(self.error("the end of a table that did not start"));
            };
            if end.end != table.name || end.rows != rows {
                return Err(self.error(format!(
                    "table {} ends with {rows} rows, but the file says {} ends with {}",
                    table.name, end.end, end.rows
                )));
            }
            self.rows += rows;
            self.tables += 1;
            self.hash_line();
            return self.next_item();
        }
        let line: TableLine = serde_json::from_slice(&self.buf)
            .map_err(|e| self.error(format!("not a control line: {e}")))?;
        if let Some(open) = &self.table {
            return Err(self.error(format!(
                "table {} starts before table {} ended",
                line.table, open.table.name
            )));
        }
        let Some(place) = BACKUP_TABLES.iter().position(|t| t.name == line.table) else {
            return Err(self.error(format!(
                "table `{}` is unknown to this posthorn",
                line.table.escape_debug()
            )));
        };
        if self.last_table.is_some_and(|last| place <= last) {
            return Err(self.error(format!(
                "table {} comes twice, or out of its order",
                line.table
            )));
        }
        self.last_table = Some(place);
        let table = &BACKUP_TABLES[place];
        self.saw_meta |= table.name == "meta";
        if line.columns.is_empty() {
            return Err(self.error(format!("table {} has no columns", table.name)));
        }
        let mut columns = Vec::with_capacity(line.columns.len());
        for c in &line.columns {
            match table.column(&c.name) {
                Some(column)
                    if column.kind == c.kind
                        && !columns.iter().any(|k: &&Column| k.name == column.name) =>
                {
                    columns.push(column)
                }
                _ => {
                    return Err(self.error(format!(
                        "column {}.{} ({:?}) is unknown to this posthorn, or comes twice",
                        table.name,
                        c.name.escape_debug(),
                        c.kind
                    )))
                }
            }
        }
        self.table = Some(OpenTable {
            table,
            kinds: columns.iter().map(|c| c.kind).collect(),
            rows: 0,
        });
        self.hash_line();
        Ok(Item::Table(table, columns))
    }

    fn finish(&mut self, end: EndLine) -> Result<Item<'_>, FormatError> {
        if let Some(open) = &self.table {
            return Err(self.error(format!("the backup ends inside table {}", open.table.name)));
        }
        let sha256 = crate::domain::hex(&self.hash.clone().finalize());
        if end.sha256.as_deref() != Some(sha256.as_str()) {
            return Err(FormatError::Checksum);
        }
        if end.rows != self.rows || end.tables != Some(self.tables) {
            return Err(self.error("the row and table counts do not match the file"));
        }
        // `meta` is in every backup: the site's creation time, its instance
        // id, the secret its links are signed with. Without it, a restored
        // site would make new ones, and every link already sent would die.
        if !self.saw_meta {
            return Err(self.error("the backup holds no `meta` table"));
        }
        if self.next_line()? {
            return Err(self.error("more follows the checksum line"));
        }
        Ok(Item::End)
    }
}

#[cfg(test)]
mod tests {
    use super::super::writer::BackupWriter;
    use super::*;
    use crate::store::backup_table;
    use std::io::Write;

    fn header() -> Header {
        Header {
            posthorn_backup: FORMAT_VERSION,
            schema: 14,
            engine: "sqlite".into(),
            taken_at: chrono::DateTime::default(),
            posthorn: "test".into(),
        }
    }

    fn with_meta(w: &mut BackupWriter<Vec<u8>>) {
        w.table(backup_table("meta").expect("table"))
            .expect("table");
        w.rows(r#"["created_at","1"]"#, 1).expect("row");
    }

    fn written(rows: &[&str]) -> Vec<u8> {
        let mut w = BackupWriter::new(Vec::new(), &header()).expect("header");
        with_meta(&mut w);
        w.table(backup_table("subscriber_growth").expect("table"))
            .expect("table");
        for row in rows {
            w.rows(row, 1).expect("row");
        }
        w.finish().expect("finish").out
    }

    fn read_all(file: &[u8]) -> Result<u64, FormatError> {
        super::super::check_text(std::io::BufReader::new(flate2::read::GzDecoder::new(file)))
    }

    #[test]
    fn a_written_backup_reads_back() {
        let file = written(&[r#"[1,"new",3]"#, r#"[2,"bounced",null]"#]);
        assert_eq!(
            read_all(&file).expect("reads"),
            3,
            "a meta row and two of growth"
        );
    }

    #[test]
    fn a_file_cut_anywhere_is_refused() {
        let file = written(&[r#"[1,"new",3]"#, r#"[2,"bounced",4]"#]);
        for cut in [10, file.len() / 2, file.len() - 9, file.len() - 1] {
            let err = read_all(&file[..cut]).expect_err("cut short");
            assert!(
                matches!(
                    err,
                    FormatError::Truncated(_) | FormatError::NotABackup | FormatError::Damaged(_)
                ),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn rows_of_the_wrong_shape_are_refused() {
        for bad in [
            r#"[1,"new"]"#,
            r#"[1,"new",3,4]"#,
            r#"["1","new",3]"#,
            r#"[1,2,3]"#,
            "[1,\"new\",1.5]",
        ] {
            let err = read_all(&written(&[bad])).expect_err(bad);
            assert!(
                matches!(err, FormatError::Line { line: 6, .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn tables_come_once_in_order_and_meta_is_there() {
        let plain = |tables: &[&str]| {
            let mut w = BackupWriter::new(Vec::new(), &header()).expect("header");
            for t in tables {
                w.table(backup_table(t).expect("table")).expect("table");
            }
            w.finish().expect("finish").out
        };
        assert!(read_all(&plain(&["meta", "subscribers", "deliveries"])).is_ok());
        for tables in [
            &["meta", "deliveries", "subscribers"][..],
            &["meta", "subscribers", "subscribers"],
            &["subscribers"],
        ] {
            let err = read_all(&plain(tables)).expect_err("refused");
            assert!(matches!(err, FormatError::Line { .. }), "{tables:?}: {err}");
        }
        let mut other = header();
        other.engine = "\u{1b}[31mmysql".into();
        let file = BackupWriter::new(Vec::new(), &other)
            .and_then(|w| w.finish())
            .expect("write")
            .out;
        assert!(matches!(read_all(&file), Err(FormatError::NotABackup)));
    }

    #[test]
    fn a_newer_format_or_schema_is_named() {
        let mut newer = header();
        newer.posthorn_backup = FORMAT_VERSION + 1;
        let file = BackupWriter::new(Vec::new(), &newer)
            .and_then(|w| w.finish())
            .expect("write")
            .out;
        assert!(matches!(
            read_all(&file),
            Err(FormatError::NewerFormat { found: 2 })
        ));
        let file = written(&[]);
        let gz = std::io::BufReader::new(flate2::read::GzDecoder::new(&file[..]));
        assert!(matches!(
            BackupReader::new(gz, 13),
            Err(FormatError::NewerSchema {
                found: 14,
                known: 13
            })
        ));
    }

    #[test]
    fn a_changed_byte_fails_the_checksum() {
        let plain = {
            let mut w = BackupWriter::new(Vec::new(), &header()).expect("header");
            with_meta(&mut w);
            w.table(backup_table("subscriber_growth").expect("table"))
                .expect("table");
            w.rows(r#"[1,"new",3]"#, 1).expect("row");
            let gz = w.finish().expect("finish").out;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
                .expect("gunzip");
            text
        };
        let changed = plain.replace(r#"[1,"new",3]"#, r#"[1,"new",4]"#);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(changed.as_bytes()).expect("gzip");
        let file = gz.finish().expect("gzip");
        assert!(matches!(read_all(&file), Err(FormatError::Checksum)));
    }
}
