//! Ghost's JSON export (Labs → Export): `{"db": [{"meta": {"version"}, "data":
//! {"posts", "tags", "posts_tags"}}]}`, read for Ghost 2 to 6, whose posts
//! carry their rendered `html`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{slug_of, untitled_or, Archive, ArchivedPost, Skipped};
use crate::domain::one_line;

/// The Ghost versions whose exports this reads.
const VERSIONS: std::ops::RangeInclusive<u32> = 2..=6;

#[derive(Deserialize)]
struct Export {
    #[serde(default)]
    db: Vec<Database>,
    // Some exports have no `db` wrapper.
    meta: Option<Meta>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Database {
    meta: Option<Meta>,
    data: Data,
}

#[derive(Deserialize)]
struct Meta {
    version: Option<String>,
}

#[derive(Deserialize, Default)]
struct Data {
    #[serde(default)]
    posts: Vec<Post>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    posts_tags: Vec<PostTag>,
}

#[derive(Deserialize)]
struct Post {
    id: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    page: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    published_at: Option<serde_json::Value>,
    #[serde(default)]
    created_at: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Tag {
    id: serde_json::Value,
    name: String,
}

#[derive(Deserialize)]
struct PostTag {
    post_id: serde_json::Value,
    tag_id: serde_json::Value,
}

pub fn read(text: &str) -> Result<Archive, String> {
    let export: Export =
        serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| {
            format!(
                "not a Ghost export: {e} (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
    let (meta, data) = match (export.db.into_iter().next(), export.data) {
        (Some(db), _) => (db.meta, db.data),
        (None, Some(data)) => (export.meta, data),
        (None, None) => return Err("not a Ghost export: no `db` or `data`".into()),
    };
    let version = meta.and_then(|m| m.version).unwrap_or_default();
    let major: Option<u32> = version.split('.').next().and_then(|m| m.parse().ok());
    if !major.is_some_and(|m| VERSIONS.contains(&m)) {
        return Err(format!(
            "a Ghost export of version `{}`; posthorn reads those of Ghost {} to {}",
            one_line(&version),
            VERSIONS.start(),
            VERSIONS.end()
        ));
    }
    let tag_names: HashMap<String, &str> = data
        .tags
        .iter()
        .map(|t| (t.id.to_string(), t.name.as_str()))
        .collect();
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    for pt in &data.posts_tags {
        if let Some(name) = tag_names.get(&pt.tag_id.to_string()) {
            let name = one_line(name);
            // Ghost's internal tags (`#hash`) are for themes, not readers.
            if !name.starts_with('#') {
                tags.entry(pt.post_id.to_string()).or_default().push(name);
            }
        }
    }
    let mut archive = Archive::default();
    for (i, post) in data.posts.into_iter().enumerate() {
        let title = one_line(post.title.as_deref().unwrap_or(""));
        let entry = format!("post {} (\"{}\")", i + 1, title);
        let skip = |reason: &str| Skipped {
            entry: entry.clone(),
            reason: reason.into(),
        };
        // Ghost 2 marks a page with `page: true` (or 1), later ones with `type`.
        let is_page = post.kind.as_deref() == Some("page")
            || post.page.as_ref().is_some_and(|p| *p == true || *p == 1);
        if is_page {
            archive.skipped.push(skip("a page, not a post"));
            continue;
        }
        let held_back = match (post.status.as_deref(), post.visibility.as_deref()) {
            (Some("sent"), _) => Some("sent by email only, never on the Ghost site".to_string()),
            (_, Some(v)) if v != "public" => {
                Some(format!("for `{}` readers on Ghost", one_line(v)))
            }
            _ => None,
        };
        let draft =
            !matches!(post.status.as_deref(), Some("published") | None) || held_back.is_some();
        let Some(html) = post.html.filter(|h| !h.trim().is_empty()) else {
            archive
                .skipped
                .push(skip("no `html` (export it again from a newer Ghost)"));
            continue;
        };
        let Some(date) =
            time(post.published_at.as_ref()).or_else(|| time(post.created_at.as_ref()))
        else {
            archive.skipped.push(skip("no date"));
            continue;
        };
        let Some(slug) = slug_of(post.slug.as_deref().unwrap_or(""), &title, "post") else {
            archive.skipped.push(skip("no slug"));
            continue;
        };
        archive.posts.push(ArchivedPost {
            entry,
            slug,
            title: untitled_or(title),
            date,
            tags: tags.remove(&post.id.to_string()).unwrap_or_default(),
            draft,
            held_back,
            html,
            base: None,
        });
    }
    Ok(archive)
}

/// Ghost writes times as RFC 3339 text, or (older exports) as milliseconds.
fn time(value: Option<&serde_json::Value>) -> Option<DateTime<Utc>> {
    match value? {
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        serde_json::Value::Number(n) => DateTime::from_timestamp_millis(n.as_i64()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_version_is_named_and_refused() {
        let err =
            read(r#"{"db":[{"meta":{"version":"1.25.0"},"data":{"posts":[]}}]}"#).unwrap_err();
        assert!(
            err.contains("`1.25.0`") && err.contains("Ghost 2 to 6"),
            "{err}"
        );
        let err = read("{\"db\": [").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}
