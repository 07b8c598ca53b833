//! An issue's email bodies, rendered once. Per-subscriber fields are rendered as
//! markers and filled in per message, so sending to a subscriber is string
//! concatenation rather than a template run, a Markdown pass and a CSS inlining.

use std::ops::Range;

use serde_json::json;

use super::Templates;
use crate::domain::{hex, one_line, Post};
use crate::error::Error;
use crate::links::Links;
use crate::posts::html::rewrite_links;

/// The values that differ between two recipients of the same issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    Name,
    UnsubscribeUrl,
    PreferencesUrl,
    /// The email's counting tag, in its counted links and open pixel.
    Tag,
}

impl Field {
    const ALL: [Field; 5] = [
        Field::Email,
        Field::Name,
        Field::UnsubscribeUrl,
        Field::PreferencesUrl,
        Field::Tag,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::Name => "name",
            Field::UnsubscribeUrl => "unsubscribe",
            Field::PreferencesUrl => "preferences",
            Field::Tag => "tag",
        }
    }
}

/// The markers of one rendering. A post or a feed entry may hold any text, the
/// private-use characters of a marker included; what it cannot hold is the
/// random key drawn for this rendering, so no content can become a field.
/// Neither HTML escaping nor CSS inlining changes a marker.
struct Markers {
    key: String,
}

impl Markers {
    fn new() -> Markers {
        Markers {
            key: hex(&rand::random::<[u8; 16]>()),
        }
    }

    fn of(&self, field: Field) -> String {
        format!("\u{E000}{}:{}\u{E001}", self.key, field.name())
    }

    /// What templates get for the fields: `subscriber`, `unsubscribe_url`, `preferences_url`.
    fn add_to(&self, data: &mut serde_json::Value) {
        data["subscriber"] =
            json!({ "email": self.of(Field::Email), "name": self.of(Field::Name) });
        data["unsubscribe_url"] = self.of(Field::UnsubscribeUrl).into();
        data["preferences_url"] = self.of(Field::PreferencesUrl).into();
    }

    /// A rendered body cut at this rendering's markers.
    fn split(&self, rendered: &str) -> Personalizable {
        let markers: Vec<(Field, String)> = Field::ALL.iter().map(|&f| (f, self.of(f))).collect();
        let mut parts = Vec::new();
        let mut rest = rendered;
        loop {
            let next = markers
                .iter()
                .filter_map(|(f, m)| rest.find(m.as_str()).map(|i| (i, *f, m.len())))
                .min_by_key(|(i, _, _)| *i);
            match next {
                Some((i, field, len)) => {
                    if i > 0 {
                        parts.push(Part::Literal(rest[..i].to_string()));
                    }
                    parts.push(Part::Field(field));
                    rest = &rest[i + len..];
                }
                None => {
                    if !rest.is_empty() {
                        parts.push(Part::Literal(rest.to_string()));
                    }
                    break;
                }
            }
        }
        Personalizable::from_parts(parts)
    }
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Field(Field),
}

/// A rendered body with holes for the per-subscriber fields.
#[derive(Debug, Clone)]
pub struct Personalizable {
    parts: Vec<Part>,
    literal_len: usize,
}

impl Personalizable {
    fn from_parts(parts: Vec<Part>) -> Personalizable {
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.len(),
                Part::Field(_) => 0,
            })
            .sum();
        Personalizable { parts, literal_len }
    }

    /// A body of literal stretches with a field after each but the last.
    #[cfg(test)]
    pub(crate) fn with_fields(pieces: &[(&str, Field)], last: &str) -> Personalizable {
        let mut parts = Vec::new();
        for (literal, field) in pieces {
            parts.push(Part::Literal(literal.to_string()));
            parts.push(Part::Field(*field));
        }
        parts.push(Part::Literal(last.to_string()));
        Personalizable::from_parts(parts)
    }

    /// A body without fields: `text` as it is.
    pub fn literal(text: &str) -> Personalizable {
        Personalizable::from_parts(vec![Part::Literal(text.to_string())])
    }

    /// The same body with every literal stretch rewritten by `f`, in order.
    pub fn map_literals(&self, mut f: impl FnMut(&str) -> String) -> Personalizable {
        let parts: Vec<Part> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => Part::Literal(f(s)),
                Part::Field(field) => Part::Field(*field),
            })
            .collect();
        Personalizable::from_parts(parts)
    }

    /// The literal stretches between the fields.
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Literal(s) => Some(s.as_str()),
            Part::Field(_) => None,
        })
    }

    /// Whether `field` has a place in the body.
    pub fn has(&self, field: Field) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Field(f) if *f == field))
    }

    /// The length of the literal text, without the fields.
    pub fn len(&self) -> usize {
        self.literal_len
    }

    pub fn is_empty(&self) -> bool {
        self.literal_len == 0 && self.parts.is_empty()
    }

    /// The body for one recipient; `html` escapes the values for HTML.
    pub fn fill(&self, r: &ReaderFields<'_>, html: bool) -> String {
        let mut out = String::with_capacity(self.literal_len + 256);
        self.fill_into(&mut out, r, html, |_| {});
        out
    }

    /// [`Personalizable::fill`], appending to `out`; `spliced` hears where in
    /// `out` each field's value went.
    pub fn fill_into(
        &self,
        out: &mut String,
        r: &ReaderFields<'_>,
        html: bool,
        mut spliced: impl FnMut(Range<usize>),
    ) {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Field(f) => {
                    let start = out.len();
                    let value = match f {
                        Field::Email => r.email,
                        Field::Name => r.name,
                        Field::UnsubscribeUrl => r.unsubscribe_url,
                        Field::PreferencesUrl => r.preferences_url,
                        Field::Tag => r.tag,
                    };
                    if html {
                        push_escaped(out, value);
                    } else {
                        out.push_str(value);
                    }
                    spliced(start..out.len());
                }
            }
        }
    }
}

fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

/// One reader's values for the fields of a [`Personalizable`] body.
#[derive(Debug, Clone, Copy)]
pub struct ReaderFields<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
    /// The email's counting tag; empty when nothing is counted.
    pub tag: &'a str,
}

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
    fn fields_are_filled_and_escaped_for_html() {
        let markers = Markers::new();
        let p = markers.split(&format!(
            "<a href=\"{}\">x</a> {} {}",
            markers.of(Field::UnsubscribeUrl),
            markers.of(Field::Name),
            markers.of(Field::Email)
        ));
        let r = ReaderFields {
            email: "a@b.co",
            name: "<Kim & Lee>",
            unsubscribe_url: "https://e.x/unsubscribe/abc",
            preferences_url: "https://e.x/preferences/abc",
            tag: "",
        };
        assert_eq!(
            p.fill(&r, true),
            "<a href=\"https://e.x/unsubscribe/abc\">x</a> &lt;Kim &amp; Lee&gt; a@b.co"
        );
        assert_eq!(
            p.fill(&r, false),
            "<a href=\"https://e.x/unsubscribe/abc\">x</a> <Kim & Lee> a@b.co"
        );
    }

    #[test]
    fn text_cannot_spell_a_field() {
        let markers = Markers::new();
        let forged = format!(
            "\u{E000}email\u{E001} {} \u{E000}:email\u{E001}",
            Markers::new().of(Field::Email)
        );
        let p = markers.split(&format!("{forged} {}", markers.of(Field::Email)));
        let r = ReaderFields {
            email: "a@b.co",
            name: "",
            unsubscribe_url: "",
            preferences_url: "",
            tag: "",
        };
        assert_eq!(p.fill(&r, false), format!("{forged} a@b.co"));
        assert_eq!(Personalizable::literal(&forged).fill(&r, false), forged);
    }

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
