//! A body's lines made fit for the wire: CRLF line ends, and HTML lines too long
//! for 8bit folded where a break changes nothing a reader sees.

use crate::render::email::Personalizable;

/// RFC 5322's limit is 998 octets a line; a line of the HTML longer than this is
/// folded where a tag allows it.
const FOLD_AT: usize = 900;
pub(super) const MAX_LINE: usize = 998;

/// Where a long line may break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    /// Plain text: never (a line too long sends the part in base64).
    Never,
    /// HTML: at a space between attributes, where a line break means exactly what
    /// the space meant.
    InTags,
    /// HTML that sets no `white-space` style: also at a space in text outside
    /// `<pre>` and `<textarea>`, which a browser reads as the same space.
    InTagsAndText,
}

/// Writes a body's literal text for the wire: every line end CRLF, and a line
/// longer than [`FOLD_AT`] broken where its [`Fold`] allows.
#[derive(Debug, Clone)]
pub(super) struct Lines {
    fold: Fold,
    column: usize,
    in_tag: bool,
    quote: Option<char>,
    tag_name: String,
    /// Open `<pre>` and `<textarea>` elements, where spaces show.
    preformatted: usize,
    /// Where in the current output the last space a line may break at is.
    break_at: Option<usize>,
}

impl Lines {
    pub(super) fn new(fold: Fold) -> Lines {
        Lines {
            fold,
            column: 0,
            in_tag: false,
            quote: None,
            tag_name: String::new(),
            preformatted: 0,
            break_at: None,
        }
    }

    /// The folding an HTML body allows.
    pub(super) fn for_html(html: &Personalizable) -> Lines {
        let styled = html
            .literals()
            .any(|s| s.to_ascii_lowercase().contains("white-space"));
        Lines::new(if styled {
            Fold::InTags
        } else {
            Fold::InTagsAndText
        })
    }

    pub(super) fn write(&mut self, literal: &str) -> String {
        // A break point is a place in this literal's output; one left from the
        // literal before a field is out of reach.
        self.break_at = None;
        let mut out = String::with_capacity(literal.len() + literal.len() / 64);
        let mut chars = literal.chars().peekable();
        while let Some(c) = chars.next() {
            if matches!(c, '\r' | '\n') {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
                self.column = 0;
                self.break_at = None;
                continue;
            }
            if self.fold != Fold::Never {
                self.read_markup(c, out.len());
            }
            out.push(c);
            self.column += c.len_utf8();
            if self.column > FOLD_AT {
                if let Some(at) = self.break_at.take() {
                    out.replace_range(at..at + 1, "\r\n");
                    self.column = out.len() - (at + 2);
                }
            }
        }
        out
    }

    /// Follows tags and quotes to know whether a space at `at` may become a break.
    fn read_markup(&mut self, c: char, at: usize) {
        if !self.in_tag {
            match c {
                '<' => {
                    self.in_tag = true;
                    self.tag_name.clear();
                }
                ' ' if self.fold == Fold::InTagsAndText && self.preformatted == 0 => {
                    self.break_at = Some(at);
                }
                _ => {}
            }
            return;
        }
        match (c, self.quote) {
            ('"' | '\'', None) => self.quote = Some(c),
            (q, Some(open)) if q == open => self.quote = None,
            (_, Some(_)) => {}
            ('>', None) => {
                self.in_tag = false;
                let name = self.tag_name.to_ascii_lowercase();
                match name.trim_end() {
                    "pre" | "textarea" => self.preformatted += 1,
                    "/pre" | "/textarea" => self.preformatted = self.preformatted.saturating_sub(1),
                    _ => {}
                }
            }
            (' ', None) => {
                self.break_at = Some(at);
                // The name ends at the first space; a longer one is no tag we track.
                self.tag_name.push(' ');
            }
            (c, None) if !self.tag_name.contains(' ') && self.tag_name.len() < 10 => {
                self.tag_name.push(c);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(fold: Fold, text: &str) -> String {
        Lines::new(fold).write(text)
    }

    fn longest_line(text: &str) -> usize {
        text.split("\r\n").map(str::len).max().unwrap_or(0)
    }

    #[test]
    fn line_ends_become_crlf() {
        assert_eq!(wire(Fold::Never, "a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
    }

    #[test]
    fn long_html_breaks_between_attributes_and_words_but_not_in_pre_or_quotes() {
        let words = "한국어 문장이 길게 이어진다. ".repeat(60);
        let html = format!("<p style=\"margin: 0 0 1em 0\">{words}</p>");
        let out = wire(Fold::InTagsAndText, &html);
        assert!(longest_line(&out) <= MAX_LINE, "{}", longest_line(&out));
        // A break stands where a space stood, and nowhere else.
        assert_eq!(out.replace("\r\n", " "), html);
        assert!(out.contains("style=\"margin: 0 0 1em 0\""));

        let pre = format!("<pre>{words}</pre>");
        assert_eq!(wire(Fold::InTagsAndText, &pre), pre);
        // Styled white-space: only between attributes.
        let tags = "<a href=\"/x\" class=\"k\" title=\"t\">가</a>".repeat(40);
        let out = wire(Fold::InTags, &tags);
        assert!(longest_line(&out) <= MAX_LINE);
        assert_eq!(out.replace("\r\n", " "), tags);
        assert!(!out.contains("가\r\n"));
        assert_eq!(wire(Fold::InTags, &words), words);
    }

    #[test]
    fn a_break_point_before_a_field_is_not_used_after_it() {
        let mut lines = Lines::new(Fold::InTagsAndText);
        let before = lines.write(&format!("{} 가", "a".repeat(800)));
        let after = lines.write(&"b".repeat(300));
        assert_eq!(before, format!("{} 가", "a".repeat(800)));
        assert_eq!(after, "b".repeat(300));
    }
}
