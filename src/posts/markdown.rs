//! Markdown to HTML, once per post version, and the default summary.

use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

use crate::domain::{one_line, LineBreaks};

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// Renders Markdown to HTML (relative URLs are left for `html::absolutize_urls`).
pub fn to_html(markdown: &str, line_breaks: LineBreaks) -> String {
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events(markdown, line_breaks));
    out
}

/// The parser's events; with [`LineBreaks::Paragraph`], a line break inside a
/// paragraph ends it and starts the next. Inside emphasis or a link (which a
/// paragraph end would cut in two) it becomes a hard line break instead.
fn events(markdown: &str, line_breaks: LineBreaks) -> impl Iterator<Item = Event<'_>> {
    let mut in_paragraph = false;
    let mut inline_depth = 0usize;
    Parser::new_ext(markdown, options()).flat_map(move |event| {
        let mut out = Vec::with_capacity(2);
        match &event {
            Event::Start(Tag::Paragraph) => in_paragraph = true,
            Event::End(TagEnd::Paragraph) => in_paragraph = false,
            Event::Start(_) if in_paragraph => inline_depth += 1,
            Event::End(_) if in_paragraph => inline_depth = inline_depth.saturating_sub(1),
            Event::SoftBreak if line_breaks == LineBreaks::Paragraph && in_paragraph => {
                if inline_depth == 0 {
                    out.push(Event::End(TagEnd::Paragraph));
                    out.push(Event::Start(Tag::Paragraph));
                } else {
                    out.push(Event::HardBreak);
                }
                return out;
            }
            _ => {}
        }
        out.push(event);
        out
    })
}

/// About how long a default summary is, in characters.
pub const SUMMARY_CHARS: usize = 300;

/// The default summary: the first paragraph as text, cut at a sentence end to
/// about [`SUMMARY_CHARS`] characters (see [`cut_at_sentence`]).
pub fn summary(markdown: &str, line_breaks: LineBreaks) -> String {
    cut_at_sentence(&first_paragraph(markdown, line_breaks), SUMMARY_CHARS)
}

/// `text` if it has at most `max` characters; else its longest start of at most
/// `max` characters that ends a sentence, or failing that ends a word, with `…`.
/// Counted in characters, never bytes, so Korean is never cut mid-character.
pub fn cut_at_sentence(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    let ends = |c: char| matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…');
    // The end of a sentence: its mark, and any closing quotes or brackets after it.
    let mut sentence_end = None;
    let chars: Vec<(usize, char)> = head.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        if !ends(c) {
            continue;
        }
        let mut end = at + c.len_utf8();
        for &(at2, c2) in &chars[i + 1..] {
            if matches!(c2, '"' | '\'' | '”' | '’' | ')' | '」' | '』' | ']') {
                end = at2 + c2.len_utf8();
            } else {
                break;
            }
        }
        // A sentence end followed by a letter is an abbreviation or a number.
        let next = head[end..].chars().next();
        if next.is_none_or(char::is_whitespace) {
            sentence_end = Some(end);
        }
    }
    // Too short a first sentence says too little: then cut at a word.
    match sentence_end {
        Some(end) if head[..end].chars().count() >= max / 4 => head[..end].to_string(),
        _ => {
            let cut = head.rfind(char::is_whitespace).unwrap_or(head.len());
            format!("{}…", head[..cut].trim_end())
        }
    }
}

/// The plain text of the first paragraph.
fn first_paragraph(markdown: &str, line_breaks: LineBreaks) -> String {
    let mut text = String::new();
    let mut depth = 0usize;
    let mut in_image = 0usize;
    for event in events(markdown, line_breaks) {
        match event {
            // An image's alt text is not part of the prose.
            Event::Start(Tag::Image { .. }) => in_image += 1,
            Event::End(TagEnd::Image) => in_image = in_image.saturating_sub(1),
            _ if in_image > 0 => {}
            Event::Start(Tag::Paragraph) => depth += 1,
            Event::End(TagEnd::Paragraph) if depth > 0 => {
                if !text.trim().is_empty() {
                    break;
                }
                depth -= 1;
            }
            Event::Text(t) | Event::Code(t) if depth > 0 => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if depth > 0 => text.push(' '),
            _ => {}
        }
    }
    one_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_the_first_paragraph_as_text() {
        let md = "# 제목\n\n![img](a.png)\n\n첫 문단은 *여기*\n이어진다.\n\n둘째 문단.";
        assert_eq!(
            first_paragraph(md, LineBreaks::Markdown),
            "첫 문단은 여기 이어진다."
        );
        assert_eq!(first_paragraph(md, LineBreaks::Paragraph), "첫 문단은 여기");
    }

    #[test]
    fn every_line_is_a_paragraph_when_asked() {
        let md = "첫 줄.\n둘째 줄.\n*기울인\n글*\n\n- 목록\n";
        assert_eq!(
            to_html(md, LineBreaks::Paragraph),
            "<p>첫 줄.</p>\n<p>둘째 줄.</p>\n<p><em>기울인<br />\n글</em></p>\n<ul>\n<li>목록</li>\n</ul>\n"
        );
        assert!(to_html(md, LineBreaks::Markdown).starts_with("<p>첫 줄.\n둘째 줄.\n"));
    }

    #[test]
    fn a_long_korean_paragraph_is_cut_at_a_sentence_end() {
        let sentence = "오늘은 비가 와서 창가에 앉아 오래된 책을 다시 읽었다. ";
        let paragraph = sentence.repeat(7_000 / sentence.chars().count() + 1);
        let cut = cut_at_sentence(paragraph.trim(), SUMMARY_CHARS);
        assert!(
            cut.chars().count() <= SUMMARY_CHARS,
            "{}",
            cut.chars().count()
        );
        assert!(cut.chars().count() >= SUMMARY_CHARS - sentence.chars().count());
        assert!(cut.ends_with("읽었다."), "{cut}");
        // No sentence end at all: a word end, marked as cut.
        let words = "가나다 ".repeat(200);
        let cut = cut_at_sentence(&words, SUMMARY_CHARS);
        assert!(cut.ends_with("가나다…"), "{cut}");
        assert_eq!(cut_at_sentence("짧다.", SUMMARY_CHARS), "짧다.");
    }

    #[test]
    fn footnotes_and_tables_render() {
        let html = to_html(
            "a[^1]\n\n[^1]: note\n\n|x|y|\n|-|-|\n|1|2|\n",
            LineBreaks::Markdown,
        );
        assert!(html.contains("<table>"));
        assert!(html.contains("footnote"));
    }
}
