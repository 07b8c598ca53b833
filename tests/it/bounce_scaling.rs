//! The bounce reader against hostile mail. Anyone can write to the bounce
//! address, and the mailbox is read inside `serve`, so reading one message
//! must take time in proportion to its size, and what comes out of it must
//! stay small, however many lines or addresses the message repeats.
//!
//! Each shape is read at size n and 2n (the fastest of three readings of
//! each, interleaved, so that a busy machine slows both alike): twice the
//! input may take about twice the time, not four times.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use posthorn::bounces::{self, Report, Tracks};

/// What one report may hold, whatever the message: a real DSN names a
/// handful of recipients, with a few lines of a server's words for each.
const RECIPIENTS_AT_MOST: usize = 100;
const DIAGNOSTIC_BYTES_AT_MOST: usize = 2_000;
const MESSAGE_IDS_AT_MOST: usize = 100;
/// The whole report, as `bounces parse --json` prints it.
const REPORT_BYTES_AT_MOST: usize = 256 * 1024;

/// Doubling the input may at most about double the time; the margin is for
/// a shared machine. Quadratic reading gives 4.
const RATIO_AT_MOST: f64 = 3.0;

/// A measurement over the limit is taken again, once: a busy machine can
/// spoil one, while a quadratic reader is over the limit every time.
const ATTEMPTS: usize = 2;

/// The shapes are timed one at a time, not against each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn tracks() -> Tracks {
    Tracks::new(
        posthorn::config::ReturnPath::parse("bounces@example.com")
            .ok()
            .as_ref(),
        Some("example.com"),
    )
}

/// A mail system's notice in a plain text part, with `body` as its text.
fn notice(body: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\n\
         To: bounces@example.com\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         {body}"
    )
    .into_bytes()
}

/// One address, on every one of `n` lines.
fn one_address_repeated(n: usize) -> Vec<u8> {
    notice(&"<bob@example.org>: 550 5.1.1 user unknown\r\n".repeat(n))
}

/// `n` different addresses, one a line.
fn distinct_addresses(n: usize) -> Vec<u8> {
    notice(
        &(0..n)
            .map(|i| format!("reader{i}@example.org\r\n"))
            .collect::<String>(),
    )
}

/// DSN fields for `n` recipients, written into the notice's text part.
fn dsn_fields(n: usize) -> Vec<u8> {
    notice(
        &(0..n)
            .map(|i| {
                format!(
                    "Final-Recipient: rfc822; reader{i}@example.org\r\n\
                     Action: failed\r\n\
                     Status: 5.1.1\r\n\
                     Diagnostic-Code: smtp; 550 5.1.1 <reader{i}@example.org> user unknown\r\n\
                     \r\n"
                )
            })
            .collect::<String>(),
    )
}

/// `n` different Message-IDs of posthorn's shape, in a reply's text.
fn message_ids(n: usize) -> Vec<u8> {
    let ids: String = (0..n)
        .map(|i| format!("<{i}.{i}.{i:020x}@example.com>\r\n"))
        .collect();
    format!(
        "From: reader@example.org\r\n\
         To: essays@example.com\r\n\
         Subject: Re: this week\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         {ids}"
    )
    .into_bytes()
}

fn read(raw: &[u8], tracks: &Tracks) -> (Duration, Report) {
    let start = Instant::now();
    let report = bounces::read(raw, tracks).expect("a message");
    (start.elapsed(), report)
}

/// The fastest of three readings each of `small` and `large`, and the
/// report on `large`.
fn fastest(small: &[u8], large: &[u8], tracks: &Tracks) -> (Duration, Duration, Report) {
    let (mut t_small, mut t_large) = (Duration::MAX, Duration::MAX);
    let mut report = None;
    for _ in 0..3 {
        t_small = t_small.min(read(small, tracks).0);
        let (t, r) = read(large, tracks);
        t_large = t_large.min(t);
        report = Some(r);
    }
    (t_small, t_large, report.expect("read three times"))
}

/// Reads the shape at n and 2n; checks the times and what came out.
fn scales(shape: &str, make: fn(usize) -> Vec<u8>, n: usize) -> Report {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let tracks = tracks();
    let (small, large) = (make(n), make(2 * n));
    // The reader's patterns are compiled on first use, not timed.
    read(&make(1), &tracks);
    let mut attempts = Vec::new();
    let report = loop {
        let (t_small, t_large, report) = fastest(&small, &large, &tracks);
        let ratio = t_large.as_secs_f64() / t_small.as_secs_f64();
        println!("{shape}: n={n} {t_small:?}, 2n {t_large:?}, ratio {ratio:.2}");
        attempts.push(format!("{t_small:?} and {t_large:?} ({ratio:.1} times)"));
        if ratio <= RATIO_AT_MOST {
            break report;
        }
        assert!(
            attempts.len() < ATTEMPTS,
            "{shape}: reading {n} and {} took {}",
            2 * n,
            attempts.join(", then ")
        );
    };
    assert!(
        report.recipients.len() <= RECIPIENTS_AT_MOST,
        "{shape}: {} recipients",
        report.recipients.len()
    );
    for r in &report.recipients {
        let bytes = r.diagnostic.as_ref().map_or(0, String::len);
        assert!(
            bytes <= DIAGNOSTIC_BYTES_AT_MOST,
            "{shape}: a diagnostic of {bytes} bytes"
        );
    }
    let printed = serde_json::to_string(&report).map_or(0, |json| json.len());
    assert!(
        printed <= REPORT_BYTES_AT_MOST,
        "{shape}: a report of {printed} bytes"
    );
    assert!(
        report.message_ids.len() <= MESSAGE_IDS_AT_MOST,
        "{shape}: {} Message-IDs",
        report.message_ids.len()
    );
    report
}

#[test]
fn one_address_on_every_line_is_read_in_linear_time() {
    let report = scales("one address repeated", one_address_repeated, 1_000);
    assert_eq!(report.recipients.len(), 1);
    let diagnostic = report.recipients[0].diagnostic.as_deref().unwrap_or("");
    assert!(diagnostic.contains("user unknown"), "{diagnostic}");
    assert!(report.recipients[0].hard);
}

#[test]
fn thousands_of_addresses_are_read_in_linear_time() {
    let report = scales("distinct addresses", distinct_addresses, 2_000);
    assert_eq!(report.recipients.len(), RECIPIENTS_AT_MOST);
    assert_eq!(
        report.recipients[0].address.as_ref().map(|a| a.to_string()),
        Some("reader0@example.org".into()),
        "the first ones are kept"
    );
}

#[test]
fn dsn_fields_for_thousands_of_recipients_are_read_in_linear_time() {
    let report = scales("DSN fields", dsn_fields, 1_000);
    assert_eq!(report.recipients.len(), RECIPIENTS_AT_MOST);
    assert!(report.recipients.iter().all(|r| r.hard));
}

#[test]
fn thousands_of_message_ids_are_read_in_linear_time() {
    let report = scales("Message-IDs", message_ids, 20_000);
    assert_eq!(report.message_ids.len(), MESSAGE_IDS_AT_MOST);
    assert_eq!(
        report.message_ids[0].subscriber, 0,
        "the first ones are kept"
    );
}
