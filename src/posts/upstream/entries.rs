//! A feed's entries as posts: a key that recognises an entry forever, a slug, a
//! title, sanitized content and a summary.

use chrono::{DateTime, Datelike, Utc};
use sha2::{Digest, Sha256};
use url::Url;

use crate::domain::{hex, one_line, FeedEntry, Slug};
use crate::links::WebUrl;
use crate::posts::html::sanitize;
use crate::posts::markdown::{cut_at_sentence, SUMMARY_CHARS};

/// Marks an entry with no guid/id, so that our own fallback chain applies.
const NO_ID: &str = "\u{0}posthorn:no-id";

/// Parses RSS 0.9x/1.0/2.0 or Atom into entries, newest first as in the feed.
pub fn parse(text: &str, feed_url: &Url) -> Result<Vec<FeedEntry>, String> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        .id_generator(|_, _, _| NO_ID.to_string())
        .build();
    let feed = parser
        .parse(text.as_bytes())
        .map_err(|e| format!("not a valid feed: {e}"))?;
    let feed_base = WebUrl::try_from(feed_url.clone()).ok();
    let mut entries = Vec::with_capacity(feed.entries.len());
    for entry in feed.entries {
        let link = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .or_else(|| entry.links.first())
            .and_then(|l| feed_url.join(l.href.trim()).ok())
            // Where the post is read: a web page, never a script or a data URL.
            .and_then(|url| WebUrl::try_from(url).ok());
        let title = entry
            .title
            .as_ref()
            .map(|t| {
                if t.content_type.essence().to_string() == "text/html" {
                    html_text(&t.content)
                } else {
                    one_line(&t.content)
                }
            })
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "(untitled)".into());
        // Someone else's clock: a date before 1970 or more than a day ahead is
        // no date at all (a year 9999 would schedule the post forever, and
        // leave the range some formats can write).
        let latest = Utc::now() + chrono::Duration::days(1);
        let plausible = |d: &DateTime<Utc>| d.year() >= 1970 && *d <= latest;
        let entry_published = entry.published.filter(plausible);
        let entry_updated = entry.updated.filter(plausible);
        let published = entry_published.or(entry_updated);
        let key = if entry.id != NO_ID && !entry.id.trim().is_empty() {
            entry.id.trim().to_string()
        } else if let Some(link) = &link {
            link.to_string()
        } else {
            let mut h = Sha256::new();
            h.update(title.as_bytes());
            h.update(published.map(|d| d.to_rfc3339()).unwrap_or_default());
            format!("sha256:{}", hex(&h.finalize()))
        };
        // Full content when the feed has it (content:encoded, Atom content), else the description.
        let raw = entry
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .or_else(|| entry.summary.as_ref().map(|s| s.content.clone()))
            .unwrap_or_default();
        // Relative URLs in the entry are relative to its page, else to the feed.
        let content_html = sanitize(&raw, link.as_ref().or(feed_base.as_ref()));
        let summary = entry
            .summary
            .as_ref()
            .map(|s| html_text(&s.content))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| html_text(&content_html));
        let summary = cut_at_sentence(&summary, SUMMARY_CHARS);
        let tags: Vec<String> = entry
            .categories
            .iter()
            .map(|c| one_line(c.label.as_deref().unwrap_or(&c.term)))
            .filter(|t| !t.is_empty())
            .collect();
        let slug = link
            .as_ref()
            .and_then(|l| {
                l.as_url()
                    .path_segments()?
                    .rfind(|s| !s.is_empty())
                    .map(str::to_string)
            })
            .map(|s| {
                percent_encoding::percent_decode_str(&s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .map(|s| {
                s.trim_end_matches(".html")
                    .trim_end_matches(".htm")
                    .to_string()
            })
            .and_then(|s| Slug::from_file_stem(&s).ok())
            .filter(|s| !s.as_str().chars().all(|c| c.is_ascii_digit()) || s.as_str().len() > 3)
            .or_else(|| Slug::from_file_stem(&title).ok())
            .or_else(|| Slug::parse(&format!("entry-{}", &key_hash(&key)[..12])).ok())
            .ok_or_else(|| "no slug for an entry".to_string())?;
        let mut hash = Sha256::new();
        for part in [&title, &summary, &content_html, &tags.join("\u{1f}")] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update(published.map(|d| d.to_rfc3339()).unwrap_or_default());
        entries.push(FeedEntry {
            key,
            link: link.map(|l| l.to_string()),
            slug,
            title,
            published: published.unwrap_or_else(Utc::now),
            updated: entry_updated.filter(|u| Some(*u) != entry_published),
            summary,
            content_html,
            tags,
            content_hash: hex(&hash.finalize()),
        });
    }
    Ok(entries)
}

fn key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// The text of an HTML fragment, on one line, without markup or decoration.
fn html_text(html: &str) -> String {
    let text = html2text::config::plain_no_decorate()
        .string_from_read(html.as_bytes(), 100_000)
        .unwrap_or_default();
    one_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_handlers_are_removed() {
        let clean = sanitize(
            r#"<p onclick="x()">글<script>alert(1)</script><iframe src="https://evil.example/"></iframe><img src="a.png" onerror="x()"></p>"#,
            WebUrl::parse("https://blog.example.com/").ok().as_ref(),
        );
        assert!(
            !clean.contains("script")
                && !clean.contains("onclick")
                && !clean.contains("onerror")
                && !clean.contains("iframe"),
            "{clean}"
        );
        assert!(
            clean.contains("글") && clean.contains("<img src=\"https://blog.example.com/a.png\">"),
            "{clean}"
        );
    }

    #[test]
    fn an_entry_linking_to_a_script_is_read_on_no_page_and_resolves_against_the_feed() {
        let feed_url = Url::parse("https://blog.example.com/feed.xml").unwrap();
        let rss = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>a</title><link>javascript:alert(document.domain)</link><guid>1</guid>
<description><![CDATA[<a href="next.html">next</a><img src="pics/a.png">]]></description></item>
<item><title>b</title><link> JaVaScRiPt:alert(1)//x/post</link><guid>2</guid><description>b</description></item>
<item><title>c</title><link>data:text/html,x</link><guid>3</guid><description>c</description></item>
</channel></rss>"#;
        let entries = parse(rss, &feed_url).unwrap();
        assert_eq!(entries.len(), 3);
        for entry in &entries {
            assert_eq!(entry.link, None, "{entry:?}");
            assert!(
                !entry.content_html.to_lowercase().contains("script:"),
                "{entry:?}"
            );
        }
        assert_eq!(
            entries[0].content_html,
            "<a href=\"https://blog.example.com/next.html\" rel=\"noopener noreferrer\">next</a><img src=\"https://blog.example.com/pics/a.png\">"
        );
        assert_eq!(entries[1].slug.as_str(), "b", "no slug from a script URL");
    }
}
