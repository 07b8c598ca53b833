//! Reading what comes back after the relay said 250: bounces (RFC 3464 DSNs inside
//! RFC 6522 reports, and the non-standard shapes real MTAs write), complaints
//! (RFC 5965 ARF), auto-replies (RFC 3834), and the providers' notifications.
//!
//! This module only reads and classifies; it never touches the database. What a
//! report means for a delivery is decided in `app::bounces`.
//!
//! One message becomes one [`Report`]: its kind, one entry per recipient it talks
//! about, and the tracks posthorn left in it (a VERP token, its own Message-IDs)
//! that say which delivery it is about.

mod arf;
mod classify;
mod dsn;
pub mod imap;
mod mime;
mod prose;
pub mod providers;
mod reason;
mod shape;
mod status;
#[cfg(test)]
mod tests;
pub mod webhooks;

use std::collections::HashSet;

use serde::Serialize;

use crate::config::ReturnPath;
use crate::domain::{string_enum, EmailAddress};

pub use classify::{classify, reason, Severity};
pub use reason::Reason;
use shape::Writer;
pub use status::StatusCode;

/// Messages larger than this are not reports (a DSN returns headers, at most a
/// truncated body): they are refused before any parsing.
pub const MAX_REPORT_BYTES: usize = 10 * 1024 * 1024;

string_enum!(
    /// What a message is, as far as delivery goes.
    ReportKind {
        Bounce => "bounce",
        Delay => "delay",
        Complaint => "complaint",
        AutoReply => "auto-reply",
        Delivered => "delivered",
        Unknown => "unknown",
    }
);

string_enum!(
    /// RFC 3464 `Action`, plus what a complaint means for its recipient.
    Action {
        Failed => "failed",
        Delayed => "delayed",
        Delivered => "delivered",
        Relayed => "relayed",
        Expanded => "expanded",
        Complained => "complained",
    }
);

/// What one report says about one recipient.
#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    pub address: Option<EmailAddress>,
    /// The RFC 3463 enhanced status code, stated or implied.
    pub status: Option<StatusCode>,
    /// The address itself is gone (unknown user or domain, moved, null MX).
    pub hard: bool,
    /// Why, from the taxonomy in [`Reason`].
    pub reason: Reason,
    pub action: Action,
    /// The remote server's words.
    pub diagnostic: Option<String>,
}

/// A delivery named by posthorn's own Message-ID `<ISSUE.SUBSCRIBER.MAC@domain>`,
/// as found: the MAC is checked by whoever acts on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MessageIdRef {
    pub issue: i64,
    pub subscriber: i64,
    pub mac: String,
}

/// The marks posthorn leaves on what it sends, and so can find in what comes
/// back: their patterns, compiled once for every message read.
#[derive(Debug, Clone, Default)]
pub struct Tracks {
    /// `local+TOKEN@domain`, matched case-insensitively (some MTAs lower-case
    /// local parts).
    verp: Option<regex::bytes::Regex>,
    /// posthorn's Message-IDs, `<ISSUE.SUBSCRIBER.MAC@domain>`, with or
    /// without the brackets.
    message_id: Option<regex::bytes::Regex>,
}

impl Tracks {
    /// `verp`: `bounces.return_path`; `message_id_domain`: the `From` domain.
    pub fn new(verp: Option<&ReturnPath>, message_id_domain: Option<&str>) -> Tracks {
        let compile = |pattern: String| regex::bytes::Regex::new(&pattern).ok();
        Tracks {
            verp: verp.and_then(|return_path| {
                compile(format!(
                    r"(?i)\b{}\+([0-9a-z-]{{8,60}})@{}\b",
                    regex::escape(return_path.local()),
                    regex::escape(return_path.domain())
                ))
            }),
            message_id: message_id_domain.and_then(|domain| {
                compile(format!(
                    // Angle brackets are optional: some providers' events drop them.
                    r"(?i)\b(\d{{1,18}})\.(\d{{1,18}})\.([0-9a-f]{{{}}})@{}\b",
                    2 * crate::tokens::MESSAGE_ID_MAC_BYTES,
                    regex::escape(domain)
                ))
            }),
        }
    }
}

/// How deep reports forwarded inside reports are followed.
const MAX_DEPTH: usize = 3;

/// Recipients read from one report. A real DSN names a handful (the recipients
/// one MTA gave up on at once); anyone can mail the bounce address, and a
/// report naming thousands is hostile or broken, while each recipient costs a
/// database write when it is recorded.
pub const MAX_RECIPIENTS: usize = 100;

/// Bytes of one recipient's diagnostic kept: a server's reply with the
/// paragraph around it. The longest in the labelled corpus is 1,600 bytes (a
/// notice in Hindi); more is a copy of something else. With
/// [`MAX_RECIPIENTS`], this bounds a report's text at 200 KB, however large
/// the message.
pub const MAX_DIAGNOSTIC_BYTES: usize = 2_000;

/// Lines of a notice, or of DSN fields, looked at. A notice is a screenful and
/// a DSN a few lines per recipient; what comes after this many is a returned
/// message or noise.
const MAX_LINES: usize = 5_000;

/// Bytes of a notice looked at, for notices of few, very long lines.
const MAX_NOTICE_BYTES: usize = 256 * 1024;

/// posthorn's marks (VERP tokens, Message-IDs) kept from one message. A report
/// returns one message, so one or two are real; each is checked against its
/// MAC by whoever acts on the report.
const MAX_TRACKS: usize = 100;

/// Everything one message says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub kind: ReportKind,
    pub recipients: Vec<Recipient>,
    pub feedback_type: Option<String>,
    /// VERP tokens found in the addresses the report was sent to, unverified.
    #[serde(skip)]
    pub verp_tokens: Vec<String>,
    /// posthorn Message-IDs found in the returned headers or `In-Reply-To`.
    #[serde(skip)]
    pub message_ids: Vec<MessageIdRef>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the message is {0} bytes; reports are at most {MAX_REPORT_BYTES}")]
    TooLarge(usize),
    #[error("the input is not a mail message (no header could be read)")]
    NotMail,
}

/// Reads one message. Anything that is a message gives a report; a message that is
/// not about delivery (a reader's reply) is `ReportKind::Unknown`.
pub fn read(raw: &[u8], tracks: &Tracks) -> Result<Report, ReadError> {
    if raw.len() > MAX_REPORT_BYTES {
        return Err(ReadError::TooLarge(raw.len()));
    }
    let mut report = read_at(raw, 0)?;
    report.find_tracks(raw, tracks);
    Ok(report)
}

impl Report {
    /// Finds posthorn's marks (VERP tokens, Message-IDs) anywhere in `raw`: a
    /// message, or a provider's event.
    pub fn find_tracks(&mut self, raw: &[u8], tracks: &Tracks) {
        self.verp_tokens = find_verp_tokens(raw, tracks);
        self.message_ids = find_message_ids(raw, tracks);
    }
}

/// What the message says, `depth` messages deep inside another.
fn read_at(raw: &[u8], depth: usize) -> Result<Report, ReadError> {
    let mail = mime::Mail::parse(raw).ok_or(ReadError::NotMail)?;
    let report = if let Some(json) = providers::ses_notification_in(mail.notice_text()) {
        json
    } else if let Some(feedback) = mail.part_text(&["message/feedback-report"]) {
        arf::read(&mail, &feedback)
    } else if let Some(feedback) = arf::fields_in_text(&mail) {
        // ARF fields written into a text part: a complaint all the same.
        arf::read(&mail, &feedback)
    } else if let Some(found) = dsn::find(&mail) {
        found
    } else if let Some(found) = arf::read_jmrp(&mail) {
        found
    } else if let Some(found) = mail
        .attached_message()
        .filter(|_| depth < MAX_DEPTH)
        .and_then(|inner| read_at(inner, depth + 1).ok())
        .filter(|r| matches!(r.kind, ReportKind::Bounce | ReportKind::Complaint))
    {
        // A report forwarded whole, as an attachment, by a relay or a person.
        found
    } else if let Some(found) = prose::read(&mail) {
        found
    } else if mail.is_auto_reply() {
        Report::empty(ReportKind::AutoReply)
    } else {
        Report::empty(ReportKind::Unknown)
    };
    Ok(report)
}

impl Report {
    pub fn empty(kind: ReportKind) -> Report {
        Report {
            kind,
            recipients: Vec::new(),
            feedback_type: None,
            verp_tokens: Vec::new(),
            message_ids: Vec::new(),
        }
    }

    /// A complaint about `recipients`, of `feedback_type` (`abuse`, `opt-out`, …).
    pub fn complaint(mut recipients: Vec<Recipient>, feedback_type: &str) -> Report {
        recipients.truncate(MAX_RECIPIENTS);
        Report {
            recipients,
            feedback_type: Some(feedback_type.trim().to_ascii_lowercase()),
            ..Report::empty(ReportKind::Complaint)
        }
    }

    /// The kind that follows from the recipients' actions.
    fn from_recipients(mut recipients: Vec<Recipient>) -> Report {
        recipients.truncate(MAX_RECIPIENTS);
        let kind = if recipients.iter().any(|r| r.action == Action::Failed) {
            ReportKind::Bounce
        } else if recipients.iter().any(|r| r.action == Action::Delayed) {
            ReportKind::Delay
        } else if recipients.is_empty() {
            ReportKind::Unknown
        } else {
            ReportKind::Delivered
        };
        Report {
            recipients,
            ..Report::empty(kind)
        }
    }
}

impl Recipient {
    /// A recipient with its status and hardness worked out from the server's words.
    pub fn new(
        address: Option<EmailAddress>,
        action: Action,
        stated: Option<StatusCode>,
        diagnostic: Option<String>,
    ) -> Recipient {
        Recipient::read_with(address, action, stated, diagnostic, &Context::default())
    }

    /// The same, with `context`: more of the notice, and who wrote it.
    pub(crate) fn read_with(
        address: Option<EmailAddress>,
        action: Action,
        stated: Option<StatusCode>,
        diagnostic: Option<String>,
        context: &Context<'_>,
    ) -> Recipient {
        let diagnostic = diagnostic
            .map(|d| one_line_within(&d, MAX_DIAGNOSTIC_BYTES))
            .filter(|d| !d.is_empty());
        let status = status::best(stated, diagnostic.as_deref().unwrap_or(""), action);
        let mut recipient = Recipient {
            address,
            status,
            hard: false,
            reason: Reason::Undefined,
            action,
            diagnostic,
        };
        recipient.reclassify(context);
        recipient
    }

    /// Works out the reason, and so hard or soft, again from the diagnostic and
    /// `context`.
    pub(crate) fn reclassify(&mut self, context: &Context<'_>) {
        let text = format!(
            "{} {}",
            self.diagnostic.as_deref().unwrap_or(""),
            context.words
        );
        self.reason = reason(self.status, &text, context.writer);
        self.hard =
            matches!(self.action, Action::Failed | Action::Delayed) && self.reason.address_gone();
    }

    /// A provider says itself whether the address is gone, which outranks its
    /// words; a gone address keeps a reason that says so.
    pub(crate) fn set_hard(&mut self, hard: bool) {
        self.hard = hard;
        if hard && !self.reason.address_gone() {
            self.reason = Reason::UserUnknown;
        }
    }
}

/// What is read with a recipient's own words: more of the notice (which may
/// say which SMTP command the reply answered), and the report's writer.
#[derive(Debug, Default)]
pub(crate) struct Context<'a> {
    pub words: &'a str,
    pub writer: Writer,
}

/// VERP tokens anywhere in the raw message: in `To`, `Delivered-To`,
/// `X-Original-To`, or the returned `Return-Path`.
fn find_verp_tokens(raw: &[u8], tracks: &Tracks) -> Vec<String> {
    let Some(re) = &tracks.verp else {
        return Vec::new();
    };
    let tokens = re
        .captures_iter(raw)
        .map(|cap| String::from_utf8_lossy(&cap[1]).to_ascii_lowercase());
    first_distinct(tokens, MAX_TRACKS)
}

/// posthorn's Message-IDs anywhere in the message: the returned headers,
/// `In-Reply-To`, `References`, or a text copy.
fn find_message_ids(raw: &[u8], tracks: &Tracks) -> Vec<MessageIdRef> {
    let Some(re) = &tracks.message_id else {
        return Vec::new();
    };
    let ids = re.captures_iter(raw).filter_map(|cap| {
        let number = |i: usize| {
            std::str::from_utf8(&cap[i])
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
        };
        Some(MessageIdRef {
            issue: number(1)?,
            subscriber: number(2)?,
            mac: String::from_utf8_lossy(&cap[3]).to_ascii_lowercase(),
        })
    });
    first_distinct(ids, MAX_TRACKS)
}

/// The first `max` distinct items, in order; the rest is not looked at.
fn first_distinct<T: Clone + Eq + std::hash::Hash>(
    items: impl Iterator<Item = T>,
    max: usize,
) -> Vec<T> {
    let mut seen = HashSet::new();
    items
        .filter(|item| seen.insert(item.clone()))
        .take(max)
        .collect()
}

/// The first `MAX_RECIPIENTS` distinct addresses (by key), in order.
pub(crate) fn first_recipients(addresses: impl Iterator<Item = EmailAddress>) -> Vec<EmailAddress> {
    let mut seen = HashSet::new();
    addresses
        .filter(|a| seen.insert(a.key()))
        .take(MAX_RECIPIENTS)
        .collect()
}

/// Non-empty parts joined by single spaces: a diagnostic from several fields.
pub(crate) fn join_words(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `input` on one line, as [`crate::domain::one_line`] makes it, but at most
/// `max` bytes of it: the words past that are not looked at.
pub(crate) fn one_line_within(input: &str, max: usize) -> String {
    let mut out = String::new();
    let words = input
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty());
    for word in words {
        let room = max.saturating_sub(out.len() + usize::from(!out.is_empty()));
        if room == 0 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(clip(word, room));
    }
    out.truncate(out.trim_end().len());
    out
}

/// The longest start of `s` of at most `max` bytes that ends on a character.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

static ADDRESS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+")
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// Every string in `text` written like an address, in order, with repeats.
pub(crate) fn address_like(text: &str) -> impl Iterator<Item = &str> + '_ {
    ADDRESS.find_iter(text).map(|m| {
        let s = m.as_str().trim_matches('.');
        s.strip_prefix("rfc822;").unwrap_or(s)
    })
}

/// Every string in `text` that parses as an address, in order, with repeats.
pub(crate) fn each_address(text: &str) -> impl Iterator<Item = EmailAddress> + '_ {
    address_like(text).filter_map(|s| EmailAddress::parse(s).ok())
}

/// The first thing in `text` that parses as an address: `<a@b.c>`, `a@b.c`, or
/// `rfc822; a@b.c`.
pub(crate) fn address_in(text: &str) -> Option<EmailAddress> {
    each_address(text).next()
}

/// Every address in `text`, in order, without repeats.
pub(crate) fn addresses_in(text: &str) -> Vec<EmailAddress> {
    let mut seen = HashSet::new();
    each_address(text)
        .filter(|a| seen.insert(a.key()))
        .collect()
}
