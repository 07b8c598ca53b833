//! Front matter: TOML between `+++` lines or YAML between `---` lines.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// The keys of SPEC §Posts. Unknown keys are errors: a typo such as `drfat = true`
/// must not publish a draft.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub title: String,
    pub date: DateText,
    pub slug: Option<String>,
    pub summary: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub draft: bool,
    #[serde(default = "yes")]
    pub email: bool,
    pub updated: Option<DateText>,
    /// Overrides `[posts] line_breaks` for this post.
    pub line_breaks: Option<crate::domain::LineBreaks>,
}

/// A date as written: text in YAML or a TOML string, or a TOML native date
/// (`date = 2026-11-20`), which is read from its text form.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DateText {
    Text(String),
    Toml(toml::value::Datetime),
}

impl DateText {
    pub fn text(&self) -> String {
        match self {
            DateText::Text(s) => s.clone(),
            DateText::Toml(d) => d.to_string(),
        }
    }
}

fn yes() -> bool {
    true
}

/// A problem in a post file, with the 1-based line it was found on when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

impl LineError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        LineError {
            line,
            message: message.into(),
        }
    }
}

/// Splits a post into its front matter and the Markdown body after it.
pub fn parse(text: &str) -> Result<(FrontMatter, &str), LineError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().next().unwrap_or("").trim_end();
    let fence = match first_line {
        "+++" => "+++",
        "---" => "---",
        _ => {
            return Err(LineError::at(
                1,
                "no front matter: the file must start with a `+++` (TOML) or `---` (YAML) line",
            ))
        }
    };
    // Byte offset where the front matter starts (just after the first line).
    let start = text.find('\n').map(|i| i + 1).unwrap_or(text.len());
    let mut offset = start;
    let mut end = None;
    for line in text[start..].split_inclusive('\n') {
        if line.trim_end() == fence {
            end = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let (fm_end, body_start) = end.ok_or_else(|| {
        LineError::at(
            1,
            format!("front matter opened with `{fence}` is never closed"),
        )
    })?;
    let fm_text = &text[start..fm_end];
    let body = &text[body_start..];
    // Line 1 is the fence, so front matter line n is file line n + 1.
    let fm = if fence == "+++" {
        parse_toml(fm_text)?
    } else {
        parse_yaml(fm_text)?
    };
    if fm.title.trim().is_empty() {
        return Err(LineError::at(2, "`title` is empty"));
    }
    Ok((fm, body))
}

fn parse_toml(text: &str) -> Result<FrontMatter, LineError> {
    let line_of = |e: &toml::de::Error| {
        e.span()
            .map(|s| 2 + text[..s.start.min(text.len())].matches('\n').count())
            .unwrap_or(2)
    };
    toml::from_str::<FrontMatter>(text)
        .map_err(|e| LineError::at(line_of(&e), e.message().to_string()))
}

fn parse_yaml(text: &str) -> Result<FrontMatter, LineError> {
    serde_norway::from_str::<FrontMatter>(text).map_err(|e| {
        let line = e.location().map(|l| l.line() + 1).unwrap_or(2);
        // The library's message repeats the position; keep only the reason.
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        LineError::at(line, message)
    })
}

/// Reads a front matter date: RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` in the site's zone.
pub fn parse_date(input: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let s = input.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.with_timezone(&Utc));
    }
    let local = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| format!("date `{s}` is not RFC 3339, `YYYY-MM-DD` or `YYYY-MM-DD HH:MM`"))?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| format!("date `{s}` does not exist in {tz} (a daylight-saving gap)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Asia::Seoul;

    #[test]
    fn toml_front_matter_with_native_date() {
        let (fm, body) = parse(
            "+++\ntitle = \"느리게 읽기\"\ndate = 2026-11-20\ntags = [\"독서\"]\n+++\n본문\n",
        )
        .unwrap();
        assert_eq!(fm.title, "느리게 읽기");
        assert_eq!(fm.date.text(), "2026-11-20");
        assert!(fm.email);
        assert_eq!(body, "본문\n");
    }

    #[test]
    fn yaml_front_matter() {
        let (fm, _) =
            parse("---\ntitle: On walking\ndate: 2026-11-20 07:30\ndraft: true\n---\nText")
                .unwrap();
        assert!(fm.draft);
        assert_eq!(fm.date.text(), "2026-11-20 07:30");
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("+++\ntitle = \"x\"\ndate = \"2026-11-20\"\ntilte = 3\n+++\n").unwrap_err();
        assert_eq!(err.line, 4, "{err:?}");
        assert!(err.message.contains("tilte"), "{err:?}");

        let err = parse("---\ntitle: x\ndate: [\n---\n").unwrap_err();
        assert!(err.line >= 3, "{err:?}");

        let err = parse("+++\ntitle = \"x\"\n").unwrap_err();
        assert!(err.message.contains("never closed"));

        let err = parse("+++\ndate = \"2026-11-20\"\n+++\n").unwrap_err();
        assert!(err.message.contains("title"), "{err:?}");
    }

    #[test]
    fn dates_without_offset_are_read_in_the_site_zone() {
        let d = parse_date("2026-11-20 09:00", Seoul).unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-20T00:00:00+00:00");
        let d = parse_date("2026-11-20", Seoul).unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-19T15:00:00+00:00");
        let d = parse_date("2026-11-20T09:00:00+09:00", chrono_tz::UTC).unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-20T00:00:00+00:00");
        assert!(parse_date("20 Nov 2026", Seoul).is_err());
    }
}
