//! A CSV of subscribers read in: [`read_csv`] parses it row by row, apart
//! from the database, and [`Subscriptions::import_csv`] adds the good rows in
//! batches.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;

use chrono::{DateTime, Utc};

use super::Subscriptions;
use crate::domain::{one_line, EmailAddress, Frequency, Preferences};
use crate::error::Error;
use crate::store::NewSubscriber;

/// Rows per transaction of an import: big enough that commits are rare, small
/// enough that memory stays flat.
const IMPORT_BATCH: usize = 10_000;

/// Several topics in one CSV cell.
pub(super) const TOPIC_SEPARATOR: &str = ";";

/// A row of an imported CSV that was not taken, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    /// As a spreadsheet numbers it: the header is row 1.
    pub row: usize,
    pub value: String,
    pub reason: String,
}

/// What importing a CSV did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportSummary {
    pub added: u64,
    pub already_present: u64,
    pub rejected: Vec<Rejected>,
}

/// The rows of an imported CSV, read one at a time: each is a subscriber to add
/// or a [`Rejected`] row. An address seen before is rejected as a duplicate.
pub struct CsvRows<'a, R: Read> {
    records: csv::StringRecordsIntoIter<R>,
    email: usize,
    name: Option<usize>,
    frequency: Option<usize>,
    topics: Option<usize>,
    /// The site's `posts.topics`: a row may choose only among them.
    offered: &'a [String],
    /// The header is row 1.
    row: usize,
    hasher: RandomState,
    /// Keys by a 64-bit hash: a million rows cost megabytes, not the addresses.
    seen: HashMap<u64, usize>,
}

/// Reads the header row of a CSV with an `email` column (and optionally `name`,
/// `frequency` and `topics`, in any order and case). A bad header is an error;
/// bad rows come out of the iterator as [`Rejected`].
pub fn read_csv<R: Read>(input: R, offered: &[String]) -> Result<CsvRows<'_, R>, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| Error::Invalid(format!("the header row: {e}")))?;
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let email = column("email")
        .ok_or_else(|| Error::Invalid("no `email` column in the header row".into()))?;
    Ok(CsvRows {
        email,
        name: column("name"),
        frequency: column("frequency"),
        topics: column("topics"),
        records: reader.into_records(),
        offered,
        row: 1,
        hasher: RandomState::new(),
        seen: HashMap::new(),
    })
}

impl<R: Read> Iterator for CsvRows<'_, R> {
    type Item = Result<NewSubscriber, Rejected>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        self.row += 1;
        Some(self.read(record))
    }
}

impl<R: Read> CsvRows<'_, R> {
    fn read(&mut self, record: csv::Result<csv::StringRecord>) -> Result<NewSubscriber, Rejected> {
        let row = self.row;
        let reject = |value: String, reason: String| Rejected { row, value, reason };
        let record = record.map_err(|e| reject(String::new(), e.to_string()))?;
        let raw = from_cell(record.get(self.email).unwrap_or("")).to_string();
        let email = match EmailAddress::parse(&raw) {
            Ok(e) => e,
            Err(reason) => return Err(reject(raw, format!("invalid address: {reason}"))),
        };
        let field = |col: Option<usize>| from_cell(col.and_then(|c| record.get(c)).unwrap_or(""));
        let preferences =
            match read_choices(field(self.frequency), field(self.topics), self.offered) {
                Ok(p) => p,
                Err(reason) => return Err(reject(raw, reason)),
            };
        let mut hasher = self.hasher.build_hasher();
        hasher.write(email.key().as_bytes());
        let hash = hasher.finish();
        if let Some(first) = self.seen.get(&hash) {
            return Err(reject(raw, format!("duplicate of row {first}")));
        }
        self.seen.insert(hash, row);
        Ok(NewSubscriber {
            email,
            name: one_line(field(self.name)),
            preferences,
        })
    }
}

/// An imported cell's value: a leading `'` (a spreadsheet's mark for text,
/// and [`super::export`]'s) comes off.
pub(super) fn from_cell(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// An import's `frequency` and `topics` cells: empty is the site's default.
fn read_choices(frequency: &str, topics: &str, offered: &[String]) -> Result<Preferences, String> {
    let frequency = match frequency.trim() {
        "" => None,
        f => Some(
            f.parse::<Frequency>()
                .map_err(|_| format!("frequency `{f}`: use `each` or `digest`"))?,
        ),
    };
    let topics: Vec<String> = topics
        .split(TOPIC_SEPARATOR)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(unknown) = topics.iter().find(|t| !offered.contains(t)) {
        return Err(format!(
            "topic `{unknown}` is not in posts.topics ({})",
            offered.join(", ")
        ));
    }
    Ok(Preferences {
        frequency,
        topics: (!topics.is_empty()).then_some(topics),
    })
}

/// What a batch written on its own task came to.
async fn written(
    task: tokio::task::JoinHandle<Result<(u64, u64), Error>>,
) -> Result<(u64, u64), Error> {
    task.await
        .map_err(|e| Error::Internal(format!("an import batch stopped: {e}")))?
}

impl ImportSummary {
    fn count(&mut self, (added, already_present): (u64, u64)) {
        self.added += added;
        self.already_present += already_present;
    }
}

impl Subscriptions {
    /// Imports a CSV (see [`read_csv`]) as active subscribers, in transactions
    /// of [`IMPORT_BATCH`] (10,000) good rows, the next read while one is written.
    /// Bad rows are reported, not fatal.
    pub async fn import_csv(
        &self,
        input: impl Read,
        now: DateTime<Utc>,
    ) -> Result<ImportSummary, Error> {
        let mut summary = ImportSummary::default();
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        // One batch is written while the next is read: the database's thread
        // and this one work side by side. Batches still commit in order, and
        // at most two are in memory.
        let mut writing: Option<tokio::task::JoinHandle<Result<(u64, u64), Error>>> = None;
        for row in read_csv(input, &self.context.config.posts.topics)? {
            match row {
                Ok(subscriber) => batch.push(subscriber),
                Err(rejected) => summary.rejected.push(rejected),
            }
            if batch.len() == IMPORT_BATCH {
                if let Some(previous) = writing.take() {
                    summary.count(written(previous).await?);
                }
                let full = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH));
                let this = self.clone();
                writing = Some(tokio::spawn(
                    async move { this.import_rows(&full, now).await },
                ));
            }
        }
        if let Some(previous) = writing.take() {
            summary.count(written(previous).await?);
        }
        summary.count(self.import_rows(&batch, now).await?);
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_rejected_and_numbered_as_a_spreadsheet_does() {
        let offered = ["notes".to_string()];
        let csv = "\u{feff}Name,EMAIL,topics\nA,a@example.com,notes\nB,nope,\nC,A@example.com,\nD,d@example.com,cats\n";
        let rows: Vec<_> = read_csv(csv.as_bytes(), &offered).unwrap().collect();
        assert_eq!(rows.len(), 4);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(
            (first.email.as_str(), first.name.as_str()),
            ("a@example.com", "A")
        );
        let rejected: Vec<(usize, &str)> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|r| (r.row, r.reason.as_str()))
            .collect();
        assert_eq!(rejected[0].0, 3);
        assert!(rejected[0].1.starts_with("invalid address"));
        assert_eq!(rejected[1], (4, "duplicate of row 2"));
        assert_eq!(rejected[2].0, 5);
        assert!(rejected[2].1.starts_with("topic `cats`"));
        assert!(read_csv("name\nx\n".as_bytes(), &offered).is_err());
    }
}
