//! MIME messages. Everything that is the same for every recipient of an issue is
//! laid out once in [`PreparedIssue`]: the shared header fields, the boundary, and
//! both bodies with their line ends and line lengths already made fit for the wire.
//! [`PreparedIssue::message_for`] only writes the recipient's header fields and
//! splices the recipient's values into the bodies.

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::header::{self, Header as _, HeaderName, HeaderValue, Headers};
use lettre::message::{Mailbox, Mailboxes};

use super::dkim::Signer;
use crate::config::{Config, ReturnPath};
use crate::domain::{hex, one_line, EmailAddress};
use crate::error::Error;
use crate::links::Links;
use crate::render::email::{EmailBodies, Personalizable, Recipient};

/// How the bodies travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// As they are (RFC 6152), where the server offers 8BITMIME: no encoding work per
    /// message, and Korean text a quarter smaller than in base64. A part with a line
    /// the wire cannot carry goes in base64 all the same.
    EightBit,
    /// Base64, for a server without 8BITMIME.
    Base64,
}

/// RFC 5322's limit is 998 octets a line; a line of the HTML longer than this is
/// folded where a tag allows it.
const FOLD_AT: usize = 900;
const MAX_LINE: usize = 998;

/// An issue ready to be addressed to many subscribers.
#[derive(Debug, Clone)]
pub struct PreparedIssue {
    pub issue_id: i64,
    pub subject: String,
    layout: Layout,
    /// The right-hand side of every Message-ID: the From domain.
    message_id_domain: String,
    signer: Option<Arc<Signer>>,
    links: Links,
    /// `bounces.return_path`: the envelope sender is `local+TOKEN@domain`.
    verp: Option<ReturnPath>,
}

/// One recipient of an issue.
#[derive(Debug, Clone)]
pub struct Addressee<'a> {
    pub subscriber_id: i64,
    pub email: &'a EmailAddress,
    pub name: &'a str,
}

/// A message ready for a transport. Built as text: 8bit bodies are UTF-8, the
/// rest ASCII, so DATA can carry it without checking it again.
pub struct Outgoing {
    pub message_id: String,
    pub envelope: lettre::address::Envelope,
    pub text: String,
}

impl PreparedIssue {
    pub fn new(
        config: &Config,
        links: &Links,
        issue_id: i64,
        subject: &str,
        bodies: EmailBodies,
        signer: Option<Arc<Signer>>,
    ) -> PreparedIssue {
        let from = config.email.from.get();
        let subject = one_line(subject);
        let mut shared = Headers::new();
        if let Some(reply_to) = &config.email.reply_to {
            shared.set(header::ReplyTo::from(Mailboxes::from(
                reply_to.get().clone(),
            )));
        }
        shared.insert_raw(subject_field(&subject));
        // RFC 2919: a phrase, then <list-label.namespace>.
        let list_id = format!(
            "{} <{}>",
            one_line(&config.site.title).replace(['<', '>', '"'], ""),
            config.site_host()
        );
        shared.insert_raw(raw("List-Id", list_id));
        shared.insert_raw(raw(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".into(),
        ));
        PreparedIssue {
            issue_id,
            subject,
            layout: Layout::new(
                from,
                shared,
                config.site.timezone,
                &bodies.text,
                &bodies.html,
            ),
            message_id_domain: from.email.domain().to_string(),
            signer,
            links: links.clone(),
            verp: config.bounces.return_path.clone(),
        }
    }

    /// Whether each message is signed (then building it is CPU work).
    pub fn is_signed(&self) -> bool {
        self.signer.is_some()
    }

    /// The Message-ID of this issue for one subscriber,
    /// `<ISSUE.SUBSCRIBER.MAC@domain>`: the same on every attempt, so a message
    /// sent again after a crash is recognisably the same message, and signed, so
    /// a report quoting it proves which delivery it is about.
    pub fn message_id(&self, subscriber_id: i64) -> String {
        let mac = self
            .links
            .tokens()
            .message_id_mac(self.issue_id, subscriber_id);
        format!(
            "<{}.{}.{mac}@{}>",
            self.issue_id, subscriber_id, self.message_id_domain
        )
    }

    pub fn message_for(
        &self,
        to: &Addressee<'_>,
        date: SystemTime,
        encoding: BodyEncoding,
    ) -> Result<Outgoing, Error> {
        self.build(to, self.message_id(to.subscriber_id), date, encoding)
    }

    /// A copy outside the log, with a fresh Message-ID so that mail clients do not
    /// fold several test copies together. In base64, which every server takes.
    pub fn test_copy_for(&self, to: &Addressee<'_>, date: SystemTime) -> Result<Outgoing, Error> {
        let id = format!(
            "<{}.copy-{}@{}>",
            self.issue_id,
            hex(&rand::random::<[u8; 6]>()),
            self.message_id_domain
        );
        self.build(to, id, date, BodyEncoding::Base64)
    }

    fn build(
        &self,
        to: &Addressee<'_>,
        message_id: String,
        date: SystemTime,
        encoding: BodyEncoding,
    ) -> Result<Outgoing, Error> {
        let unsubscribe_url = self.links.unsubscribe(to.subscriber_id);
        let preferences_url = self.links.preferences(to.subscriber_id);
        // A name is one line wherever it goes: in a header and in the bodies alike.
        let name = one_line(to.name);
        let recipient = Recipient {
            email: to.email.as_str(),
            name: &name,
            unsubscribe_url: &unsubscribe_url,
            preferences_url: &preferences_url,
        };
        let mut own = Headers::new();
        own.insert_raw(to_field(&name, lettre_address(to.email)?));
        own.insert_raw(raw("List-Unsubscribe", format!("<{unsubscribe_url}>")));
        let sender = match &self.verp {
            // VERP: reports come back to an address that names this delivery.
            Some(return_path) => {
                let token = self.links.tokens().verp(self.issue_id, to.subscriber_id);
                return_path
                    .with_token(&token)
                    .parse()
                    .map_err(|e| Error::Internal(format!("the VERP return path: {e}")))?
            }
            None => self.layout.from.clone(),
        };
        let envelope =
            lettre::address::Envelope::new(Some(sender), vec![lettre_address(to.email)?])
                .map_err(|e| Error::Internal(format!("the envelope: {e}")))?;
        let text = self
            .layout
            .write(own, &message_id, date, &recipient, encoding);
        Ok(Outgoing {
            message_id,
            envelope,
            text: sign(self.signer.as_deref(), text)?,
        })
    }
}

/// A one-off message that is not an issue, such as a confirmation request: no
/// List-* headers, a fresh Message-ID, signed like every other message, in base64.
pub fn transactional(
    config: &Config,
    signer: Option<&Signer>,
    to: &EmailAddress,
    subject: &str,
    text: String,
    html: String,
) -> Result<Outgoing, Error> {
    let message_id = format!(
        "<{}@{}>",
        hex(&rand::random::<[u8; 12]>()),
        config.email.from.domain()
    );
    let mut shared = Headers::new();
    shared.insert_raw(subject_field(&one_line(subject)));
    let layout = Layout::new(
        config.email.from.get(),
        shared,
        config.site.timezone,
        &Personalizable::literal(&text),
        &Personalizable::literal(&html),
    );
    let mut own = Headers::new();
    own.set(header::To::from(Mailboxes::from(Mailbox::new(
        None,
        lettre_address(to)?,
    ))));
    let envelope =
        lettre::address::Envelope::new(Some(layout.from.clone()), vec![lettre_address(to)?])
            .map_err(|e| Error::Internal(format!("the envelope: {e}")))?;
    let none = Recipient {
        email: "",
        name: "",
        unsubscribe_url: "",
        preferences_url: "",
    };
    let text = layout.write(
        own,
        &message_id,
        SystemTime::now(),
        &none,
        BodyEncoding::Base64,
    );
    Ok(Outgoing {
        message_id,
        envelope,
        text: sign(signer, text)?,
    })
}

fn sign(signer: Option<&Signer>, text: String) -> Result<String, Error> {
    match signer {
        Some(signer) => signer.sign(&text),
        None => Ok(text),
    }
}

/// A multipart/alternative message with everything but the recipient's fields
/// written out once.
#[derive(Debug, Clone)]
struct Layout {
    /// The envelope sender when there is no VERP.
    from: lettre::Address,
    /// The header fields every copy shares, each ending in CRLF.
    shared: String,
    boundary: String,
    timezone: Tz,
    /// The bodies with CRLF line ends, the HTML folded to fit 8bit lines.
    text: Personalizable,
    html: Personalizable,
}

impl Layout {
    fn new(
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

    /// One copy: the recipient's header fields, the shared ones, both parts.
    fn write(
        &self,
        own: Headers,
        message_id: &str,
        date: SystemTime,
        recipient: &Recipient<'_>,
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
        self.part(
            &mut out,
            "text/plain",
            &self.text,
            recipient,
            false,
            encoding,
        );
        self.part(&mut out, "text/html", &self.html, recipient, true, encoding);
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
        recipient: &Recipient<'_>,
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
        body.fill_into(out, recipient, html);
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

/// Where a long line may break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    /// Plain text: never (a line too long sends the part in base64).
    Never,
    /// HTML: at a space between attributes, where a line break means exactly what
    /// the space meant.
    InTags,
    /// HTML that sets no `white-space` style: also at a space in text outside
    /// `<pre>` and `<textarea>`, which a browser reads as the same space.
    InTagsAndText,
}

/// Writes a body's literal text for the wire: every line end CRLF, and a line
/// longer than [`FOLD_AT`] broken where its [`Fold`] allows.
#[derive(Debug, Clone)]
struct Lines {
    fold: Fold,
    column: usize,
    in_tag: bool,
    quote: Option<char>,
    tag_name: String,
    /// Open `<pre>` and `<textarea>` elements, where spaces show.
    preformatted: usize,
    /// Where in the current output the last space a line may break at is.
    break_at: Option<usize>,
}

impl Lines {
    fn new(fold: Fold) -> Lines {
        Lines {
            fold,
            column: 0,
            in_tag: false,
            quote: None,
            tag_name: String::new(),
            preformatted: 0,
            break_at: None,
        }
    }

    /// The folding an HTML body allows.
    fn for_html(html: &Personalizable) -> Lines {
        let styled = html
            .literals()
            .any(|s| s.to_ascii_lowercase().contains("white-space"));
        Lines::new(if styled {
            Fold::InTags
        } else {
            Fold::InTagsAndText
        })
    }

    fn write(&mut self, literal: &str) -> String {
        // A break point is a place in this literal's output; one left from the
        // literal before a field is out of reach.
        self.break_at = None;
        let mut out = String::with_capacity(literal.len() + literal.len() / 64);
        let mut chars = literal.chars().peekable();
        while let Some(c) = chars.next() {
            if matches!(c, '\r' | '\n') {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
                self.column = 0;
                self.break_at = None;
                continue;
            }
            if self.fold != Fold::Never {
                self.read_markup(c, out.len());
            }
            out.push(c);
            self.column += c.len_utf8();
            if self.column > FOLD_AT {
                if let Some(at) = self.break_at.take() {
                    out.replace_range(at..at + 1, "\r\n");
                    self.column = out.len() - (at + 2);
                }
            }
        }
        out
    }

    /// Follows tags and quotes to know whether a space at `at` may become a break.
    fn read_markup(&mut self, c: char, at: usize) {
        if !self.in_tag {
            match c {
                '<' => {
                    self.in_tag = true;
                    self.tag_name.clear();
                }
                ' ' if self.fold == Fold::InTagsAndText && self.preformatted == 0 => {
                    self.break_at = Some(at);
                }
                _ => {}
            }
            return;
        }
        match (c, self.quote) {
            ('"' | '\'', None) => self.quote = Some(c),
            (q, Some(open)) if q == open => self.quote = None,
            (_, Some(_)) => {}
            ('>', None) => {
                self.in_tag = false;
                let name = self.tag_name.to_ascii_lowercase();
                match name.trim_end() {
                    "pre" | "textarea" => self.preformatted += 1,
                    "/pre" | "/textarea" => self.preformatted = self.preformatted.saturating_sub(1),
                    _ => {}
                }
            }
            (' ', None) => {
                self.break_at = Some(at);
                // The name ends at the first space; a longer one is no tag we track.
                self.tag_name.push(' ');
            }
            (c, None) if !self.tag_name.contains(' ') && self.tag_name.len() < 10 => {
                self.tag_name.push(c);
            }
            _ => {}
        }
    }
}

/// An address already parsed as [`EmailAddress`] is one lettre accepts too.
fn lettre_address(email: &EmailAddress) -> Result<lettre::Address, Error> {
    email
        .as_str()
        .parse()
        .map_err(|e| Error::Internal(format!("{email}: {e}")))
}

/// An ASCII word longer than this is not left to lettre, which writes it whole,
/// on one line, whatever its length.
const LONGEST_WORD: usize = 900;

/// The Subject field. lettre writes a word of printable ASCII as it is, so a
/// word that reads as an RFC 2047 encoded word (`=?utf-8?q?…?=`) would reach the
/// reader decoded, and a very long one would make a line longer than the wire
/// takes: such a subject is written as encoded words of its own.
fn subject_field(subject: &str) -> HeaderValue {
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
fn to_field(name: &str, address: lettre::Address) -> HeaderValue {
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

fn raw(name: &'static str, value: String) -> HeaderValue {
    // `HeaderValue::new` encodes non-ASCII words (RFC 2047) and folds long lines.
    HeaderValue::new(HeaderName::new_from_ascii_str(name), one_line(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(fold: Fold, text: &str) -> String {
        Lines::new(fold).write(text)
    }

    fn longest_line(text: &str) -> usize {
        text.split("\r\n").map(str::len).max().unwrap_or(0)
    }

    #[test]
    fn line_ends_become_crlf() {
        assert_eq!(wire(Fold::Never, "a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
    }

    #[test]
    fn long_html_breaks_between_attributes_and_words_but_not_in_pre_or_quotes() {
        let words = "한국어 문장이 길게 이어진다. ".repeat(60);
        let html = format!("<p style=\"margin: 0 0 1em 0\">{words}</p>");
        let out = wire(Fold::InTagsAndText, &html);
        assert!(longest_line(&out) <= MAX_LINE, "{}", longest_line(&out));
        // A break stands where a space stood, and nowhere else.
        assert_eq!(out.replace("\r\n", " "), html);
        assert!(out.contains("style=\"margin: 0 0 1em 0\""));

        let pre = format!("<pre>{words}</pre>");
        assert_eq!(wire(Fold::InTagsAndText, &pre), pre);
        // Styled white-space: only between attributes.
        let tags = "<a href=\"/x\" class=\"k\" title=\"t\">가</a>".repeat(40);
        let out = wire(Fold::InTags, &tags);
        assert!(longest_line(&out) <= MAX_LINE);
        assert_eq!(out.replace("\r\n", " "), tags);
        assert!(!out.contains("가\r\n"));
        assert_eq!(wire(Fold::InTags, &words), words);
    }

    #[test]
    fn a_break_point_before_a_field_is_not_used_after_it() {
        let mut lines = Lines::new(Fold::InTagsAndText);
        let before = lines.write(&format!("{} 가", "a".repeat(800)));
        let after = lines.write(&"b".repeat(300));
        assert_eq!(before, format!("{} 가", "a".repeat(800)));
        assert_eq!(after, "b".repeat(300));
    }

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
