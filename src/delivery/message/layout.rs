//! The multipart/alternative layout of a message, written once per issue and
//! filled in per reader: 8bit where the lines allow it, base64 where not.

use std::time::SystemTime;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::header::{self, Headers};
use lettre::message::{Mailbox, Mailboxes};

use super::headers::raw;
use super::lines::{Fold, Lines, MAX_LINE};
use super::BodyEncoding;
use crate::domain::hex;
use crate::render::email::{Personalizable, ReaderFields};

/// A multipart/alternative message with everything but the reader's fields
/// written out once.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// The envelope sender when there is no VERP.
    pub(super) from: lettre::Address,
    /// The header fields every copy shares, each ending in CRLF.
    shared: String,
    boundary: String,
    timezone: Tz,
    /// The bodies with CRLF line ends, the HTML folded to fit 8bit lines.
    text: Personalizable,
    html: Personalizable,
}

impl Layout {
    pub(super) fn new(
        from: &Mailbox,
        mut shared: Headers,
        timezone: Tz,
        text: &Personalizable,
        html: &Personalizable,
    ) -> Layout {
        // Random, and made of characters base64 and the bodies' markup never put
        // after two dashes at the start of a line.
        let boundary = format!("=_{}", hex(&rand::random::<[u8; 16]>()));
        shared.set(header::MIME_VERSION_1_0);
        shared.insert_raw(raw(
            "Content-Type",
            format!("multipart/alternative; boundary=\"{boundary}\""),
        ));
        shared.set(header::From::from(Mailboxes::from(from.clone())));
        let (mut text_lines, mut html_lines) = (Lines::new(Fold::Never), Lines::for_html(html));
        Layout {
            from: from.email.clone(),
            shared: shared.to_string(),
            boundary,
            timezone,
            text: text.map_literals(|s| text_lines.write(s)),
            html: html.map_literals(|s| html_lines.write(s)),
        }
    }

    /// One copy: the reader's header fields, the shared ones, both parts.
    pub(super) fn write(
        &self,
        own: Headers,
        message_id: &str,
        date: SystemTime,
        reader: &ReaderFields<'_>,
        encoding: BodyEncoding,
    ) -> String {
        let mut out = String::with_capacity(self.html.len() + self.text.len() + 2048);
        // The author's clock: a reader in Seoul sees +0900.
        let date = DateTime::<Utc>::from(date).with_timezone(&self.timezone);
        out.push_str("Date: ");
        out.push_str(&date.to_rfc2822());
        out.push_str("\r\nMessage-ID: ");
        out.push_str(message_id);
        out.push_str("\r\n");
        out.push_str(&own.to_string());
        out.push_str(&self.shared);
        out.push_str("\r\n");
        self.part(&mut out, "text/plain", &self.text, reader, false, encoding);
        self.part(&mut out, "text/html", &self.html, reader, true, encoding);
        out.push_str("--");
        out.push_str(&self.boundary);
        out.push_str("--\r\n");
        out
    }

    fn part(
        &self,
        out: &mut String,
        content_type: &str,
        body: &Personalizable,
        reader: &ReaderFields<'_>,
        html: bool,
        encoding: BodyEncoding,
    ) {
        out.push_str("--");
        out.push_str(&self.boundary);
        out.push_str("\r\nContent-Type: ");
        out.push_str(content_type);
        out.push_str("; charset=utf-8\r\nContent-Transfer-Encoding: ");
        let head = out.len();
        out.push_str("8bit\r\n\r\n");
        let start = out.len();
        body.fill_into(out, reader, html);
        if !out.ends_with("\r\n") {
            out.push_str("\r\n");
        }
        if encoding == BodyEncoding::EightBit && fits_eight_bit(&out.as_bytes()[start..]) {
            return;
        }
        let filled = out.split_off(start);
        out.truncate(head);
        out.push_str("base64\r\n\r\n");
        push_base64_lines(out, filled.as_bytes());
    }
}

/// Lines the wire can carry as 8bit: none longer than 998 octets, no NUL.
fn fits_eight_bit(body: &[u8]) -> bool {
    let mut line_start = 0;
    for end in memchr::memchr_iter(b'\n', body) {
        if end - line_start > MAX_LINE + 1 {
            return false;
        }
        line_start = end + 1;
    }
    body.len() - line_start <= MAX_LINE && memchr::memchr(0, body).is_none()
}

/// Base64 in lines of 76 characters (RFC 2045).
fn push_base64_lines(out: &mut String, data: &[u8]) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    for chunk in encoded.as_bytes().chunks(76) {
        // Base64 is ASCII: each chunk is a whole string.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn eight_bit_takes_short_lines_without_nul() {
        assert!(fits_eight_bit("가나다\r\n".repeat(300).as_bytes()));
        assert!(!fits_eight_bit(
            format!("{}\r\n", "가".repeat(400)).as_bytes()
        ));
        assert!(fits_eight_bit(
            format!("{}\r\n", "a".repeat(998)).as_bytes()
        ));
        assert!(!fits_eight_bit(
            format!("{}\r\n", "a".repeat(999)).as_bytes()
        ));
        assert!(!fits_eight_bit(b"a\0b\r\n"));
    }

    #[test]
    fn base64_lines_are_76_characters() {
        let mut out = String::new();
        push_base64_lines(&mut out, "긴 글".repeat(100).as_bytes());
        assert!(out.split("\r\n").all(|l| l.len() <= 76));
        let joined: String = out.split("\r\n").collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(joined)
            .unwrap();
        assert_eq!(decoded, "긴 글".repeat(100).as_bytes());
    }
}
