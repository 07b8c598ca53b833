//! Bounces written for people rather than programs: qmail, Exim, old Sendmail,
//! Exchange, Gmail's and Yahoo's prose, and the many MTAs that imitate them.
//!
//! They share a shape, whatever their wording: a notice from the mail system,
//! the failed addresses in it (or in Exim's `X-Failed-Recipients`), the remote
//! server's words near each address, then a copy of the original message. So
//! the reader finds the notice, cuts off the returned copy, and takes each
//! address that is not the sender's with the paragraph around it.

mod notice;

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::mime::{blocks, Mail};
use super::shape::Writer;
use super::status::{reply_class, StatusCode};
use super::{
    address_in, each_address, first_recipients, join_words, one_line_within, Action, Context,
    Recipient, Report, MAX_DIAGNOSTIC_BYTES, MAX_RECIPIENTS,
};
use crate::domain::EmailAddress;
use notice::starts_with_ignoring_case;
pub use notice::Notice;

/// Senders and subjects of mail-system notices.
static NOTICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        mailer-daemon | postmaster | mail\s+delivery | delivery\s+(status\s+)?(notification|failure|failed|report|problem|has\s+failed)
        | undeliver | undelivered | non[\s-]?deliver | returned\s+mail | failure\s+notice | could\s+not\s+be\s+delivered
        | delivery\s+to\s+the\s+following | not\s+delivered | failed\s+delivery | mail\s+system\s+error
        | warning:\s+could\s+not\s+send | returned\s+to\s+sender | rejected | bounce | delayed
        | message\s+(could\s+not|was\s+not|wasn't|couldn't)\s+be\s+delivered | unable\s+to\s+deliver
        | permanent\s+(error|failure|fatal) | temporar(y|ily)\s+(error|failure)
        | post_master | no\s+such\s+user | user\s+unknown | invalid\s+user
        ",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// Lines that name an address for another reason: whom to ask for help, what
/// alias a recipient was expanded from.
static ASIDE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(contact|assistance|generated\s+(from|by)|administrator|for\s+more\s+information|forwarded\s+(from|by)|expanded\s+from)")
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// Words that say the mail system is still trying.
static DELAYED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(has\s+been\s+delayed|will\s+(be\s+)?retr(y|ied)|warning\s+message\s+only|still\s+trying|not\s+yet\s+been\s+delivered|delivery\s+(is\s+)?delayed|do\s+not\s+need\s+to\s+resend)",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// A prose bounce, when the message is a mail system's notice that names at
/// least one failed address.
pub fn read(mail: &Mail<'_>) -> Option<Report> {
    let failed_header = mail.header_texts("X-Failed-Recipients");
    let from = mail.sender_address().unwrap_or_default();
    let subject = mail.decoded_subject().unwrap_or_default();
    let notice = Notice::new(mail.notice_text());
    let looks_like_notice = !failed_header.is_empty()
        || NOTICE.is_match(&from)
        || NOTICE.is_match(&subject)
        || NOTICE.is_match(notice.text);
    if !looks_like_notice {
        return None;
    }
    let mut addresses = first_recipients(failed_header.iter().flat_map(|v| each_address(v)));
    if addresses.is_empty() {
        let not_recipients = senders(mail);
        let leading = notice
            .lines
            .iter()
            .filter(|line| !line.header && !ASIDE.is_match(line.text))
            .flat_map(|line| {
                let head = line.text.trim_start().trim_start_matches('<');
                line.addresses
                    .iter()
                    .map(move |(a, key)| (a, key, starts_with_ignoring_case(head, key)))
            })
            // An address that leads its line is a failed recipient even when
            // it is also the sender's (mail to oneself).
            .filter(|(_, key, leads)| *leads || !not_recipients.contains(*key))
            .collect::<Vec<_>>();
        // Where some addresses lead their lines (`<a@b>: host … said`), those
        // are the list of failures; one named mid-sentence is an aside
        // ("please contact <support@…>").
        let listed = leading.iter().any(|(_, _, leads)| *leads);
        addresses = first_recipients(
            leading
                .into_iter()
                .filter(|(_, key, leads)| (*leads || !listed) && !key.starts_with("mailer-daemon@"))
                .map(|(a, _, _)| a.clone()),
        );
    }
    if addresses.is_empty() {
        // Some notices name no address; the returned message's `To` is the recipient.
        let inline = notice
            .returned
            .trim_start_matches(|c: char| c != '\n')
            .trim_start();
        let headers = mail.original_headers().unwrap_or_else(|| unindent(inline));
        if let Some(to) = original_to(&headers) {
            addresses.push(to);
        }
    }
    if addresses.is_empty() {
        return None;
    }
    let action = if DELAYED.is_match(notice.text) {
        Action::Delayed
    } else {
        Action::Failed
    };
    let single = addresses.len() == 1;
    let writer = Writer::of(mail);
    // Made once, for whichever recipients the notice does not name.
    let mut whole: Option<String> = None;
    let recipients = addresses
        .into_iter()
        .map(|a| {
            let mut words = notice.words_about(&a).unwrap_or_default();
            if single && StatusCode::find(&words).is_none() && reply_class(&words).is_none() {
                words = join_words(&[words.as_str(), &notice.coded_lines()]);
            }
            if words.trim().is_empty() {
                // The notice names no address: all of it is about the one recipient.
                words = whole
                    .get_or_insert_with(|| one_line_within(notice.text, MAX_DIAGNOSTIC_BYTES))
                    .clone();
            }
            let words = (!words.trim().is_empty()).then_some(words);
            let context = Context {
                words: notice.command.as_deref().unwrap_or(""),
                writer,
            };
            Recipient::read_with(Some(a), action, None, words, &context)
        })
        .collect();
    Some(Report::from_recipients(recipients))
}

/// A returned header block some MTAs indent as a whole.
fn unindent(text: &str) -> String {
    let indent = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .unwrap_or(0);
    text.lines()
        .map(|l| match (l.get(..indent), l.get(indent..)) {
            (Some(margin), Some(rest)) if margin.trim().is_empty() => rest,
            _ => l,
        })
        .filter(|l| !l.starts_with("From "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Addresses that are the report's own or the original sender's, not recipients.
fn senders(mail: &Mail<'_>) -> HashSet<String> {
    // A header naming more senders than a report has recipients is not real.
    let keys = |v: &str| {
        each_address(v)
            .take(MAX_RECIPIENTS)
            .map(|a| a.key())
            .collect::<Vec<_>>()
    };
    let mut out = HashSet::new();
    for name in ["From", "To", "Return-Path", "Sender"] {
        for v in mail.header_texts(name) {
            out.extend(keys(&v));
        }
    }
    if let Some(head) = mail.original_headers() {
        for (name, value) in blocks(&head).next().unwrap_or_default() {
            if ["from", "sender", "return-path", "reply-to"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                out.extend(keys(&value));
            }
        }
    }
    out
}

/// The first address in the returned message's `To`.
fn original_to(headers: &str) -> Option<EmailAddress> {
    blocks(headers)
        .next()?
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("To"))
        .and_then(|(_, v)| address_in(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_indented_block_with_wide_characters_is_unindented_without_panicking() {
        assert_eq!(
            unindent("    To: a@example.org\nabcé\n"),
            "To: a@example.org\nabcé"
        );
    }
}
