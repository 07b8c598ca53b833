//! The multipart/alternative layout of a message, written once per issue and
//! filled in per reader: 8bit where the lines allow it, base64 where not.

use std::ops::Range;
use std::time::SystemTime;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::header::{self, Headers};
use lettre::message::{Mailbox, Mailboxes};

use super::headers::raw;
use super::lines::{Fold, Lines, MAX_LINE};
use super::BodyEncoding;
use crate::delivery::dkim::SplicedBody;
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
    /// For DKIM: the body hash as far as every copy shares it.
    spliced: Option<SplicedBody>,
}

/// One copy, and its relaxed body hash when it was had without hashing it whole.
pub(super) struct Written {
    pub(super) text: String,
    pub(super) body_hash: Option<[u8; 32]>,
}

impl Layout {
    /// `signed`: every copy is DKIM-signed, so the shared part of the body
    /// hash is taken now, once.
    pub(super) fn new(
        from: &Mailbox,
        mut shared: Headers,
        timezone: Tz,
        text: &Personalizable,
        html: &Personalizable,
        signed: bool,
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
        let mut layout = Layout {
            from: from.email.clone(),
            shared: shared.to_string(),
            boundary,
            timezone,
            text: text.map_literals(|s| text_lines.write(s)),
            html: html.map_literals(|s| html_lines.write(s)),
            spliced: None,
        };
        if signed {
            // A copy with every field empty shows what all copies share.
            let none = ReaderFields {
                email: "",
                name: "",
                unsubscribe_url: "",
                preferences_url: "",
                tag: "",
            };
            let (mut body, mut splices) = (String::new(), Vec::new());
            if layout.body(&mut body, &none, BodyEncoding::EightBit, &mut splices) {
                layout.spliced = Some(SplicedBody::new(&body, &splices));
            }
        }
        layout
    }

    /// One copy: the reader's header fields, the shared ones, both parts.
    pub(super) fn write(
        &self,
        own: Headers,
        message_id: &str,
        date: SystemTime,
        reader: &ReaderFields<'_>,
        encoding: BodyEncoding,
    ) -> Written {
        // Room for the DKIM-Signature fields put in front later.
        let mut out = String::with_capacity(self.html.len() + self.text.len() + 4096);
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
        let start = out.len();
        let mut splices = Vec::new();
        let eight_bit = self.body(&mut out, reader, encoding, &mut splices);
        let body_hash = match &self.spliced {
            Some(spliced) if eight_bit => spliced.hash(&out.as_bytes()[start..], &splices),
            _ => None,
        };
        Written {
            text: out,
            body_hash,
        }
    }

    /// Both parts and the closing boundary; `splices` hears where (from the
    /// body's start) the reader's own bytes went. Whether both parts are 8bit.
    fn body(
        &self,
        out: &mut String,
        reader: &ReaderFields<'_>,
        encoding: BodyEncoding,
        splices: &mut Vec<Range<usize>>,
    ) -> bool {
        let start = out.len();
        let text = self.part(
            out,
            start,
            "text/plain",
            &self.text,
            reader,
            false,
            encoding,
            splices,
        );
        let html = self.part(
            out,
            start,
            "text/html",
            &self.html,
            reader,
            true,
            encoding,
            splices,
        );
        out.push_str("--");
        out.push_str(&self.boundary);
        out.push_str("--\r\n");
        text && html
    }

    /// One part; whether it went as 8bit.
    #[allow(clippy::too_many_arguments)]
    fn part(
        &self,
        out: &mut String,
        body_start: usize,
        content_type: &str,
        body: &Personalizable,
        reader: &ReaderFields<'_>,
        html: bool,
        encoding: BodyEncoding,
        splices: &mut Vec<Range<usize>>,
    ) -> bool {
        out.push_str("--");
        out.push_str(&self.boundary);
        out.push_str("\r\nContent-Type: ");
        out.push_str(content_type);
        out.push_str("; charset=utf-8\r\nContent-Transfer-Encoding: ");
        let head = out.len();
        out.push_str("8bit\r\n\r\n");
        let start = out.len();
        let at = |r: Range<usize>| r.start - body_start..r.end - body_start;
        body.fill_into(out, reader, html, |r| splices.push(at(r)));
        // Whether a line end is added depends on the reader's last field.
        let end = out.len();
        if !out.ends_with("\r\n") {
            out.push_str("\r\n");
        }
        splices.push(at(end..out.len()));
        if encoding == BodyEncoding::EightBit && fits_eight_bit(&out.as_bytes()[start..]) {
            return true;
        }
        let filled = out.split_off(start);
        out.truncate(head);
        out.push_str("base64\r\n\r\n");
        push_base64_lines(out, filled.as_bytes());
        false
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
    use std::sync::LazyLock;

    use base64::Engine as _;
    use proptest::prelude::*;

    use super::*;
    use crate::config::DkimConfig;
    use crate::delivery::dkim::tests::text;
    use crate::delivery::dkim::Signer;
    use crate::render::email::Field;

    /// An Ed25519 key, and an RSA-2048 one where `openssl` is installed.
    static SIGNERS: LazyLock<Vec<Signer>> = LazyLock::new(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let settings = DkimConfig {
            domain: "example.com".into(),
            selector: "posthorn".into(),
            private_key_file: std::path::PathBuf::new(),
            second_private_key_file: None,
            second_selector: None,
        };
        let ed = dir.path().join("ed.pem");
        let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .expect("an Ed25519 key");
        let pem = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        std::fs::write(
            &ed,
            format!("-----BEGIN PRIVATE KEY-----\n{pem}\n-----END PRIVATE KEY-----\n"),
        )
        .expect("the key written");
        let mut signers = vec![Signer::load(&settings, &ed, None).expect("the Ed25519 key")];
        let rsa = dir.path().join("rsa.pem");
        let made = std::process::Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&rsa)
            .arg("2048")
            .output()
            .is_ok_and(|o| o.status.success());
        if made {
            signers.push(Signer::load(&settings, &rsa, None).expect("the RSA key"));
        }
        signers
    });

    fn field() -> impl Strategy<Value = Field> {
        prop_oneof![
            Just(Field::Email),
            Just(Field::Name),
            Just(Field::UnsubscribeUrl),
            Just(Field::PreferencesUrl),
        ]
    }

    fn body() -> impl Strategy<Value = Personalizable> {
        (prop::collection::vec((text(6), field()), 0..4), text(6)).prop_map(|(pieces, last)| {
            let pieces: Vec<(&str, Field)> = pieces.iter().map(|(s, f)| (s.as_str(), *f)).collect();
            Personalizable::with_fields(&pieces, &last)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The body hash begun once per issue and carried on per reader signs
        /// each copy exactly as hashing the whole copy does.
        #[test]
        fn each_copy_signs_as_if_its_body_were_hashed_whole(
            text in body(),
            html in body(),
            name in "[가-힣a-z \t]{0,10}",
            email in "[a-z]{1,8}@example\\.com",
        ) {
            let from: Mailbox = "Bench <bench@example.com>".parse().expect("an address");
            let layout = Layout::new(&from, Headers::new(), chrono_tz::Asia::Seoul, &text, &html, true);
            let reader = ReaderFields {
                email: &email,
                name: &name,
                unsubscribe_url: "https://essays.example.com/unsubscribe/7.abc?x=1&y=2",
                preferences_url: "https://essays.example.com/preferences/7.abc",
                tag: "",
            };
            let date = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
            let written = layout.write(Headers::new(), "<1.7.m@example.com>", date, &reader, BodyEncoding::EightBit);
            let eight_bit = !written.text.contains("Content-Transfer-Encoding: base64");
            prop_assert_eq!(written.body_hash.is_some(), eight_bit);
            for signer in SIGNERS.iter() {
                let begun = signer.sign_at(written.text.clone(), written.body_hash, 1_800_000_000).expect("signed");
                let whole = signer.sign_at(written.text.clone(), None, 1_800_000_000).expect("signed");
                prop_assert_eq!(begun, whole);
            }
        }
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
