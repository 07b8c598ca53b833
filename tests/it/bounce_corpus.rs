//! The reader against 295 real, labelled bounces, complaints and auto-replies
//! from many MTAs (tests/data/bounces, BSD-2-Clause, from sisimai/set-of-emails).
//!
//! A file is right when the kind, the number of recipients, every recipient
//! address the label gives, hard versus soft, and the status class (2, 4 or 5)
//! all agree. The labels come from Sisimai, which files a delay warning as a
//! soft bounce; posthorn calls it a `delay` (recorded, never counted), and that
//! is taken as agreeing. Addresses Sisimai invents for reports that name none
//! (`…@libsisimai.org.invalid`) are not compared.

use std::path::Path;

use posthorn::bounces::{self, ReportKind, Tracks};
use serde_json::Value;

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bounces")
}

/// One file's reading against its label.
#[derive(Default)]
struct Verdict {
    /// What is wrong, or nothing.
    wrong: Vec<String>,
    /// Recipients whose reason agrees with the label, of those compared.
    reasons_right: usize,
    reasons: usize,
    /// A report that is not an auto-reply was read as one.
    false_auto_reply: bool,
}

/// What is wrong with one file's reading, or nothing.
fn check(raw: &[u8], want: &Value) -> Verdict {
    let report = match bounces::read(raw, &Tracks::default()) {
        Ok(r) => r,
        Err(e) => {
            return Verdict {
                wrong: vec![format!("not read: {e}")],
                ..Verdict::default()
            }
        }
    };
    let mut verdict = Verdict::default();
    let mut wrong = Vec::new();
    let want_kind = want["kind"].as_str().unwrap_or("");
    let kind_ok =
        report.kind == want_kind || (report.kind == ReportKind::Delay && want_kind == "bounce");
    if !kind_ok {
        wrong.push(format!("kind {} (want {want_kind})", report.kind));
    }
    verdict.false_auto_reply = report.kind == ReportKind::AutoReply && want_kind != "auto-reply";
    if !matches!(want_kind, "bounce" | "complaint") {
        verdict.wrong = wrong;
        return verdict;
    }
    let want_recipients = want["recipients"].as_array().cloned().unwrap_or_default();
    if report.recipients.len() != want_recipients.len() {
        wrong.push(format!(
            "{} recipients {:?} (want {})",
            report.recipients.len(),
            report
                .recipients
                .iter()
                .map(|r| r.address.as_ref().map(|a| a.to_string()))
                .collect::<Vec<_>>(),
            want_recipients.len()
        ));
        verdict.wrong = wrong;
        return verdict;
    }
    for w in &want_recipients {
        let address = w["address"].as_str().filter(|a| !a.ends_with(".invalid"));
        let got = match address {
            Some(a) => report.recipients.iter().find(|r| {
                r.address
                    .as_ref()
                    .is_some_and(|x| x.key() == a.to_ascii_lowercase())
            }),
            None => report.recipients.first(),
        };
        let Some(got) = got else {
            wrong.push(format!("{} missing", address.unwrap_or("?")));
            continue;
        };
        let want_reason = w["reason"].as_str().unwrap_or("");
        verdict.reasons += 1;
        if got.reason.as_str() == want_reason {
            verdict.reasons_right += 1;
        }
        let hard = w["hard"].as_bool().unwrap_or(false);
        if got.hard != hard {
            wrong.push(format!(
                "{}: hard {} (want {hard}, {want_reason}; read {}) status {:?} diag {:?}",
                address.unwrap_or("?"),
                got.hard,
                got.reason,
                got.status.map(|s| s.to_string()),
                got.diagnostic
            ));
        }
        let want_class = w["status"].as_str().and_then(|s| s.chars().next());
        let got_class = got
            .status
            .map(|s| s.to_string())
            .and_then(|s| s.chars().next());
        if want_class.is_some() && want_class != got_class {
            wrong.push(format!(
                "{}: status {:?} (want {:?}) diag {:?}",
                address.unwrap_or("?"),
                got.status.map(|s| s.to_string()),
                w["status"],
                got.diagnostic
            ));
        }
        if want_kind == "complaint"
            && w["feedback_type"].as_str() != report.feedback_type.as_deref()
        {
            wrong.push(format!(
                "feedback type {:?} (want {})",
                report.feedback_type, w["feedback_type"]
            ));
        }
    }
    verdict.wrong = wrong;
    verdict
}

/// Which half of the corpus a file is in: the parity of the FNV-1a hash of its
/// name. A fixed rule that ignores the order of names, so every MTA's files land
/// in both halves; rules are tuned on one half and measured on the other.
fn half(name: &str) -> usize {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (hash & 1) as usize
}

/// Files entirely right, and reasons right, over some of the corpus.
#[derive(Default)]
struct Tally {
    files: usize,
    right: usize,
    reasons: usize,
    reasons_right: usize,
}

impl Tally {
    fn add(&mut self, verdict: &Verdict) {
        self.files += 1;
        self.right += usize::from(verdict.wrong.is_empty());
        self.reasons += verdict.reasons;
        self.reasons_right += verdict.reasons_right;
    }

    fn score(&self) -> f64 {
        self.right as f64 * 100.0 / self.files.max(1) as f64
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name}: {} of {} files entirely right ({:.1} %), reasons {} of {} ({:.1} %)",
            self.right,
            self.files,
            self.score(),
            self.reasons_right,
            self.reasons,
            self.reasons_right as f64 * 100.0 / self.reasons.max(1) as f64
        )
    }
}

#[test]
fn the_reader_gets_the_labelled_corpus_right() {
    let dir = corpus();
    let expected: Value = serde_json::from_slice(
        &std::fs::read(dir.join("expected.json")).expect("expected.json is in the repo"),
    )
    .expect("expected.json is JSON");
    let expected = expected.as_object().expect("an object of files");
    assert_eq!(expected.len(), 295, "the whole corpus is in the repo");
    let mut halves = [Tally::default(), Tally::default()];
    let mut whole = Tally::default();
    let mut report = String::new();
    let mut false_auto_replies = Vec::new();
    for (name, want) in expected {
        let raw = std::fs::read(dir.join("emails").join(name)).expect("every labelled file exists");
        let verdict = check(&raw, want);
        halves[half(name)].add(&verdict);
        whole.add(&verdict);
        if verdict.false_auto_reply {
            false_auto_replies.push(name.clone());
        }
        if !verdict.wrong.is_empty() {
            report.push_str(&format!(
                "  [{}] {name}: {}\n",
                ["A", "B"][half(name)],
                verdict.wrong.join("; ")
            ));
        }
    }
    println!(
        "bounce corpus\n  {}\n  {}\n  {}\n{report}",
        halves[0].line("half A"),
        halves[1].line("half B"),
        whole.line("whole "),
    );
    assert!(
        false_auto_replies.is_empty(),
        "reports read as auto-replies: {false_auto_replies:?}"
    );
    // Floors at what the reader reaches, so it does not slip.
    for (tally, floor, name) in [
        (&halves[0], 97.9, "half A"),
        (&halves[1], 94.4, "half B"),
        (&whole, 96.2, "the whole"),
    ] {
        let score = tally.score();
        assert!(
            score >= floor,
            "{name} below {floor} %: {score:.1} %\n{report}"
        );
    }
}

#[test]
fn no_auto_reply_in_the_corpus_is_read_as_a_bounce() {
    let dir = corpus().join("emails");
    for name in ["rfc3834-01.eml", "rfc3834-03.eml", "rfc3834-05.eml"] {
        let raw = std::fs::read(dir.join(name)).expect("file exists");
        let report = bounces::read(&raw, &Tracks::default()).expect("readable");
        assert_eq!(report.kind, ReportKind::AutoReply, "{name}");
        assert!(report.recipients.is_empty(), "{name}");
    }
}
