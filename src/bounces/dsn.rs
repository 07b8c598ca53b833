//! RFC 3464 delivery status notifications: a per-message block, then one block of
//! `Name: value` fields per recipient (`Final-Recipient`, `Action`, `Status`,
//! `Diagnostic-Code`), separated by blank lines.

use std::collections::HashSet;

use super::mime::{blocks, Mail};
use super::shape::Writer;
use super::status::StatusCode;
use super::{address_in, join_words, prose, Action, Context, Recipient, Report, MAX_RECIPIENTS};

/// The DSN in a message: its `message/delivery-status` part, or DSN fields an MTA
/// wrote into a text part instead.
pub fn find(mail: &Mail<'_>) -> Option<Report> {
    let fields = mail
        .part_text(&["message/delivery-status", "message/global-delivery-status"])
        .or_else(|| {
            let text = mail.notice_text();
            let lower = text.to_ascii_lowercase();
            (lower.contains("final-recipient:") || lower.contains("original-recipient:"))
                .then(|| text.to_string())
        })?;
    let mut recipients = read_fields(&fields);
    if recipients.is_empty() {
        return None;
    }
    // Some MTAs put the words in the notice, not in `Diagnostic-Code`. The
    // notice is read once for all the recipients.
    let notice = prose::Notice::new(mail.notice_text());
    let writer = Writer::of(mail);
    for r in &mut recipients {
        let Some(address) = r.address.clone() else {
            continue;
        };
        let command = notice.command.as_deref();
        if let Some(words) = notice.words_about(&address) {
            // The notice may say which command the reply answered; the DSN does not.
            let more = join_words(&[&words, command.unwrap_or("")]);
            let context = Context {
                words: &more,
                writer,
            };
            if r.diagnostic.is_none() {
                *r = Recipient::read_with(Some(address), r.action, r.status, Some(words), &context);
            } else {
                r.reclassify(&context);
            }
        } else {
            r.reclassify(&Context {
                words: command.unwrap_or(""),
                writer,
            });
        }
    }
    Some(Report::from_recipients(recipients))
}

/// One recipient per block that names one, the first block of each, at most
/// `MAX_RECIPIENTS`.
pub fn read_fields(text: &str) -> Vec<Recipient> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for block in blocks(text) {
        let get = |name: &str| {
            block
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let address = get("Final-Recipient")
            .and_then(address_in)
            .or_else(|| get("Original-Recipient").and_then(address_in))
            .or_else(|| get("X-Actual-Recipient").and_then(address_in));
        let Some(address) = address else { continue };
        // Some MTAs repeat a recipient; keep its first block.
        if !seen.insert(address.key()) {
            continue;
        }
        let stated = get("Status").and_then(|v| {
            v.split(|c: char| c.is_whitespace() || c == '(')
                .find_map(StatusCode::parse)
        });
        let action = get("Action")
            .and_then(|a| {
                a.split(|c: char| !c.is_ascii_alphabetic())
                    .find(|w| !w.is_empty())
            })
            .and_then(|a| a.to_ascii_lowercase().parse::<Action>().ok())
            .unwrap_or(match stated {
                Some(s) if s.class == 4 => Action::Delayed,
                Some(s) if s.class == 2 => Action::Delivered,
                _ => Action::Failed,
            });
        let diagnostic = get("Diagnostic-Code").map(strip_type);
        out.push(Recipient::new(Some(address), action, stated, diagnostic));
        if out.len() == MAX_RECIPIENTS {
            break;
        }
    }
    out
}

/// `smtp; 550 5.1.1 …` → `550 5.1.1 …`.
fn strip_type(value: &str) -> String {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.trim().contains(' ') && kind.len() < 20 => {
            rest.trim().to_string()
        }
        _ => value.trim().to_string(),
    }
}
