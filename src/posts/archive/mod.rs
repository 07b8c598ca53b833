//! An old archive read: a WordPress WXR file, a Ghost JSON export, a Substack
//! export or a feed, each into the same [`ArchivedPost`]s, and one written as
//! a Markdown bundle. Fetching images and writing files is the app's.

mod ghost;
mod substack;
mod wxr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use url::Url;

use crate::domain::{string_enum, Slug};
use crate::links::WebUrl;

pub use substack::{SubstackFiles, SUBSTACK_INDEX};

string_enum!(
    /// Where an old archive comes from.
    ArchiveFormat {
        Wordpress => "wordpress",
        Ghost => "ghost",
        Substack => "substack",
        Feed => "feed",
    }
);

/// One post of an old archive, as its service kept it.
#[derive(Debug, Clone)]
pub struct ArchivedPost {
    /// How errors name it: `item 3 ("Title")`, `posts/1234.slug.html`.
    pub entry: String,
    pub slug: Slug,
    pub title: String,
    pub date: DateTime<Utc>,
    pub tags: Vec<String>,
    pub draft: bool,
    /// Why a post the old site showed to some readers only is a draft here
    /// (password-protected, for paying members): the archive is public.
    pub held_back: Option<String>,
    /// As the service wrote it: not yet sanitized.
    pub html: String,
    /// What relative URLs in it are relative to.
    pub base: Option<WebUrl>,
}

/// An entry that was not brought over, and why (a page, an attachment, a
/// post in the trash, one with no body).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub entry: String,
    pub reason: String,
}

/// An archive's posts and the entries left out.
#[derive(Debug, Default)]
pub struct Archive {
    pub posts: Vec<ArchivedPost>,
    pub skipped: Vec<Skipped>,
}

/// Tells a text export's format from its first bytes: JSON is Ghost's, an RSS
/// file with WordPress's namespace is WXR, any other XML a feed.
pub fn sniff(text: &str) -> ArchiveFormat {
    let start = text.trim_start_matches('\u{feff}').trim_start();
    if start.starts_with('{') {
        ArchiveFormat::Ghost
    } else if text.contains("xmlns:wp=") || text.contains("<wp:wxr_version") {
        ArchiveFormat::Wordpress
    } else {
        ArchiveFormat::Feed
    }
}

/// Reads a WXR file or a Ghost JSON export (a feed is read by the upstream
/// parser; a Substack export by [`substack::read`]).
pub fn read_text(format: ArchiveFormat, text: &str) -> Result<Archive, String> {
    match format {
        ArchiveFormat::Wordpress => wxr::read(text),
        ArchiveFormat::Ghost => ghost::read(text),
        ArchiveFormat::Substack | ArchiveFormat::Feed => {
            Err(format!("a {format} export is not one text file"))
        }
    }
}

pub use substack::read as read_substack;

/// A title, or `(untitled)` for none, as a followed feed's entries have.
fn untitled_or(title: String) -> String {
    if title.is_empty() {
        "(untitled)".into()
    } else {
        title
    }
}

/// A slug from the service's, else from the title, else from `fallback`.
fn slug_of(given: &str, title: &str, fallback: &str) -> Option<Slug> {
    let given = percent_encoding::percent_decode_str(given.trim()).decode_utf8_lossy();
    Slug::parse(&given)
        .or_else(|_| Slug::from_file_stem(&given))
        .or_else(|_| Slug::from_file_stem(title))
        .or_else(|_| Slug::parse(fallback))
        .ok()
}

/// A site's URL as the base of its posts' relative links.
fn base(url: &str) -> Option<WebUrl> {
    Url::parse(url.trim())
        .ok()
        .and_then(|u| WebUrl::try_from(u).ok())
}

/// The front matter and body of an imported post's `index.md`: TOML, with the
/// date in the site's time zone, and `email = false`, since it was published
/// before posthorn knew it.
pub fn bundle_text(post: &ArchivedPost, markdown: &str, timezone: Tz) -> String {
    #[derive(serde::Serialize)]
    struct Front<'a> {
        title: &'a str,
        date: String,
        slug: &'a str,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        tags: &'a [String],
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        draft: bool,
        email: bool,
    }
    let front = Front {
        title: &post.title,
        date: post.date.with_timezone(&timezone).to_rfc3339(),
        slug: post.slug.as_str(),
        tags: &post.tags,
        draft: post.draft,
        email: false,
    };
    // Serializing plain strings and booleans cannot fail.
    let toml = toml::to_string(&front).unwrap_or_default();
    format!("+++\n{toml}+++\n\n{}\n", markdown.trim())
}

/// Elements nested deeper than this are no essay's: such a body is kept as
/// HTML whole, since converting it would recurse that deep.
const MAX_NESTING: usize = 100;

/// HTML as Markdown where it converts cleanly; what Markdown cannot say
/// (a table's alignment, a figure, an embed) stays HTML, which Markdown allows.
/// `html` is sanitized (well formed, every attribute quoted).
pub fn to_markdown(html: &str) -> Result<String, String> {
    if nesting(html) > MAX_NESTING {
        return Ok(html.to_string());
    }
    let options = htmd::options::Options {
        translation_mode: htmd::options::TranslationMode::Faithful,
        ..Default::default()
    };
    htmd::HtmlToMarkdown::builder()
        .options(options)
        .build()
        .convert(html)
        .map_err(|e| e.to_string())
}

/// How deep elements nest in sanitized HTML, counted from its tags alone.
fn nesting(html: &str) -> usize {
    const VOID: [&str; 14] = [
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr",
    ];
    let (mut depth, mut deepest) = (0usize, 0usize);
    let bytes = html.as_bytes();
    for at in memchr::memchr_iter(b'<', bytes) {
        match bytes.get(at + 1) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(c) if c.is_ascii_alphabetic() => {
                let name: String = html[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .to_ascii_lowercase();
                if !VOID.contains(&name.as_str()) {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
            }
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_nested_past_reason_stays_html_whole() {
        let deep = "<ul><li>".repeat(5_000) + "x";
        assert_eq!(to_markdown(&deep).unwrap(), deep);
        assert_eq!(nesting("<p>a<br>b<img src=\"x\"></p><p>c</p>"), 1);
    }

    #[test]
    fn html_becomes_markdown_and_what_cannot_stays_html() {
        let md = to_markdown(
            "<h2>제목</h2><p>A <em>quiet</em> <a href=\"https://a.example/x\">link</a>.</p>\
             <p><img src=\"images/1.png\" alt=\"그림\"></p>\
             <table><tr><td colspan=\"2\">wide</td></tr></table>",
        )
        .unwrap();
        assert!(md.contains("## 제목"), "{md}");
        assert!(
            md.contains("A *quiet* [link](https://a.example/x)."),
            "{md}"
        );
        assert!(md.contains("![그림](images/1.png)"), "{md}");
        assert!(md.contains("colspan=\"2\""), "{md}");
    }

    #[test]
    fn the_bundle_says_when_in_the_site_s_zone_and_never_to_mail() {
        let post = ArchivedPost {
            entry: "item 1".into(),
            slug: Slug::parse("첫-글").unwrap(),
            title: "첫 \"글\"".into(),
            date: DateTime::parse_from_rfc3339("2020-01-01T15:30:00Z")
                .unwrap()
                .with_timezone(&Utc),
            tags: vec!["notes".into()],
            draft: true,
            held_back: None,
            html: String::new(),
            base: None,
        };
        let text = bundle_text(&post, "Body.", chrono_tz::Asia::Seoul);
        assert!(text.starts_with("+++\ntitle = "), "{text}");
        assert!(
            text.contains("date = \"2020-01-02T00:30:00+09:00\""),
            "{text}"
        );
        assert!(text.contains("draft = true"), "{text}");
        assert!(text.contains("email = false"), "{text}");
        assert!(text.ends_with("+++\n\nBody.\n"), "{text}");
    }
}
