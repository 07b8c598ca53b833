//! Bounces written for people rather than programs: qmail, Exim, old Sendmail,
//! Exchange, Gmail's and Yahoo's prose, and the many MTAs that imitate them.
//!
//! They share a shape, whatever their wording: a notice from the mail system,
//! the failed addresses in it (or in Exim's `X-Failed-Recipients`), the remote
//! server's words near each address, then a copy of the original message. So
//! the reader finds the notice, cuts off the returned copy, and takes each
//! address that is not the sender's with the paragraph around it.

use std::sync::LazyLock;

use regex::Regex;

use super::mime::Mail;
use super::status::{reply_class, StatusCode};
use super::{addresses_in, join_words, Action, Recipient, Report};
use crate::domain::EmailAddress;

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

/// The line where a notice ends and the returned message begins.
static RETURNED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*(
          [-=_*]{2,}.*(original|copy\s+of|below\s+this\s+line|returned|headers?\s+of|undelivered\s+message|message\s+header|attachment|forwarded)
        | (original\s+message|the\s+original|returned\s+message|unsent\s+message)\s+(follows|below|is)
        | (message\s+)?headers?\s+(follows?|below)
        | original\s+message:?\s*$
        | return-path:\s | received:\s+(from|by)\s
        )",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// Lines that carry addresses which are not recipients.
static HEADER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(mail\s+from|to|cc|message-id|in-reply-to|references|received|x-[\w-]+|dkim-signature|from|sender|return-path|reply-to|reporting-mta|remote-mta|arrival-date|date|subject)\s*:",
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
    let full = mail.notice_text();
    let (notice, returned) = cut_returned(&full);
    let looks_like_notice = !failed_header.is_empty()
        || NOTICE.is_match(&from)
        || NOTICE.is_match(&subject)
        || NOTICE.is_match(notice);
    if !looks_like_notice {
        return None;
    }
    let mut addresses: Vec<EmailAddress> =
        failed_header.iter().flat_map(|v| addresses_in(v)).collect();
    if addresses.is_empty() {
        let not_recipients = senders(mail);
        let leading = notice
            .lines()
            .filter(|l| !HEADER_LINE.is_match(l))
            .filter(|line| !ASIDE.is_match(line))
            .flat_map(|line| {
                let head = line
                    .trim_start()
                    .trim_start_matches('<')
                    .to_ascii_lowercase();
                addresses_in(line).into_iter().map(move |a| {
                    let leads = head.starts_with(&a.key());
                    (a, leads)
                })
            })
            // An address that leads its line is a failed recipient even when
            // it is also the sender's (mail to oneself).
            .filter(|(a, leads)| *leads || !not_recipients.contains(&a.key()))
            .collect::<Vec<_>>();
        // Where some addresses lead their lines (`<a@b>: host … said`), those
        // are the list of failures; one named mid-sentence is an aside
        // ("please contact <support@…>").
        let listed = leading.iter().any(|(_, leads)| *leads);
        addresses = leading
            .into_iter()
            .filter(|(_, leads)| *leads || !listed)
            .map(|(a, _)| a)
            .filter(|a| {
                !a.as_str()
                    .to_ascii_lowercase()
                    .starts_with("mailer-daemon@")
            })
            .fold(Vec::new(), |mut all, a| {
                if !all.iter().any(|x: &EmailAddress| x.key() == a.key()) {
                    all.push(a);
                }
                all
            });
    }
    if addresses.is_empty() {
        // Some notices name no address; the returned message's `To` is the recipient.
        let inline = returned
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
    let action = if DELAYED.is_match(notice) {
        Action::Delayed
    } else {
        Action::Failed
    };
    let single = addresses.len() == 1;
    let recipients = addresses
        .into_iter()
        .map(|a| {
            let mut words = words_about(notice, a.as_str()).unwrap_or_default();
            if single && StatusCode::find(&words).is_none() && reply_class(&words).is_none() {
                words = join_words(&[words.as_str(), &coded_lines(notice)]);
            }
            if words.trim().is_empty() {
                // The notice names no address: all of it is about the one recipient.
                words = crate::domain::one_line(notice);
            }
            let words = (!words.trim().is_empty()).then_some(words);
            let command = command_answered(notice);
            let mut r = Recipient::new(Some(a), action, None, words);
            if let Some(command) = command {
                r.reclassify(&command);
            }
            r
        })
        .collect();
    Some(Report::from_recipients(recipients))
}

/// The SMTP command a failing reply answered, as a phrase for the classifier
/// ("in reply to DATA"), when the notice labels it (`SMTP command:` with the
/// command on the same or the next line). Sendmail's transcripts are not read
/// for this: with pipelining, a RCPT refusal is printed after `>>> DATA`.
pub fn command_answered(notice: &str) -> Option<String> {
    let (notice, _) = cut_returned(notice);
    let mut lines = notice.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        let lower = line.to_ascii_lowercase();
        let label = lower.trim_start_matches(|c: char| !c.is_ascii_alphabetic());
        if let Some(rest) = label.strip_prefix("smtp command") {
            let rest = rest.trim_start_matches([':', ' ']);
            let command = if rest.is_empty() {
                lines.peek().copied().unwrap_or("")
            } else {
                rest
            };
            if !command.is_empty() {
                return Some(format!("in reply to {}", verb(command)));
            }
        }
    }
    None
}

/// `RCPT To:<a@b>` → `RCPT TO`, `MAIL From:<…>` → `MAIL FROM`, `DATA` → `DATA`.
fn verb(command: &str) -> String {
    let upper = command.trim().to_ascii_uppercase();
    let head = upper.split(':').next().unwrap_or("");
    head.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The paragraph around each mention of `address` in a notice, and the reply
/// lines that quote it (Sendmail's transcript), without the address line's own
/// boilerplate.
pub fn words_about(notice: &str, address: &str) -> Option<String> {
    let (notice, _) = cut_returned(notice);
    let lines: Vec<&str> = notice.lines().collect();
    let needle = address.to_ascii_lowercase();
    let mut out: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.to_ascii_lowercase().contains(&needle) || HEADER_LINE.is_match(line) {
            continue;
        }
        // An address alone on its line: its reason may be the lines above it.
        if line
            .trim()
            .trim_matches(['<', '>', ':'])
            .eq_ignore_ascii_case(address)
        {
            let above: Vec<&str> = lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.trim().is_empty() && addresses_in(l).is_empty())
                .map(|l| l.trim())
                .collect();
            out.extend(above.into_iter().rev());
        }
        out.push(line.trim());
        for next in lines.iter().skip(i + 1) {
            if next.trim().is_empty() {
                break;
            }
            if addresses_in(next)
                .iter()
                .any(|a| a.as_str().to_ascii_lowercase() != needle)
                && !next.starts_with([' ', '\t'])
            {
                break;
            }
            out.push(next.trim());
        }
    }
    let text = out.join(" ");
    (!text.trim().is_empty()).then_some(text)
}

/// The notice, and the copy of the original message that follows it.
fn cut_returned(text: &str) -> (&str, &str) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && RETURNED.is_match(line) {
            return text.split_at(offset);
        }
        offset += line.len();
    }
    (text, "")
}

/// A returned header block some MTAs indent as a whole.
fn unindent(text: &str) -> String {
    let indent = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .unwrap_or(0);
    text.lines()
        .map(|l| {
            if l.len() >= indent && l[..indent].trim().is_empty() {
                &l[indent..]
            } else {
                l
            }
        })
        .filter(|l| !l.starts_with("From "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines of a notice that quote a server's reply: `550 5.1.1 …`, `said: 554 …`.
fn coded_lines(notice: &str) -> String {
    notice
        .lines()
        .filter(|l| StatusCode::find(l).is_some() || reply_class(l).is_some())
        .filter(|l| !HEADER_LINE.is_match(l))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Addresses that are the report's own or the original sender's, not recipients.
fn senders(mail: &Mail<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["From", "To", "Return-Path", "Sender"] {
        for v in mail.header_texts(name) {
            out.extend(addresses_in(&v).into_iter().map(|a| a.key()));
        }
    }
    if let Some(head) = mail.original_headers() {
        for (name, value) in super::mime::blocks(&head)
            .into_iter()
            .next()
            .unwrap_or_default()
        {
            if ["from", "sender", "return-path", "reply-to"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                out.extend(addresses_in(&value).into_iter().map(|a| a.key()));
            }
        }
    }
    out
}

/// The first address in the returned message's `To`.
fn original_to(headers: &str) -> Option<EmailAddress> {
    super::mime::blocks(headers)
        .into_iter()
        .next()?
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("To"))
        .and_then(|(_, v)| addresses_in(&v).into_iter().next())
}
