//! A mail system's notice, read once: where it ends and the returned message
//! begins, its lines with the addresses each names, and the words about each.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::bounces::status::{reply_class, StatusCode};
use crate::bounces::{
    address_like, addresses_in, clip, MAX_DIAGNOSTIC_BYTES, MAX_LINES, MAX_NOTICE_BYTES,
};
use crate::domain::EmailAddress;

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

/// A mail system's notice, read once: cut from the returned message that
/// follows it, at most `MAX_LINES` lines and `MAX_NOTICE_BYTES` of it, split
/// into lines with the addresses each one names. The words about a recipient
/// come from the lines that name it, not from reading the notice again.
pub struct Notice<'a> {
    /// The notice without the returned message.
    pub text: &'a str,
    /// The copy of the original message after it, when it is inline.
    pub(super) returned: &'a str,
    pub(super) lines: Vec<Line<'a>>,
    /// Each address's key, and the lines (not header lines) that name it, in order.
    mentions: HashMap<String, Vec<usize>>,
    /// The SMTP command the failing reply answered, as a phrase for the
    /// classifier, when the notice labels it.
    pub command: Option<String>,
}

pub(super) struct Line<'a> {
    pub(super) text: &'a str,
    /// The addresses on the line, without repeats, each with its key.
    pub(super) addresses: Vec<(EmailAddress, String)>,
    /// A header line (`To:`, `Received:`…): its addresses are not recipients.
    pub(super) header: bool,
}

impl<'a> Line<'a> {
    fn new(text: &'a str) -> Line<'a> {
        Line {
            text,
            addresses: addresses_in(text)
                .into_iter()
                .map(|a| {
                    let key = a.key();
                    (a, key)
                })
                .collect(),
            header: HEADER_LINE.is_match(text),
        }
    }

    /// The keys of the addresses the line mentions: each address as written,
    /// and the address at the end of a path or a quote (`/var/mail/a@b.c`,
    /// `'a@b.c'`, `host!a@b.c`), where the address ends a longer word.
    fn mentions(&self) -> impl Iterator<Item = String> + '_ {
        address_like(self.text).flat_map(|written| {
            let (local, _) = written.rsplit_once('@').unwrap_or((written, ""));
            let tail = local
                .rfind(|c: char| !c.is_ascii_alphanumeric() && !".-_+".contains(c))
                .map(|cut| written[cut + 1..].to_ascii_lowercase());
            std::iter::once(written.to_ascii_lowercase()).chain(tail)
        })
    }
}

impl<'a> Notice<'a> {
    pub fn new(full: &'a str) -> Notice<'a> {
        let (text, returned) = cut_returned(looked_at(full));
        let lines: Vec<Line<'a>> = text.lines().map(Line::new).collect();
        let mut mentions: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, line) in lines.iter().enumerate().filter(|(_, l)| !l.header) {
            for key in line.mentions() {
                let at = mentions.entry(key).or_default();
                // A line that names an address twice is one mention.
                if at.last() != Some(&i) {
                    at.push(i);
                }
            }
        }
        let command = command_answered(&lines);
        Notice {
            text,
            returned,
            lines,
            mentions,
            command,
        }
    }

    /// The paragraph around each mention of `address`, and the reply lines
    /// that quote it (Sendmail's transcript), without the address line's own
    /// boilerplate. Each line is taken once, and no more than
    /// `MAX_DIAGNOSTIC_BYTES` of them.
    pub fn words_about(&self, address: &EmailAddress) -> Option<String> {
        let key = address.key();
        let mut out = Words::default();
        // Lines before this one were taken already, for an earlier mention.
        let mut taken = 0;
        for &i in self.mentions.get(&key)? {
            if out.full() {
                break;
            }
            if i < taken {
                continue;
            }
            let line = &self.lines[i];
            // An address alone on its line: its reason may be the lines above it.
            if line
                .text
                .trim()
                .trim_matches(['<', '>', ':'])
                .eq_ignore_ascii_case(address.as_str())
            {
                let mut start = i;
                let mut room = out.room();
                while start > taken && room > 0 {
                    let above = &self.lines[start - 1];
                    let words = above.text.trim();
                    if words.is_empty() || !above.addresses.is_empty() {
                        break;
                    }
                    room = room.saturating_sub(words.len() + 1);
                    start -= 1;
                }
                for above in &self.lines[start..i] {
                    out.push(above.text.trim());
                }
            }
            out.push(line.text.trim());
            let mut next = i + 1;
            while let Some(line) = self.lines.get(next) {
                if out.full() || line.text.trim().is_empty() {
                    break;
                }
                if line.addresses.iter().any(|(_, k)| *k != key)
                    && !line.text.starts_with([' ', '\t'])
                {
                    break;
                }
                out.push(line.text.trim());
                next += 1;
            }
            taken = next;
        }
        let text = out.0;
        (!text.trim().is_empty()).then_some(text)
    }

    /// Lines that quote a server's reply: `550 5.1.1 …`, `said: 554 …`.
    pub(super) fn coded_lines(&self) -> String {
        let mut out = Words::default();
        let coded = self
            .lines
            .iter()
            .filter(|l| !l.header)
            .filter(|l| StatusCode::find(l.text).is_some() || reply_class(l.text).is_some());
        for line in coded {
            if out.full() {
                break;
            }
            out.push(line.text.trim());
        }
        out.0
    }
}

/// Words put together, at most `MAX_DIAGNOSTIC_BYTES` of them.
#[derive(Default)]
struct Words(String);

impl Words {
    /// The bytes the next words may have, after the space before them.
    fn room(&self) -> usize {
        MAX_DIAGNOSTIC_BYTES.saturating_sub(self.0.len() + usize::from(!self.0.is_empty()))
    }

    fn full(&self) -> bool {
        self.room() == 0
    }

    /// Adds `words`, or as much of them as fits.
    fn push(&mut self, words: &str) {
        let room = self.room();
        if room == 0 {
            return;
        }
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(clip(words, room));
    }
}

/// The first `MAX_LINES` lines of `text`, and at most `MAX_NOTICE_BYTES`.
fn looked_at(text: &str) -> &str {
    let text = clip(text, MAX_NOTICE_BYTES);
    match text.match_indices('\n').nth(MAX_LINES - 1) {
        Some((end, _)) => &text[..=end],
        None => text,
    }
}

/// Whether `text` starts with `prefix`, whatever the case of ASCII letters.
pub(super) fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The SMTP command a failing reply answered, as a phrase for the classifier
/// ("in reply to DATA"), when the notice labels it (`SMTP command:` with the
/// command on the same or the next line). Sendmail's transcripts are not read
/// for this: with pipelining, a RCPT refusal is printed after `>>> DATA`.
fn command_answered(lines: &[Line<'_>]) -> Option<String> {
    const LABEL: &str = "smtp command";
    for (i, line) in lines.iter().enumerate() {
        let label = line
            .text
            .trim()
            .trim_start_matches(|c: char| !c.is_ascii_alphabetic());
        if !starts_with_ignoring_case(label, LABEL) {
            continue;
        }
        let rest = label[LABEL.len()..].trim_start_matches([':', ' ']);
        let command = if rest.is_empty() {
            lines.get(i + 1).map_or("", |next| next.text.trim())
        } else {
            rest
        };
        if !command.is_empty() {
            return Some(format!("in reply to {}", verb(command)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn address(s: &str) -> EmailAddress {
        EmailAddress::parse(s).expect("an address")
    }

    #[test]
    fn a_paragraph_that_names_its_address_twice_is_taken_once() {
        let notice = Notice::new(
            "<a@example.org>: host mx.example.org said:\n    \
             550 5.1.1 <a@example.org>: user unknown\n    \
             (in reply to RCPT TO command)\n\n\
             <b@example.org>: mailbox full\n",
        );
        assert_eq!(
            notice.words_about(&address("a@example.org")).as_deref(),
            Some(
                "<a@example.org>: host mx.example.org said: \
                 550 5.1.1 <a@example.org>: user unknown (in reply to RCPT TO command)"
            )
        );
        assert_eq!(
            notice.words_about(&address("b@example.org")).as_deref(),
            Some("<b@example.org>: mailbox full")
        );
    }

    #[test]
    fn an_address_ending_a_path_or_a_quote_is_a_mention_and_a_longer_one_is_not() {
        let notice = Notice::new(
            "b@example.org: failed\n\n\
             cannot read /home/b/.forward/b@example.org: no such file\n\n\
             jimb@example.org: another one\n",
        );
        let words = notice
            .words_about(&address("b@example.org"))
            .unwrap_or_default();
        assert!(words.contains("no such file"), "{words}");
        assert!(!words.contains("another one"), "{words}");
    }

    #[test]
    fn the_words_about_an_address_stop_at_the_cap() {
        let line = "a@example.org: 550 5.1.1 user unknown, and more words\n";
        let text = line.repeat(1_000);
        let notice = Notice::new(&text);
        let words = notice
            .words_about(&address("a@example.org"))
            .unwrap_or_default();
        assert!(words.len() <= MAX_DIAGNOSTIC_BYTES, "{}", words.len());
        assert!(words.starts_with(line.trim()));
    }

    #[test]
    fn the_command_a_reply_answered_is_read_from_the_label() {
        let notice =
            Notice::new("Remote-MTA: mx.example.org\nSMTP command:\n  RCPT To:<a@example.org>\n");
        assert_eq!(notice.command.as_deref(), Some("in reply to RCPT TO"));
    }
}
