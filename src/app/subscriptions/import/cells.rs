//! Cells as exports write them: times in several forms, tags in several
//! lists, text marks; and values as a report shows them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::services::ExportFormat;

/// An imported cell's value: a leading `'` (a spreadsheet's mark for text,
/// and [`super::super::export`]'s) comes off.
pub(in crate::app::subscriptions) fn from_cell(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// At most 100 characters of a value, for a report.
/// Control characters become `�`, so that a value cannot move a terminal's
/// cursor or colour what follows.
pub(super) fn shown(value: &str) -> String {
    let cut = match value.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    };
    cut.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

pub(super) fn shown_columns(names: &[String]) -> String {
    let listed: Vec<String> = names
        .iter()
        .take(30)
        .map(|n| format!("`{}`", shown(n)))
        .collect();
    if listed.is_empty() {
        "none".into()
    } else {
        listed.join(", ")
    }
}

pub(super) fn truthy(cell: &str) -> bool {
    matches!(
        cell.to_ascii_lowercase().as_str(),
        "true" | "t" | "yes" | "1"
    )
}

/// A cell of tags: posthorn's `a;b`, Mailchimp's `"a","b"`, Ghost's and Kit's
/// `a, b`, Buttondown's `['a', 'b']`.
pub(super) fn split_tags(cell: &str, format: ExportFormat) -> Vec<&str> {
    let separators: &[char] = if format == ExportFormat::Posthorn {
        &[';']
    } else {
        &[',', ';']
    };
    cell.trim_start_matches('[')
        .trim_end_matches(']')
        .split(separators)
        .map(|t| t.trim().trim_matches(['"', '\'']).trim())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The times exports write: RFC 3339, PostgreSQL's `2021-06-14
/// 08:29:52.139468+00`, or a bare date and time (read as UTC, as Mailchimp
/// writes them, or with Ruby's ` UTC`), or a date.
pub(super) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.strip_suffix(" UTC").unwrap_or(text);
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_write_their_times_several_ways() {
        let want = DateTime::parse_from_rfc3339("2021-06-14T08:29:52Z").unwrap();
        for text in [
            "2021-06-14T08:29:52Z",
            "2021-06-14T17:29:52+09:00",
            "2021-06-14 08:29:52",
            "2021-06-14 08:29:52+00",
            "2021-06-14T08:29:52.000Z",
            "2021-06-14 08:29:52 UTC",
            "2021-06-14 08:29:52 +0000",
        ] {
            assert_eq!(parse_time(text), Some(want.with_timezone(&Utc)), "{text}");
        }
        assert!(parse_time("2021-06-14").is_some());
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn tags_are_split_as_each_service_writes_them() {
        assert_eq!(
            split_tags("\"에세이\",\"VIP\"", ExportFormat::Mailchimp),
            ["에세이", "VIP"]
        );
        assert_eq!(
            split_tags("['a', 'b']", ExportFormat::Buttondown),
            ["a", "b"]
        );
        assert_eq!(split_tags("a;b", ExportFormat::Posthorn), ["a", "b"]);
        assert_eq!(shown(&"x".repeat(300)).chars().count(), 101);
    }
}
