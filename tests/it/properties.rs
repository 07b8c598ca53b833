//! Properties of what posthorn writes, over arbitrary input.
//!
//! A laid-out message never lets a subject, a subscriber's name or a body end
//! a header line early: whatever they hold (CR, LF, non-ASCII, words longer than
//! a line, `:` and text that looks like a header field), the message read back
//! with a MIME parser has exactly the header fields posthorn wrote, the subject
//! and the recipient as they went in, and no line over 998 octets. The checks
//! are in `message_checks`, shared with the `message_layout` fuzz target.

use proptest::prelude::*;

use crate::message_checks::{check, Fields};

/// Pieces that have broken mail writers before.
fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\r\n".to_string()),
        Just("\r".to_string()),
        Just("\n".to_string()),
        Just("\r\n\r\n".to_string()),
        Just("\t".to_string()),
        Just(" ".to_string()),
        Just(": ".to_string()),
        Just("\r\nBcc: victim@example.net".to_string()),
        Just("\nSubject: another".to_string()),
        Just("To: x@example.org".to_string()),
        Just("Content-Type: text/html".to_string()),
        Just("=?utf-8?q?encoded?=".to_string()),
        Just("=?UTF-8?B?7ZWc6riA?=".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("<a@example.com>".to_string()),
        Just(", b@example.com".to_string()),
        Just("group: c@example.com;".to_string()),
        Just("(comment)".to_string()),
        Just("\u{E000}name\u{E001}".to_string()),
        Just("\u{E000}email\u{E001}".to_string()),
        Just("\u{E000}unsubscribe\u{E001}".to_string()),
        Just("--".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{a0}".to_string()),
        Just("\u{2028}".to_string()),
        Just("\0".to_string()),
        Just("<pre>".to_string()),
        Just("</pre>".to_string()),
        (1usize..1200).prop_map(|n| "x".repeat(n)),
        (1usize..500).prop_map(|n| "가".repeat(n)),
        (1usize..300).prop_map(|n| "😀".repeat(n)),
        (1usize..120).prop_map(|n| "word ".repeat(n)),
    ]
}

/// Text made of ordinary words and tricky pieces.
fn text(max_pieces: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => "[a-zA-Z0-9 .,!?'-]{0,12}",
        2 => "[가-힣 ]{0,8}",
        1 => any::<String>(),
        4 => tricky(),
    ];
    prop::collection::vec(piece, 0..max_pieces).prop_map(|pieces| pieces.concat())
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9._+-]{1,20}@[a-z0-9-]{1,12}\\.[a-z]{2,6}",
        1 => "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[a-zA-Z0-9.-]{1,30}",
        1 => text(4),
    ]
}

fn fields() -> impl Strategy<Value = Fields> {
    (text(10), text(8), address(), text(16), text(16)).prop_map(
        |(subject, name, address, text, html)| Fields {
            subject,
            name,
            address,
            text,
            html,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fields_never_end_a_header_line_early(fields in fields()) {
        check(&fields);
    }
}

#[test]
fn header_like_fields_stay_inside_their_header() {
    check(&Fields {
        subject: "Re: hi\r\nBcc: victim@example.net\r\n\r\nbody".into(),
        name: "Kim \"Minji\", <x@example.org>: y;\r\nCc: z@example.org".into(),
        address: "minji.kim@example.com".into(),
        text: "a\rb\nc\r\n.\r\nSubject: x\r\n".into(),
        html: format!("<p>{}</p>", "긴 문장 ".repeat(400)),
    });
}

#[test]
fn words_longer_than_a_line_fit_the_wire() {
    for long in ["x".repeat(1200), "가".repeat(700), "=?".repeat(600)] {
        check(&Fields {
            subject: format!("a {long} b"),
            name: long.clone(),
            address: "reader@example.com".into(),
            text: long.clone(),
            html: format!("<p title=\"{long}\">{long}</p>"),
        });
    }
}
