//! RFC 3463 enhanced status codes (`5.1.1`), and the code a report implies when it
//! states none.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Serialize, Serializer};

use super::Action;

/// `class.subject.detail`: class 2 (success), 4 (persistent transient) or 5 (permanent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

static CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d.])([245])\.(\d{1,3})\.(\d{1,3})(?:[^\d.]|\.(?:\D|$)|$)")
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// A basic SMTP reply code at the start of a line or after a separator: `550`, `452-`.
static REPLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s:;(\[#])([45])[0-5]\d(?:[\s\-,;.]|$)")
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

impl StatusCode {
    /// Parses exactly `5.1.1` (surrounding space allowed).
    pub fn parse(input: &str) -> Option<StatusCode> {
        let mut it = input.trim().splitn(3, '.');
        let class: u8 = it.next()?.parse().ok()?;
        let subject: u16 = it.next()?.parse().ok()?;
        let detail: u16 = it.next()?.trim().parse().ok()?;
        if !matches!(class, 2 | 4 | 5) || subject > 999 || detail > 999 {
            return None;
        }
        Some(StatusCode {
            class,
            subject,
            detail,
        })
    }

    /// The first failure code (class 4 or 5) written anywhere in `text`. Success
    /// codes are not looked for: in prose they are mostly version numbers.
    pub fn find(text: &str) -> Option<StatusCode> {
        CODE.captures_iter(text)
            .filter_map(|c| StatusCode::parse(&format!("{}.{}.{}", &c[1], &c[2], &c[3])))
            .find(|c| c.class != 2)
    }

    /// `x.0.0`: says only success or failure, nothing about why.
    pub fn is_generic(self) -> bool {
        self.subject == 0 && self.detail == 0
    }

    fn generic(class: u8) -> StatusCode {
        StatusCode {
            class,
            subject: 0,
            detail: 0,
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl Serialize for StatusCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The class of the first basic SMTP reply code (`550` → 5) in `text`.
pub fn reply_class(text: &str) -> Option<u8> {
    REPLY.captures(text).and_then(|c| c[1].parse::<u8>().ok())
}

/// The most specific status known for a recipient: the stated one, unless it is
/// generic (`5.0.0`) and the diagnostic names a precise code of the same class;
/// else one found in the diagnostic; else one implied by its SMTP reply or action.
pub fn best(stated: Option<StatusCode>, diagnostic: &str, action: Action) -> Option<StatusCode> {
    let in_text = StatusCode::find(diagnostic);
    match (stated, in_text) {
        (Some(s), Some(t)) if s.is_generic() && t.class == s.class && !t.is_generic() => {
            return Some(t)
        }
        (Some(s), _) if s.class != 2 => return Some(s),
        (_, Some(t)) => return Some(t),
        _ => {}
    }
    if let Some(class) = reply_class(diagnostic) {
        return Some(StatusCode::generic(class));
    }
    match action {
        Action::Failed => Some(StatusCode::generic(5)),
        Action::Delayed => Some(StatusCode::generic(4)),
        _ => stated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_codes_but_not_versions_or_addresses() {
        assert_eq!(
            StatusCode::find("550 5.1.1 <a@b.c>: User unknown").map(|s| s.to_string()),
            Some("5.1.1".into())
        );
        assert_eq!(StatusCode::find("Postfix 2.10.1 says hi"), None);
        assert_eq!(StatusCode::find("host 192.0.2.1 said"), None);
        assert_eq!(
            StatusCode::find("(#5.7.1)").map(|s| s.to_string()),
            Some("5.7.1".into())
        );
    }

    #[test]
    fn a_generic_status_gives_way_to_the_diagnostics_code() {
        let s = best(
            StatusCode::parse("5.0.0"),
            "550 5.1.1 user unknown",
            Action::Failed,
        );
        assert_eq!(s.map(|s| s.to_string()), Some("5.1.1".into()));
        let s = best(None, "452 mailbox full", Action::Failed);
        assert_eq!(s.map(|s| s.to_string()), Some("4.0.0".into()));
    }
}
