//! The reading side of an import, on a thread of its own: a CSV file, or each
//! CSV file in a ZIP, read row by row into chunks for the writer, with every
//! bound that keeps a hostile file from filling memory.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, SeekFrom};

use tokio::sync::mpsc;

use super::cells::shown;
use super::formats::{Fields, Shape};
use super::services::ExportFormat;
use super::standing::mailchimp_rank;
use super::{ImportInput, Rejected, IMPORT_BATCH};
use crate::domain::{one_line, EmailAddress, Frequency, Preferences, SubscriberStatus};
use crate::error::Error;
use crate::store::NewSubscriber;
use crate::tokens::Tokens;

/// Rejected rows kept for the report; past these only the count grows, so a
/// file of millions of bad rows cannot fill memory.
const REJECTED_KEPT: usize = 1_000;

/// The longest line read (a row is one line or a few): a 1 MB cell is read,
/// a 500 MB one is not an export.
const MAX_LINE: usize = 4 * 1024 * 1024;

/// How much bigger than its compressed size a file in a ZIP may be: CSV
/// compresses tens of times, a ZIP bomb thousands.
const MAX_ZIP_RATIO: u64 = 200;

/// The longest name kept, in characters.
const MAX_NAME: usize = 200;

/// What the reading thread hands the writer: good rows and rejected ones.
#[derive(Default)]
pub(super) struct Chunk {
    pub(super) rows: Vec<NewSubscriber>,
    pub(super) rejected: Vec<Rejected>,
    /// Rejected rows past [`REJECTED_KEPT`], counted only.
    pub(super) unlisted: u64,
}

/// What the reading thread needs, apart from the file.
pub(super) struct Reading {
    from: Option<ExportFormat>,
    /// The site's `posts.topics`: tags that match become a reader's topics.
    offered: Vec<String>,
    /// Set when some address was ever forgotten: each row's is hashed.
    forgotten: Option<Tokens>,
    hasher: RandomState,
    /// The addresses of the rows not yet handed on, by a 64-bit hash. Only a
    /// batch's: a repeat further apart finds the first in the database, as
    /// an address already there, so memory stays flat however long the file.
    seen: HashMap<u64, Seen>,
    files: Vec<String>,
    /// Rejected rows listed so far.
    listed: usize,
    out: mpsc::Sender<Chunk>,
    chunk: Chunk,
}

/// The first row of an address, for its repeats.
struct Seen {
    file: u32,
    row: u32,
    /// It said the reader left (or a later row did).
    left: bool,
}

/// A row read.
enum Row {
    New(NewSubscriber),
    /// A repeat of an address (by its hash) that says the reader left, after
    /// a row that said they are subscribed.
    LeavesAfter(NewSubscriber, u64),
}

/// The writer has stopped (it failed, and says why): reading stops too.
struct Stopped;

impl Reading {
    pub(super) fn new(
        from: Option<ExportFormat>,
        offered: Vec<String>,
        forgotten: Option<Tokens>,
        out: mpsc::Sender<Chunk>,
    ) -> Reading {
        Reading {
            from,
            offered,
            forgotten,
            hasher: RandomState::new(),
            seen: HashMap::new(),
            files: Vec::new(),
            listed: 0,
            out,
            chunk: Chunk::default(),
        }
    }

    /// Reads a CSV file, or each CSV file in a ZIP, into chunks. Every header
    /// is read before any row is handed on, so a file of the wrong shape
    /// changes nothing.
    pub(super) fn read(
        mut self,
        mut input: impl ImportInput,
        name: &str,
    ) -> Result<Option<ExportFormat>, Error> {
        let mut magic = [0u8; 4];
        let zipped = input.read_exact(&mut magic).is_ok() && magic == *b"PK\x03\x04";
        input
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(name, e))?;
        if !zipped {
            let mut reader = csv_reader(input);
            let shape = header(&mut reader, self.from, name, name)?;
            let format = shape.format;
            self.files.push(name.to_string());
            // Stopped or not, the writer says how the import went.
            let _ = self.rows(reader, &shape, name)?;
            return Ok(Some(format));
        }
        let invalid = |why: String| Error::Invalid(format!("{name}: {why}"));
        let mut archive = zip::ZipArchive::new(input)
            .map_err(|e| invalid(format!("not a whole ZIP file ({e}); was it cut short?")))?;
        let mut entries: Vec<(usize, String)> = (0..archive.len())
            .filter_map(|i| {
                let entry = archive.by_index_raw(i).ok()?;
                let path = entry.name().to_string();
                let csv = path.to_ascii_lowercase().ends_with(".csv")
                    && !entry.is_dir()
                    && !path.starts_with("__MACOSX/");
                csv.then_some((i, path))
            })
            .collect();
        if entries.is_empty() {
            return Err(invalid("the ZIP holds no CSV file".into()));
        }
        entries.sort_by_key(|(_, path)| (mailchimp_rank(path), path.clone()));
        let mut shapes = Vec::with_capacity(entries.len());
        for (i, path) in &entries {
            let entry = archive
                .by_index(*i)
                .map_err(|e| invalid(format!("{path}: {e}")))?;
            if entry.size() > MAX_ZIP_RATIO * entry.compressed_size() + (1 << 20) {
                return Err(invalid(format!(
                    "{}: {} bytes from {} compressed is no export (a ZIP bomb?)",
                    shown(path),
                    entry.size(),
                    entry.compressed_size()
                )));
            }
            shapes.push(header(&mut csv_reader(entry), self.from, name, path)?);
        }
        let format = shapes.first().map(|s| s.format);
        for ((i, path), shape) in entries.iter().zip(&shapes) {
            let entry = archive
                .by_index(*i)
                .map_err(|e| invalid(format!("{path}: {e}")))?;
            let mut reader = csv_reader(entry);
            // Read past the header again: its shape is known.
            reader
                .headers()
                .map_err(|e| invalid(format!("{path}: {e}")))?;
            self.files.push(shown(path));
            if self
                .rows(reader, shape, &format!("{name}: {path}"))?
                .is_err()
            {
                break;
            }
        }
        Ok(format)
    }

    /// Reads one CSV's rows and hands them on in chunks. `Ok(Err(Stopped))`
    /// when the writer has stopped.
    fn rows<R: Read>(
        &mut self,
        reader: csv::Reader<R>,
        shape: &Shape,
        label: &str,
    ) -> Result<Result<(), Stopped>, Error> {
        let file = self.files.len() - 1;
        for (i, record) in reader.into_records().enumerate() {
            // The header is row 1.
            let row = i + 2;
            match record {
                Ok(record) => match self.row(&record, shape, file, row) {
                    Ok(Row::New(subscriber)) => self.chunk.rows.push(subscriber),
                    // The earlier row is written first, so that this one
                    // finds it and applies the leaving.
                    Ok(Row::LeavesAfter(subscriber, hash)) => {
                        if self.hand_on().is_err() {
                            return Ok(Err(Stopped));
                        }
                        let seen = Seen {
                            file: file as u32,
                            row: row as u32,
                            left: true,
                        };
                        self.seen.insert(hash, seen);
                        self.chunk.rows.push(subscriber);
                    }
                    Err(rejected) => self.reject(rejected),
                },
                Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                    return Err(Error::Invalid(format!(
                        "{label}: reading stopped at row {row}: {e}; the rows before it were \
                         imported, and importing the file again adds only the rest"
                    )));
                }
                Err(e) => {
                    let rejected = self.rejected(file, row, String::new(), e.to_string());
                    self.reject(rejected);
                }
            }
            if self.chunk.rows.len() == IMPORT_BATCH && self.hand_on().is_err() {
                return Ok(Err(Stopped));
            }
        }
        Ok(self.hand_on())
    }

    fn reject(&mut self, rejected: Rejected) {
        if self.listed < REJECTED_KEPT {
            self.listed += 1;
            self.chunk.rejected.push(rejected);
        } else {
            self.chunk.unlisted += 1;
        }
    }

    fn hand_on(&mut self) -> Result<(), Stopped> {
        let chunk = std::mem::take(&mut self.chunk);
        self.seen.clear();
        self.out.blocking_send(chunk).map_err(|_| Stopped)
    }

    fn rejected(&self, file: usize, row: usize, value: String, reason: String) -> Rejected {
        Rejected {
            file: (self.files.len() > 1 || file > 0).then(|| self.files[file].clone()),
            row,
            value: shown(&value),
            reason,
        }
    }

    /// One row: a subscriber, or why not.
    fn row(
        &mut self,
        record: &csv::StringRecord,
        shape: &Shape,
        file: usize,
        row: usize,
    ) -> Result<Row, Rejected> {
        let fields = match shape.read(record) {
            Ok(f) => f,
            Err(reason) => {
                let value = record.get(0).unwrap_or("").to_string();
                return Err(self.rejected(file, row, value, reason));
            }
        };
        let email = EmailAddress::parse(fields.email).map_err(|reason| {
            self.rejected(
                file,
                row,
                fields.email.into(),
                format!("invalid address: {reason}"),
            )
        })?;
        let preferences = self
            .choices(&fields, shape.format)
            .map_err(|reason| self.rejected(file, row, fields.email.into(), reason))?;
        let key = email.key();
        let mut hasher = self.hasher.build_hasher();
        hasher.write(key.as_bytes());
        let leaves = matches!(
            fields.status,
            SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced
        );
        let mut later = false;
        if let Some(first) = self.seen.get_mut(&hasher.finish()) {
            // A later row saying the reader left outweighs an earlier one
            // that says they are subscribed; any other repeat is rejected.
            if leaves && !first.left {
                first.left = true;
                later = true;
            } else {
                let (first_file, first_row) = (first.file as usize, first.row);
                let of = if first_file == file {
                    format!("duplicate of row {first_row}")
                } else {
                    format!("duplicate of {} row {first_row}", self.files[first_file])
                };
                return Err(self.rejected(file, row, fields.email.into(), of));
            }
        } else {
            // Past 4 billion rows a number would wrap, and only a duplicate's
            // message would name the wrong row.
            let first = Seen {
                file: file as u32,
                row: row as u32,
                left: leaves,
            };
            self.seen.insert(hasher.finish(), first);
        }
        let subscriber = NewSubscriber {
            forgotten: self.forgotten.as_ref().map(|t| t.forgotten_address(&key)),
            email,
            name: one_line(&fields.name).chars().take(MAX_NAME).collect(),
            preferences,
            status: fields.status,
            reason: fields.reason,
            created_at: fields.created_at,
            confirmed_at: fields.confirmed_at,
            left_at: fields.left_at,
        };
        Ok(if later {
            Row::LeavesAfter(subscriber, hasher.finish())
        } else {
            Row::New(subscriber)
        })
    }

    /// A row's frequency and topics. posthorn's own `topics` must be among the
    /// site's; another service's tags become topics where they match one.
    fn choices(&self, fields: &Fields, format: ExportFormat) -> Result<Preferences, String> {
        let frequency = match fields.frequency {
            "" => None,
            f => Some(
                f.parse::<Frequency>()
                    .map_err(|_| format!("frequency `{}`: use `each` or `digest`", shown(f)))?,
            ),
        };
        let mut topics = Vec::new();
        for tag in &fields.tags {
            match self.offered.iter().find(|t| t.eq_ignore_ascii_case(tag)) {
                Some(topic) if !topics.contains(topic) => topics.push(topic.clone()),
                Some(_) => {}
                None if format == ExportFormat::Posthorn => {
                    return Err(format!(
                        "topic `{}` is not in posts.topics ({})",
                        shown(tag),
                        self.offered.join(", ")
                    ))
                }
                None => {}
            }
        }
        Ok(Preferences {
            frequency,
            topics: (!topics.is_empty()).then_some(topics),
        })
    }
}

fn csv_reader<R: Read>(input: R) -> csv::Reader<LineLimit<R>> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(LineLimit {
            inner: input,
            since_newline: 0,
        })
}

/// A reader that fails on a line longer than [`MAX_LINE`]: the CSV reader
/// holds a whole row in memory, and one row has no business being larger.
struct LineLimit<R> {
    inner: R,
    since_newline: usize,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.since_newline = match memchr::memrchr(b'\n', &buf[..n]) {
            Some(last) => n - last - 1,
            None => self.since_newline + n,
        };
        if self.since_newline > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a line longer than 4 MiB: not a subscriber export",
            ));
        }
        Ok(n)
    }
}

/// Reads a header row into a [`Shape`]; its error names the file.
fn header<R: Read>(
    reader: &mut csv::Reader<R>,
    from: Option<ExportFormat>,
    name: &str,
    path: &str,
) -> Result<Shape, Error> {
    let label = if name == path {
        name.to_string()
    } else {
        format!("{name}: {path}")
    };
    let header = reader
        .headers()
        .map_err(|e| Error::Invalid(format!("{label}: the header row: {e}")))?;
    Shape::new(header, from, path).map_err(|why| Error::Invalid(format!("{label}: {why}")))
}
