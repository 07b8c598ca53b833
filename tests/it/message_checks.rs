//! What every laid-out message must be, whatever its subject, recipient and
//! bodies: each line ends in CRLF and fits in 998 octets, and, read back with a
//! real MIME parser, it has exactly the header fields posthorn wrote, once each,
//! with the subject and the recipient as they went in.
//!
//! Shared by the property test, the `message_layout` fuzz target (which
//! includes this file by path) and that target's regression inputs.

use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use mail_parser::{Address, MessageParser};
use posthorn::config::Config;
use posthorn::delivery::message::transactional;
use posthorn::delivery::{Addressee, BodyEncoding, PreparedIssue};
use posthorn::domain::{one_line, EmailAddress};
use posthorn::links::Links;
use posthorn::render::email::{EmailBodies, Personalizable, ReaderFields};
use posthorn::tokens::Tokens;

/// RFC 5322 §2.1.1: at most 998 octets a line, not counting the CRLF.
pub const MAX_LINE: usize = 998;

/// Separates the fields of a fuzz input: never part of UTF-8 text.
pub const SEPARATOR: u8 = 0xFF;

/// The header fields of an issue, each exactly once, and no others.
const ISSUE_HEADERS: &[&str] = &[
    "date",
    "message-id",
    "to",
    "list-unsubscribe",
    "subject",
    "list-id",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
    "from",
];

/// The header fields of a one-off message such as a confirmation request.
const TRANSACTIONAL_HEADERS: &[&str] = &[
    "date",
    "message-id",
    "to",
    "subject",
    "mime-version",
    "content-type",
    "from",
];

const SUBSCRIBER_ID: i64 = 7;

/// What comes from outside into one message.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub subject: String,
    /// The subscriber's name, as typed into the subscribe form.
    pub name: String,
    /// The subscriber's address; one that posthorn would refuse is replaced.
    pub address: String,
    /// The bodies may carry the per-subscriber field markers.
    pub text: String,
    pub html: String,
}

impl Fields {
    /// Five fields separated by [`SEPARATOR`] bytes; missing ones are empty.
    pub fn from_bytes(data: &[u8]) -> Fields {
        let mut fields = data
            .split(|b| *b == SEPARATOR)
            .map(|f| String::from_utf8_lossy(f).into_owned());
        let mut next = || fields.next().unwrap_or_default();
        Fields {
            subject: next(),
            name: next(),
            address: next(),
            text: next(),
            html: next(),
        }
    }
}

struct Site {
    config: Config,
    links: Links,
}

static SITE: LazyLock<Site> = LazyLock::new(|| {
    let config = Config::from_toml_str(
        r#"
[site]
title = "느린 편지"
base_url = "https://essays.example.com"
author = "Jerry"
timezone = "Asia/Seoul"
language = "ko"

[email]
from = "Jerry <essays@example.com>"

[bounces]
return_path = "bounces@example.com"
"#,
        Path::new("config.toml"),
    )
    .expect("the test config");
    let links = Links::new(&config, Tokens::new(b"0123456789abcdef"));
    Site { config, links }
});

/// What the parsed message must say.
struct Expected<'a> {
    headers: &'a [&'a str],
    subject: String,
    to_name: String,
    to_address: &'a str,
    text: String,
    html: String,
}

/// Lays out an issue and a one-off message from `fields`, in 8bit and in base64,
/// and panics, saying why, at the first thing wrong with any of them.
pub fn check(fields: &Fields) {
    let site = &*SITE;
    let fallback = EmailAddress::parse("reader@example.com").expect("a fixed address");
    let email = EmailAddress::parse(&fields.address).unwrap_or(fallback);
    let text = Personalizable::literal(&fields.text);
    let html = Personalizable::literal(&fields.html);
    let bodies = EmailBodies {
        text: text.clone(),
        html: html.clone(),
    };
    let issue = PreparedIssue::new(&site.config, &site.links, 42, &fields.subject, bodies, None);
    let to = Addressee {
        subscriber_id: SUBSCRIBER_ID,
        email: &email,
        name: &fields.name,
    };
    let name = one_line(&fields.name);
    let unsubscribe_url = site.links.unsubscribe(SUBSCRIBER_ID);
    let preferences_url = site.links.preferences(SUBSCRIBER_ID);
    let recipient = ReaderFields {
        email: email.as_str(),
        name: &name,
        unsubscribe_url: &unsubscribe_url,
        preferences_url: &preferences_url,
        tag: "",
    };
    let date = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for encoding in [BodyEncoding::EightBit, BodyEncoding::Base64] {
        let out = issue
            .message_for(&to, date, encoding)
            .unwrap_or_else(|e| panic!("no message for {email}, accepted as an address: {e}"));
        check_message(
            &out.text,
            &Expected {
                headers: ISSUE_HEADERS,
                subject: one_line(&fields.subject),
                to_name: name.clone(),
                to_address: email.as_str(),
                text: body_as_read(&text, &recipient, false),
                html: body_as_read(&html, &recipient, true),
            },
        );
    }

    let out = transactional(
        &site.config,
        None,
        &email,
        &fields.subject,
        fields.text.clone(),
        fields.html.clone(),
    )
    .unwrap_or_else(|e| panic!("no one-off message for {email}: {e}"));
    let none = ReaderFields {
        email: "",
        name: "",
        unsubscribe_url: "",
        preferences_url: "",
        tag: "",
    };
    check_message(
        &out.text,
        &Expected {
            headers: TRANSACTIONAL_HEADERS,
            subject: one_line(&fields.subject),
            to_name: String::new(),
            to_address: email.as_str(),
            text: body_as_read(&text, &none, false),
            html: body_as_read(&html, &none, true),
        },
    );
}

/// Every line break (CRLF, CR or LF) as LF.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// A body as a reader's client should show it: filled for the recipient, line
/// breaks as LF, no trailing line breaks. An HTML body may be folded at a
/// space, so there every line break counts as a space, and trailing ones none.
fn body_as_read(body: &Personalizable, recipient: &ReaderFields<'_>, html: bool) -> String {
    let filled = body.map_literals(lf).fill(recipient, html);
    comparable(&filled, html)
}

fn comparable(body: &str, html: bool) -> String {
    let body = lf(body);
    if html {
        // A fold at a trailing space leaves a trailing line break.
        body.replace('\n', " ").trim_end_matches(' ').to_string()
    } else {
        body.trim_end_matches('\n').to_string()
    }
}

fn check_message(text: &str, want: &Expected<'_>) {
    let wire = text.as_bytes();
    assert!(text.ends_with("\r\n"), "the message does not end in CRLF");
    for (i, line) in text.split("\r\n").enumerate() {
        assert!(
            !line.contains(['\r', '\n']),
            "line {} has a bare CR or LF: {line:?}",
            i + 1
        );
        assert!(
            line.len() <= MAX_LINE,
            "line {} is {} octets: {:?}…",
            i + 1,
            line.len(),
            line.chars().take(80).collect::<String>()
        );
    }

    let message = MessageParser::default()
        .parse(wire)
        .unwrap_or_else(|| panic!("not a message:\n{text}"));
    let mut names: Vec<String> = message
        .headers()
        .iter()
        .map(|h| h.name.as_str().to_ascii_lowercase())
        .collect();
    names.sort();
    let mut wanted: Vec<String> = want.headers.iter().map(|h| h.to_string()).collect();
    wanted.sort();
    assert_eq!(names, wanted, "header fields of\n{text}");

    assert_eq!(
        message.subject().unwrap_or(""),
        want.subject,
        "Subject of\n{text}"
    );

    let to = message.to().unwrap_or_else(|| panic!("no To in\n{text}"));
    let Address::List(to) = to else {
        panic!("To is a group: {to:?}\n{text}");
    };
    assert_eq!(to.len(), 1, "To names {} mailboxes: {to:?}", to.len());
    assert_eq!(
        to[0].address().unwrap_or(""),
        want.to_address,
        "To address in\n{text}"
    );
    assert_eq!(
        to[0].name().unwrap_or(""),
        want.to_name,
        "To name in\n{text}"
    );

    let from = message.from().and_then(|f| f.as_list()).unwrap_or_default();
    assert_eq!(from.len(), 1, "From: {from:?}");
    assert_eq!(from[0].address(), Some("essays@example.com"), "From");

    assert_eq!(message.parts.len(), 3, "parts of\n{text}");
    assert_eq!(
        (message.text_body.len(), message.html_body.len()),
        (1, 1),
        "a text and an HTML part in\n{text}"
    );
    assert!(message.attachments.is_empty(), "attachments in\n{text}");
    let text_part = message.body_text(0).unwrap_or_default();
    assert_eq!(
        comparable(&text_part, false),
        want.text,
        "the text part of\n{text}"
    );
    let html_part = message.body_html(0).unwrap_or_default();
    assert_eq!(
        comparable(&html_part, true),
        want.html,
        "the HTML part of\n{text}"
    );
}
