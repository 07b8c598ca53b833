//! The list written out as CSV: the one export, for the dashboard and the
//! command line.

use std::borrow::Cow;

use super::import::TOPIC_SEPARATOR;
use super::Subscriptions;
use crate::error::Error;

/// A value as a CSV cell a spreadsheet will show as text: one that starts like
/// a formula (`=`, `+`, `-`, `@`, a tab or a carriage return; the form's
/// `=HYPERLINK(…)`) gets a `'` in front. So does one that starts with `'`
/// already, so that the import takes exactly one off again: an export
/// imported gives back the same addresses and names.
fn to_cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

impl Subscriptions {
    /// Writes every subscriber as CSV (`email,name,status,created_at,frequency,topics`;
    /// an empty frequency follows the site, empty topics are every post, several
    /// topics are separated by `;`), 1,000 at a time. No cell reads as a
    /// formula ([`to_cell`]).
    pub async fn export_csv(&self, output: impl std::io::Write) -> Result<(), Error> {
        let mut writer = csv::Writer::from_writer(output);
        // Writing string cells fails only when the output does.
        let csv_err = |e: csv::Error| Error::io("CSV output", e.into());
        writer
            .write_record([
                "email",
                "name",
                "status",
                "created_at",
                "frequency",
                "topics",
            ])
            .map_err(csv_err)?;
        let mut after = 0;
        loop {
            let page = self
                .context
                .store
                .subscribers_page(None, after, 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for s in &page {
                let row = [
                    s.email.as_str(),
                    &s.name,
                    s.status.as_str(),
                    &s.created_at.to_rfc3339(),
                    s.preferences.frequency.map(|f| f.as_str()).unwrap_or(""),
                    &s.preferences
                        .topics
                        .as_deref()
                        .unwrap_or_default()
                        .join(TOPIC_SEPARATOR),
                ];
                writer
                    .write_record(row.map(to_cell).iter().map(|c| c.as_bytes()))
                    .map_err(csv_err)?;
            }
        }
        writer.flush().map_err(|e| Error::io("CSV output", e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::import::from_cell;
    use super::*;

    #[test]
    fn cells_that_start_like_formulas_are_text_and_come_back_unchanged() {
        for value in [
            "=HYPERLINK(\"https://evil.example\",\"click\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'=already",
            "'",
        ] {
            let cell = to_cell(value);
            assert!(cell.starts_with('\''), "{value:?} -> {cell:?}");
            assert_eq!(from_cell(&cell), value);
        }
        for value in ["reader@example.com", "김독자", "", "a=b", "1-2"] {
            assert_eq!(to_cell(value), value);
            assert_eq!(from_cell(value), value);
        }
    }
}
