//! RFC 3464 delivery status notifications: a per-message block, then one block of
//! `Name: value` fields per recipient (`Final-Recipient`, `Action`, `Status`,
//! `Diagnostic-Code`), separated by blank lines.

use super::mime::{blocks, Mail};
use super::status::StatusCode;
use super::{address_in, join_words, prose, Action, Recipient, Report};

/// The DSN in a message: its `message/delivery-status` part, or DSN fields an MTA
/// wrote into a text part instead.
pub fn find(mail: &Mail<'_>) -> Option<Report> {
    let fields = mail
        .part_text(&["message/delivery-status", "message/global-delivery-status"])
        .or_else(|| {
            let text = mail.notice_text();
            let lower = text.to_ascii_lowercase();
            (lower.contains("final-recipient:") || lower.contains("original-recipient:"))
                .then_some(text)
        })?;
    let mut recipients = read_fields(&fields);
    if recipients.is_empty() {
        return None;
    }
    // Some MTAs put the words in the notice, not in `Diagnostic-Code`.
    let notice = mail.notice_text();
    for r in &mut recipients {
        let Some(address) = r.address.clone() else {
            continue;
        };
        let command = prose::command_answered(&notice);
        if let Some(words) = prose::words_about(&notice, address.as_str()) {
            if r.diagnostic.is_none() {
                *r = Recipient::new(r.address.clone(), r.action, r.status, Some(words.clone()));
            }
            // The notice may say which command the reply answered; the DSN does not.
            r.reclassify(&join_words(&[&words, command.as_deref().unwrap_or("")]));
        } else if let Some(command) = command {
            r.reclassify(&command);
        }
    }
    Some(Report::from_recipients(recipients))
}

/// One recipient per block that names one.
pub fn read_fields(text: &str) -> Vec<Recipient> {
    let mut out = Vec::new();
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
    }
    // Some MTAs repeat a recipient; keep its first block.
    let mut seen = Vec::new();
    out.retain(|r| {
        let key = r.address.as_ref().map(|a| a.key());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
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
