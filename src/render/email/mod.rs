//! An issue's email bodies, rendered once. Per-subscriber fields are rendered as
//! markers ([`fields`]) and filled in per message, so sending to a subscriber is
//! string concatenation rather than a template run, a Markdown pass and a CSS
//! inlining.

mod fields;

use serde_json::json;

use super::Templates;
use crate::domain::{one_line, Post};
use crate::error::Error;
use crate::links::Links;
use crate::posts::html::rewrite_links;
use fields::Markers;
pub use fields::{Field, Personalizable, ReaderFields};

/// Both bodies of an issue, ready to personalise.
#[derive(Debug, Clone)]
pub struct EmailBodies {
    pub html: Personalizable,
    pub text: Personalizable,
}

/// A confirmation request, rendered for one person.
pub struct Confirmation {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Where an issue's email has its links and its open pixel counted.
#[derive(Clone, Copy)]
pub struct Counting<'a> {
    pub links: &'a Links,
    pub issue_id: i64,
    /// Every http(s) link of the content goes through `/c/…`.
    pub clicks: bool,
    /// The HTML part ends with the `/o/…` pixel.
    pub opens: bool,
}

impl Templates {
    /// The email of `post`: templates, CSS inlining and the plain-text version.
    pub fn issue(&self, post: &Post, counting: Option<Counting<'_>>) -> Result<EmailBodies, Error> {
        let markers = Markers::new();
        let data = json!({ "post": self.with_content(post, counting, &markers)? });
        self.bodies("email", markers, data, counting)
    }

    /// The welcome a reader gets when they confirm, with `post` (the newest
    /// essay). Nothing in it is counted.
    pub fn welcome(&self, post: &Post) -> Result<EmailBodies, Error> {
        let markers = Markers::new();
        let data = json!({ "post": self.with_content(post, None, &markers)? });
        self.bodies("welcome", markers, data, None)
    }

    /// The subject of a welcome, from `welcome.subject.txt.hbs`.
    pub fn welcome_subject(&self, post: &Post) -> Result<String, Error> {
        let data = json!({ "post": self.post(post) });
        Ok(one_line(&self.page("welcome.subject.txt", data)?))
    }

    /// A digest: every post in `posts` (oldest first), in one email.
    pub fn digest(
        &self,
        posts: &[Post],
        counting: Option<Counting<'_>>,
    ) -> Result<EmailBodies, Error> {
        let markers = Markers::new();
        let posts = posts
            .iter()
            .map(|p| self.with_content(p, counting, &markers))
            .collect::<Result<Vec<_>, Error>>()?;
        let data = json!({ "count": posts.len(), "posts": posts });
        self.bodies("digest", markers, data, counting)
    }

    /// The subject of a digest, from `digest.subject.txt.hbs`.
    pub fn digest_subject(&self, posts: &[Post]) -> Result<String, Error> {
        let data = json!({
            "posts": posts.iter().map(|p| self.post(p)).collect::<Vec<_>>(),
            "count": posts.len(),
        });
        Ok(one_line(&self.page("digest.subject.txt", data)?))
    }

    /// The double opt-in email for `name`, with its link.
    /// The double opt-in mail. It carries nothing the requester typed: the
    /// address's owner has not vouched for it yet, and a name is free text a
    /// stranger could fill with a message of their own.
    pub fn confirmation(&self, confirm_url: &str) -> Result<Confirmation, Error> {
        let data = json!({ "confirm_url": confirm_url });
        Ok(Confirmation {
            subject: one_line(&self.page("confirm.subject.txt", data.clone())?),
            text: self.page("confirm.txt", data.clone())?,
            html: inline_css(&self.page("confirm.html", data)?)?,
        })
    }

    /// A post for an email template, its content's links counted when
    /// `counting` says so (the feeds and the archive keep them as written).
    fn with_content(
        &self,
        post: &Post,
        counting: Option<Counting<'_>>,
        markers: &Markers,
    ) -> Result<serde_json::Value, Error> {
        let content = match counting.filter(|c| c.clicks) {
            Some(c) => {
                let tag = markers.of(Field::Tag);
                rewrite_links(&post.content_html, |url| {
                    Some(c.links.counted_click(c.issue_id, url.as_str(), &tag))
                })
                .map_err(|e| Error::template("email (counting its links)", e))?
            }
            None => post.content_html.clone(),
        };
        let mut data = self.post(post);
        data["content_text"] = html_to_text(&content).into();
        data["content_html"] = content.into();
        Ok(data)
    }

    /// `NAME.html` (CSS inlined, since mail clients drop `<style>`) and `NAME.txt`,
    /// with markers for the recipient's fields added to `data`, and the open
    /// pixel at the end of the HTML when opens are counted.
    fn bodies(
        &self,
        name: &str,
        markers: Markers,
        mut data: serde_json::Value,
        counting: Option<Counting<'_>>,
    ) -> Result<EmailBodies, Error> {
        markers.add_to(&mut data);
        let mut html = inline_css(&self.page(&format!("{name}.html"), data.clone())?)?;
        if let Some(c) = counting.filter(|c| c.opens) {
            let pixel = format!(
                "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" \
                 style=\"display:block;width:1px;height:1px;border:0\">",
                c.links.open_pixel(&markers.of(Field::Tag))
            );
            let at = html.rfind("</body>").unwrap_or(html.len());
            html.insert_str(at, &pixel);
        }
        let text = self.page(&format!("{name}.txt"), data)?;
        Ok(EmailBodies {
            html: markers.split(&html),
            text: markers.split(&text),
        })
    }
}

/// Moves `<style>` rules into `style=""` attributes, which mail clients keep.
fn inline_css(html: &str) -> Result<String, Error> {
    css_inline::CSSInliner::options()
        .keep_style_tags(false)
        .load_remote_stylesheets(false)
        .build()
        .inline(html)
        .map_err(|e| Error::template("email (inlining its CSS)", e))
}

/// Plain text written for people: paragraphs wrapped, links as numbered
/// references, footnotes as `[1]` with the note `[1] …` where the notes are.
/// A link is never wrapped: a URL cut across two lines is a broken link.
pub fn html_to_text(html: &str) -> String {
    let html = plain_footnotes(html);
    html2text::config::plain()
        .no_link_wrapping()
        .string_from_read(html.as_bytes(), 72)
        .unwrap_or_else(|_| html.to_string())
}

/// Footnote marks as Markdown writes them become plain `[1]` text (a `<sup>` with
/// a link would read `^{[1][1]}` as text), and each note's label moves into its
/// first paragraph so that it reads `[1] The note.`.
fn plain_footnotes(html: &str) -> std::borrow::Cow<'_, str> {
    use std::sync::LazyLock;
    static MARK: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"<sup class="footnote-reference"><a href="[^"]*">([^<]*)</a></sup>"#)
            .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
    });
    static LABEL: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"<sup class="footnote-definition-label">([^<]*)</sup>\s*(<p>)?"#)
            .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
    });
    if !html.contains("footnote-") {
        return std::borrow::Cow::Borrowed(html);
    }
    let marked = MARK.replace_all(html, "[$1]");
    std::borrow::Cow::Owned(LABEL.replace_all(&marked, "$2[$1] ").into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footnotes_read_as_numbers_in_text() {
        let html = crate::posts::markdown::to_html(
            "본문에 주석이 있다.[^a] 그리고 또.[^b]\n\n[^a]: 첫째 주석.\n[^b]: 둘째 주석.\n",
            crate::domain::LineBreaks::Markdown,
        );
        let text = html_to_text(&html);
        assert!(text.contains("있다.[1] 그리고 또.[2]"), "{text}");
        assert!(text.contains("[1] 첫째 주석."), "{text}");
        assert!(text.contains("[2] 둘째 주석."), "{text}");
        assert!(!text.contains("^{"), "{text}");
        assert!(
            text.find("그리고").unwrap() < text.find("[1] 첫째").unwrap(),
            "notes at the end: {text}"
        );
    }

    #[test]
    fn long_links_stay_whole_in_text() {
        let url = format!("https://e.x/{}", "a".repeat(150));
        let text = html_to_text(&format!("<p><a href=\"{url}\">긴 링크</a></p>"));
        assert!(text.lines().any(|l| l.contains(&url)), "{text}");
    }

    #[test]
    fn text_version_keeps_links_as_references() {
        let text = html_to_text("<p>읽기 <a href=\"https://e.x/a\">링크</a>.</p>");
        assert!(text.contains("읽기"), "{text}");
        assert!(text.contains("https://e.x/a"), "{text}");
        assert!(!text.contains("<p>"), "{text}");
    }
}
