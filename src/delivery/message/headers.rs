//! Header fields lettre would write in a way the wire or the reader does not take.

use base64::Engine as _;
use lettre::message::header::{self, Header as _, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes};

use crate::domain::one_line;

/// An ASCII word longer than this is not left to lettre, which writes it whole,
/// on one line, whatever its length.
const LONGEST_WORD: usize = 900;

/// The Subject field. lettre writes a word of printable ASCII as it is, so a
/// word that reads as an RFC 2047 encoded word (`=?utf-8?q?…?=`) would reach the
/// reader decoded, and a very long one would make a line longer than the wire
/// takes: such a subject is written as encoded words of its own.
pub(super) fn subject_field(subject: &str) -> HeaderValue {
    let name = header::Subject::name();
    if subject.contains("=?") || subject.split(' ').any(|w| w.len() > LONGEST_WORD) {
        HeaderValue::dangerous_new_pre_encoded(name, subject.to_string(), encoded_words(subject))
    } else {
        HeaderValue::new(name, subject.to_string())
    }
}

/// The To field: the subscriber's name (as one line) and address. lettre
/// writes a name of letters, digits and spaces as it is, so a name with a word
/// longer than a line is written as encoded words of its own.
pub(super) fn to_field(name: &str, address: lettre::Address) -> HeaderValue {
    if name.split(' ').any(|w| w.len() > LONGEST_WORD) {
        let raw = format!("{name} <{address}>");
        let encoded = format!("{}\r\n <{address}>", encoded_words(name));
        return HeaderValue::dangerous_new_pre_encoded(header::To::name(), raw, encoded);
    }
    let name = (!name.is_empty()).then(|| name.to_string());
    header::To::from(Mailboxes::from(Mailbox::new(name, address))).display()
}

/// `text` as RFC 2047 encoded words (UTF-8, base64) of at most 72 characters,
/// one a line: a reader's client joins them without the line breaks.
fn encoded_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    let mut rest = text;
    while !rest.is_empty() {
        // 45 bytes are 60 base64 characters.
        let mut end = rest.len().min(45);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if !out.is_empty() {
            out.push_str("\r\n ");
        }
        out.push_str("=?utf-8?b?");
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(&rest.as_bytes()[..end]));
        out.push_str("?=");
        rest = &rest[end..];
    }
    out
}

pub(super) fn raw(name: &'static str, value: String) -> HeaderValue {
    // `HeaderValue::new` encodes non-ASCII words (RFC 2047) and folds long lines.
    HeaderValue::new(HeaderName::new_from_ascii_str(name), one_line(&value))
}
