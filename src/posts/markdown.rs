//! Markdown to HTML, once per post version, and the default summary.

use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

use crate::domain::one_line;

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// Renders Markdown to HTML (relative URLs are left for `html::absolutize_urls`).
pub fn to_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(markdown, options()));
    out
}

/// The plain text of the first paragraph: the default summary.
pub fn first_paragraph(markdown: &str) -> String {
    let mut text = String::new();
    let mut depth = 0usize;
    let mut in_image = 0usize;
    for event in Parser::new_ext(markdown, options()) {
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
        assert_eq!(first_paragraph(md), "첫 문단은 여기 이어진다.");
    }

    #[test]
    fn footnotes_and_tables_render() {
        let html = to_html("a[^1]\n\n[^1]: note\n\n|x|y|\n|-|-|\n|1|2|\n");
        assert!(html.contains("<table>"));
        assert!(html.contains("footnote"));
    }
}
