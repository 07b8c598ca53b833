//! The parts of a report that the readers look at, taken from the MIME tree once.

use std::cell::OnceCell;

use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::{clip, MAX_LINES, MAX_NOTICE_BYTES};

/// A parsed message with the views the readers need.
pub struct Mail<'x> {
    raw: &'x [u8],
    message: mail_parser::Message<'x>,
    /// The notice's text, put together once: every reader looks at it.
    notice: OnceCell<String>,
}

impl<'x> Mail<'x> {
    pub fn parse(raw: &'x [u8]) -> Option<Mail<'x>> {
        let message = MessageParser::default().parse(raw)?;
        // Mail has at least one of the headers every MTA and client writes.
        let known = [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "received",
            "return-path",
            "content-type",
        ];
        let is_mail = message
            .root_part()
            .headers
            .iter()
            .any(|h| known.iter().any(|k| h.name().eq_ignore_ascii_case(k)));
        if !is_mail {
            return None;
        }
        Some(Mail {
            raw,
            message,
            notice: OnceCell::new(),
        })
    }

    /// A top-level header's value as text, unfolded and trimmed.
    pub fn header_text(&self, name: &str) -> Option<&str> {
        self.message
            .root_part()
            .headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .and_then(|h| header_raw(&self.message, h))
            .map(str::trim)
    }

    /// Every value of a top-level header.
    pub fn header_texts(&self, name: &str) -> Vec<String> {
        self.message
            .root_part()
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .filter_map(|h| header_raw(&self.message, h))
            .map(|s| unfold(s.trim()))
            .collect()
    }

    /// The decoded text of the first part (not inside a returned message) whose
    /// type is one of `types`.
    pub fn part_text(&self, types: &[&str]) -> Option<String> {
        self.message.parts.iter().find_map(|part| {
            let t = mime_type(part)?;
            if !types.iter().any(|x| x.eq_ignore_ascii_case(&t)) {
                return None;
            }
            Some(match &part.body {
                PartType::Text(s) | PartType::Html(s) => s.to_string(),
                PartType::Binary(b) | PartType::InlineBinary(b) => {
                    String::from_utf8_lossy(b).into_owned()
                }
                PartType::Message(m) => String::from_utf8_lossy(m.raw_message()).into_owned(),
                PartType::Multipart(_) => return None,
            })
        })
    }

    /// The human-readable notice: the message's own text parts (HTML made text
    /// where there is no plain part), not the returned message.
    pub fn notice_text(&self) -> &str {
        self.notice.get_or_init(|| self.read_notice())
    }

    fn read_notice(&self) -> String {
        let mut text = String::new();
        let mut html = String::new();
        for (i, part) in self.message.parts.iter().enumerate() {
            let t = mime_type(part).unwrap_or_else(|| "text/plain".into());
            let attached = part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
            match &part.body {
                PartType::Text(s) if (t == "text/plain" || i == 0) && !attached => {
                    text.push_str(s);
                    text.push('\n');
                }
                // A multipart part whose boundary line is broken (a header
                // continued without indenting) comes as bytes: its text is
                // still the notice.
                PartType::Binary(b) if t.starts_with("multipart/") && !attached => {
                    text.push_str(&String::from_utf8_lossy(b));
                    text.push('\n');
                }
                PartType::Html(s) if !attached => {
                    html.push_str(s);
                    html.push('\n');
                }
                _ => {}
            }
        }
        if text.trim().is_empty() && !html.is_empty() {
            return html_text(&html);
        }
        text
    }

    /// The headers of the returned original message, as text: a `message/rfc822`
    /// part, a `text/rfc822-headers` part, or nothing.
    pub fn original_headers(&self) -> Option<String> {
        for part in &self.message.parts {
            match (&part.body, mime_type(part).as_deref()) {
                (PartType::Message(m), _) => {
                    let raw = m.raw_message();
                    let end = m.root_part().offset_body as usize;
                    let head = raw.get(..end.min(raw.len())).unwrap_or(raw);
                    return Some(String::from_utf8_lossy(head).into_owned());
                }
                (PartType::Text(s), Some("text/rfc822-headers")) => return Some(s.to_string()),
                (PartType::Binary(b), Some("text/rfc822-headers" | "message/rfc822")) => {
                    return Some(String::from_utf8_lossy(b).into_owned())
                }
                _ => {}
            }
        }
        None
    }

    /// The raw bytes of the first `message/rfc822` part.
    pub fn attached_message(&self) -> Option<&'x [u8]> {
        let raw = self.raw;
        self.message.parts.iter().find_map(|part| match &part.body {
            PartType::Message(_) => raw.get(part.offset_body as usize..part.offset_end as usize),
            _ => None,
        })
    }

    /// RFC 3834 and the common private headers that mark an automatic reply
    /// (vacation, out of office). Auto-generated mail (reports) is not a reply.
    pub fn is_auto_reply(&self) -> bool {
        // A mail system's notice may quote a reader's vacation words; it is
        // still a notice, and reading it as a reply would hide a dead address.
        if self.is_from_mail_system() {
            return false;
        }
        let header = |n: &str| self.header_text(n).map(|v| v.to_ascii_lowercase());
        if header("Auto-Submitted").is_some_and(|v| v.starts_with("auto-replied")) {
            return true;
        }
        if header("X-Autoreply").is_some()
            || header("X-Autorespond").is_some()
            || header("X-Autoresponder").is_some()
            || header("Precedence").is_some_and(|v| v == "auto_reply")
        {
            return true;
        }
        let subject = self.decoded_subject().unwrap_or_default().to_lowercase();
        [
            "auto:",
            "auto reply",
            "autoreply",
            "automatic reply",
            "out of office",
            "away until",
            "vacation",
        ]
        .iter()
        .any(|p| subject.contains(p))
    }

    pub fn decoded_subject(&self) -> Option<String> {
        self.message.subject().map(str::to_string)
    }

    /// Whether a mail system, not a person, sent the message: it has
    /// delivery-status parts or an `X-Failed-Recipients` header, or comes from
    /// MAILER-DAEMON or postmaster. A null return path alone is not enough:
    /// RFC 3834 asks auto-responders to send with one too.
    pub fn is_from_mail_system(&self) -> bool {
        self.sender_address()
            .and_then(|a| {
                a.split_once('@')
                    .map(|(local, _)| local == "mailer-daemon" || local == "postmaster")
            })
            .unwrap_or(false)
            || self.header_text("X-Failed-Recipients").is_some()
            || self
                .part_text(&[
                    "message/delivery-status",
                    "message/global-delivery-status",
                    "message/feedback-report",
                ])
                .is_some()
    }

    /// The sender's address (`From`), lower-cased.
    pub fn sender_address(&self) -> Option<String> {
        self.message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|s| s.to_ascii_lowercase())
    }
}

/// Elements deeper than this are not a mail system's notice (the deepest in
/// the labelled corpus is 23, counting unclosed tags as open). html5ever's
/// tree builder looks through its stack of open elements for each tag, so
/// its time grows with depth times length: deeper HTML has its tags dropped
/// instead.
const MAX_HTML_DEPTH: usize = 100;

/// An HTML notice as text: laid out by html2text, or, when nested too deep
/// for that, with its tags dropped. At most `MAX_NOTICE_BYTES` are read.
fn html_text(html: &str) -> String {
    let html = clip(html, MAX_NOTICE_BYTES);
    if nesting(html) > MAX_HTML_DEPTH {
        return without_tags(html);
    }
    html2text::from_read(html.as_bytes(), 200).unwrap_or_default()
}

/// Elements that never have an end tag.
const VOID_ELEMENTS: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// How deep elements nest, at most, from the tags alone: every start tag
/// but a void element's opens a level, every end tag closes one. Tags left
/// open (`<p>`, `<li>`) count as nesting, so this errs on the deep side.
fn nesting(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest) = (0usize, 0usize);
    for at in memchr::memchr_iter(b'<', bytes) {
        let tag = bytes.get(at + 1..).unwrap_or_default();
        match tag.first() {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(c) if c.is_ascii_alphabetic() => {
                let name = tag
                    .iter()
                    .position(|c| !c.is_ascii_alphanumeric())
                    .map_or(tag, |end| &tag[..end]);
                if !VOID_ELEMENTS
                    .iter()
                    .any(|v| v.as_bytes().eq_ignore_ascii_case(name))
                {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
            }
            _ => {}
        }
    }
    deepest
}

/// HTML's text with its tags and comments dropped, each run of tags a line
/// break, and the common character references decoded.
fn without_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let end = if tag.starts_with("<!--") {
            tag.find("-->").map(|e| e + 3)
        } else {
            tag.find('>').map(|e| e + 1)
        };
        let Some(end) = end else {
            rest = "";
            break;
        };
        if !out.ends_with('\n') {
            out.push('\n');
        }
        rest = &tag[end..];
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn mime_type(part: &mail_parser::MessagePart<'_>) -> Option<String> {
    let ct = part.content_type()?;
    Some(match ct.subtype() {
        Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
        None => ct.ctype().to_ascii_lowercase(),
    })
}

fn header_raw<'a>(
    message: &'a mail_parser::Message<'_>,
    h: &mail_parser::Header<'_>,
) -> Option<&'a str> {
    let raw = message.raw_message();
    let start = h.offset_start() as usize;
    let end = h.offset_end() as usize;
    raw.get(start..end)
        .and_then(|b| std::str::from_utf8(b).ok())
}

/// Joins folded header lines.
pub fn unfold(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Name: value` fields, unfolded, grouped by blank lines, one block at a
/// time: a reader that wants the first block reads no further. At most
/// `MAX_LINES` lines are looked at.
pub fn blocks(text: &str) -> impl Iterator<Item = Vec<(String, String)>> + '_ {
    let mut lines = text.lines().take(MAX_LINES);
    std::iter::from_fn(move || {
        let mut current: Vec<(String, String)> = Vec::new();
        for line in lines.by_ref() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                if !current.is_empty() {
                    return Some(current);
                }
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = current.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim();
                if !name.is_empty() && !name.contains(' ') {
                    current.push((name.to_string(), value.trim().to_string()));
                }
            }
        }
        (!current.is_empty()).then_some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_open_elements_but_not_void_ones() {
        assert_eq!(nesting("<p>a<br>b<img src=x></p><div><b>c</b></div>"), 2);
        assert_eq!(nesting(&"<div>".repeat(500)), 500);
        assert_eq!(nesting("a < b </p></p>"), 0);
    }

    #[test]
    fn html_too_deep_for_a_notice_is_read_without_its_tags() {
        let html = format!(
            "{}550 &lt;a@example.org&gt; user unknown{}",
            "<div>".repeat(MAX_HTML_DEPTH + 1),
            "</div>".repeat(MAX_HTML_DEPTH + 1)
        );
        assert_eq!(html_text(&html).trim(), "550 <a@example.org> user unknown");
    }
}
