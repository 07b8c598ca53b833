//! `[schedule]`: when the scheduler ticks and when the digest goes out.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize, Serializer};

use crate::domain::Frequency;

/// `[schedule]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    pub check: Cron,
    /// The frequency of readers who have not chosen one.
    pub mode: Frequency,
    /// When readers who chose the digest get theirs.
    pub digest: Cron,
    /// More posts than this due in one tick go out as one digest.
    pub max_new_per_tick: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            check: Cron::constant("0 */10 * * * *"),
            mode: Frequency::Each,
            digest: Cron::constant("0 0 9 * * Sat"),
            max_new_per_tick: 3,
        }
    }
}

/// A six-field cron expression (seconds first), parsed once, the way
/// tokio-cron-scheduler parses it: the scheduler is handed this very schedule,
/// and the heartbeat, the digest and the pages read their next times from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Cron {
    /// As written, for display and for remembering which schedule was in force.
    text: String,
    schedule: croner::Cron,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "`{text}` is not a six-field cron expression (seconds first, as in `0 */10 * * * *`): {source}"
)]
pub struct CronError {
    text: String,
    source: croner::errors::CronError,
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        // The scheduler's own settings: seconds required, and a day of the month
        // and a day of the week must both match.
        let schedule = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(text)
            .map_err(|source| CronError {
                text: text.to_string(),
                source,
            })?;
        Ok(Cron {
            text: text.to_string(),
            schedule,
        })
    }

    /// One of the defaults written in this file; the tests parse each of them.
    fn constant(text: &'static str) -> Cron {
        Cron::parse(text).unwrap_or_else(|e| panic!("a default schedule: {e}"))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed schedule, for the scheduler.
    pub fn schedule(&self) -> &croner::Cron {
        &self.schedule
    }
}

/// When `cron` fires next after `now`, read in `tz`; `None` if it never does.
pub fn next_time(cron: &Cron, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.schedule
        .find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl FromStr for Cron {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Cron, CronError> {
        Cron::parse(s)
    }
}

impl TryFrom<String> for Cron {
    type Error = CronError;
    fn try_from(s: String) -> Result<Cron, CronError> {
        Cron::parse(&s)
    }
}

impl Serialize for Cron {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        self.text == other.text
    }
}

impl Eq for Cron {}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 time")
    }

    #[test]
    fn the_defaults_parse() {
        let defaults = ScheduleConfig::default();
        assert_eq!(defaults.check.as_str(), "0 */10 * * * *");
        assert_eq!(defaults.digest.as_str(), "0 0 9 * * Sat");
    }

    #[test]
    fn five_fields_or_words_are_refused_with_the_text() {
        for bad in ["*/10 * * * *", "every day", "", "0 0 25 * * *"] {
            let msg = Cron::parse(bad).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("`{bad}`")) && msg.contains("six-field"),
                "{msg}"
            );
        }
    }

    #[test]
    fn the_next_time_is_read_in_the_time_zone() {
        let cron: Cron = "0 0 9 * * Sat".parse().unwrap();
        // A Friday, 12:00 UTC: 21:00 in Seoul, so the next 09:00 Saturday there
        // is the next morning, 00:00 UTC.
        let next = next_time(&cron, chrono_tz::Asia::Seoul, utc("2026-01-02T12:00:00Z"));
        assert_eq!(next, Some(utc("2026-01-03T00:00:00Z")));
    }

    #[test]
    fn a_day_of_the_month_and_of_the_week_must_both_match() {
        // As the scheduler reads it: the 1st of a month that is a Monday.
        let cron: Cron = "0 0 9 1 * Mon".parse().unwrap();
        let next = next_time(&cron, Tz::UTC, utc("2026-01-01T00:00:00Z"));
        assert_eq!(next, Some(utc("2026-06-01T09:00:00Z")));
    }
}
