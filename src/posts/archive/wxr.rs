//! WordPress's export (WXR): RSS 2.0 with WordPress's `wp:` fields for the
//! slug, the status, the kind of entry and the date in UTC.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{base, slug_of, untitled_or, Archive, ArchivedPost, Skipped};
use crate::domain::one_line;

/// Elements nested deeper than this are no WordPress export's; the RSS
/// reader would recurse that deep.
const MAX_DEPTH: usize = 64;

pub fn read(text: &str) -> Result<Archive, String> {
    if let Some((line, column, why)) = broken_at(text) {
        return Err(format!("broken XML at line {line}, column {column}: {why}"));
    }
    let channel = rss::Channel::read_from(text.as_bytes())
        .map_err(|e| format!("not a WordPress export: {e}"))?;
    let site = base(channel.link());
    let mut archive = Archive::default();
    for (i, item) in channel.items().iter().enumerate() {
        let title = one_line(item.title().unwrap_or(""));
        let entry = format!("item {} (\"{}\")", i + 1, title);
        let wp = |name: &str| -> &str {
            item.extensions()
                .get("wp")
                .and_then(|fields| fields.get(name))
                .and_then(|values| values.first())
                .and_then(|value| value.value())
                .unwrap_or("")
        };
        let skip = |reason: String| Skipped {
            entry: entry.clone(),
            reason,
        };
        match wp("post_type") {
            "post" | "" => {}
            other => {
                archive
                    .skipped
                    .push(skip(format!("a `{other}`, not a post")));
                continue;
            }
        }
        let mut draft = match wp("status") {
            "publish" | "" => false,
            "draft" | "pending" | "future" => true,
            "private" => true,
            other => {
                archive.skipped.push(skip(format!("status `{other}`")));
                continue;
            }
        };
        let held_back = if wp("status") == "private" {
            Some("private on WordPress".to_string())
        } else if !wp("post_password").is_empty() {
            Some("password-protected on WordPress".to_string())
        } else {
            None
        };
        draft |= held_back.is_some();
        let date = utc(wp("post_date_gmt"))
            .or_else(|| {
                item.pub_date()
                    .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                    .map(|d| d.with_timezone(&Utc))
            })
            .or_else(|| utc(wp("post_date")));
        let Some(date) = date else {
            archive.skipped.push(skip("no date".into()));
            continue;
        };
        let fallback = format!("post-{}", wp("post_id"));
        let Some(slug) = slug_of(wp("post_name"), &title, &fallback) else {
            archive.skipped.push(skip("no slug".into()));
            continue;
        };
        let tags = item
            .categories()
            .iter()
            .filter(|c| {
                c.domain()
                    .is_none_or(|d| d == "post_tag" || d == "category")
            })
            .map(|c| one_line(c.name()))
            .filter(|t| !t.is_empty() && t != "Uncategorized")
            .fold(Vec::new(), |mut tags, t| {
                if !tags.contains(&t) {
                    tags.push(t);
                }
                tags
            });
        archive.posts.push(ArchivedPost {
            entry,
            slug,
            title: untitled_or(title),
            date,
            tags,
            draft,
            held_back,
            html: wordpress_paragraphs(item.content().unwrap_or("")),
            base: item.link().and_then(base).or_else(|| site.clone()),
        });
    }
    Ok(archive)
}

/// WordPress's `0000-00-00 00:00:00` is no date.
fn utc(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
        .filter(|t| t.timestamp() > 0)
}

/// WordPress keeps a classic post's paragraphs as blank lines (its `wpautop`
/// adds the `<p>`s when showing it); block posts have their own. A body with
/// no block-level tag gets a paragraph per blank-line-separated run.
fn wordpress_paragraphs(body: &str) -> String {
    let has_blocks = [
        "<p", "<div", "<h2", "<h3", "<ul", "<ol", "<figure", "<!-- wp:",
    ]
    .iter()
    .any(|tag| body.contains(tag));
    if has_blocks {
        return body.to_string();
    }
    body.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", p.replace('\n', "<br>")))
        .collect()
}

/// Where XML stops being well formed, or nests deeper than [`MAX_DEPTH`], as
/// (line, column, why), both from 1.
fn broken_at(text: &str) -> Option<(usize, usize, String)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        let event = reader.read_event();
        let (why, at) = match event {
            Ok(Event::Eof) => return None,
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth <= MAX_DEPTH {
                    continue;
                }
                let why = format!("elements nested deeper than {MAX_DEPTH}");
                (why, reader.buffer_position())
            }
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Ok(_) => continue,
            Err(e) => (e.to_string(), reader.error_position()),
        };
        let at = usize::try_from(at).unwrap_or(text.len()).min(text.len());
        let before = &text.as_bytes()[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = at
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        return Some((line, column, why));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_xml_is_placed_by_line_and_column() {
        let text = "<?xml version=\"1.0\"?>\n<rss>\n<channel>\n<item></channel>\n</rss>\n";
        let err = read(text).unwrap_err();
        assert!(err.starts_with("broken XML at line 4"), "{err}");
    }

    #[test]
    fn a_classic_post_gets_its_paragraphs() {
        assert_eq!(
            wordpress_paragraphs("One\nline.\n\nTwo."),
            "<p>One<br>line.</p><p>Two.</p>"
        );
        assert_eq!(wordpress_paragraphs("<p>x</p>"), "<p>x</p>");
    }
}
