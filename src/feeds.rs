//! RSS 2.0, Atom 1.0 and JSON Feed 1.1 from the published posts.
//!
//! Feeds are a pure function of the posts: no build time goes into them, so the
//! same posts give byte-identical feeds (and stable ETags). Ids come from each
//! post's first-seen record (`tag:` URIs), never from its current URL.

use atom_syndication as atom;
use chrono::{DateTime, Datelike, FixedOffset, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::domain::Post;
use crate::links::{Links, ATOM_PATH, JSON_PATH, RSS_PATH};

/// The three feeds, ready to serve or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feeds {
    pub rss: String,
    pub atom: String,
    pub json: String,
}

/// Builds the feeds from `posts` (published, newest first, already limited).
/// `feed_id` is the site's stable Atom id; `fallback_updated` dates an empty feed.
pub fn build(
    config: &Config,
    links: &Links,
    posts: &[Post],
    feed_id: &str,
    fallback_updated: DateTime<Utc>,
) -> Feeds {
    let updated = posts
        .iter()
        .map(entry_updated)
        .max()
        .unwrap_or(fallback_updated);
    Feeds {
        rss: rss(config, links, posts, updated),
        atom: atom(config, links, posts, feed_id, updated),
        json: json(config, links, posts),
    }
}

fn entry_updated(post: &Post) -> DateTime<Utc> {
    post.updated_at
        .unwrap_or(post.published_at)
        .max(post.published_at)
}

fn local(config: &Config, t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&config.site.timezone).fixed_offset()
}

/// RFC 2822 has four-digit years only (chrono panics past them): a date it
/// cannot write is left out rather than taking the feed down.
fn rfc2822(t: DateTime<FixedOffset>) -> Option<String> {
    (0..=9999).contains(&t.year()).then(|| t.to_rfc2822())
}

fn rss(config: &Config, links: &Links, posts: &[Post], updated: DateTime<Utc>) -> String {
    let self_link = atom::Link {
        href: links.page(RSS_PATH).to_string(),
        rel: "self".into(),
        mime_type: Some("application/rss+xml".into()),
        ..Default::default()
    };
    let items = posts
        .iter()
        .map(|post| {
            let link = links.post(post);
            rss::Item {
                title: Some(post.title.clone()),
                link: Some(link),
                description: Some(post.summary.clone()),
                // Our ids are tag: URIs, not URLs: isPermaLink="false".
                guid: Some(rss::Guid {
                    value: post.uid.clone(),
                    permalink: false,
                }),
                pub_date: rfc2822(local(config, post.published_at)),
                content: Some(post.content_html.clone()),
                categories: post
                    .tags
                    .iter()
                    .map(|t| rss::Category {
                        name: t.clone(),
                        domain: None,
                    })
                    .collect(),
                // RSS <author> must be an email address; the name goes in dc:creator.
                dublin_core_ext: Some(rss::extension::dublincore::DublinCoreExtension {
                    creators: vec![config.site.author.clone()],
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let channel = rss::Channel {
        title: config.site.title.clone(),
        link: links.home().to_string(),
        description: if config.site.description.is_empty() {
            config.site.title.clone()
        } else {
            config.site.description.clone()
        },
        language: Some(config.site.language.clone()),
        last_build_date: rfc2822(local(config, updated)),
        generator: Some("posthorn".into()),
        atom_ext: Some(rss::extension::atom::AtomExtension {
            links: vec![self_link],
        }),
        items,
        ..Default::default()
    };
    channel.to_string()
}

fn atom(
    config: &Config,
    links: &Links,
    posts: &[Post],
    feed_id: &str,
    updated: DateTime<Utc>,
) -> String {
    let author = atom::Person {
        name: config.site.author.clone(),
        email: config.site.email.clone(),
        uri: Some(links.home().to_string()),
        ..Default::default()
    };
    let entries = posts
        .iter()
        .map(|post| atom::Entry {
            id: post.uid.clone(),
            title: atom::Text::plain(post.title.clone()),
            updated: local(config, entry_updated(post)),
            published: Some(local(config, post.published_at)),
            links: vec![atom::Link {
                href: links.post(post),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            }],
            summary: Some(atom::Text::plain(post.summary.clone())),
            content: Some(atom::Content {
                value: Some(post.content_html.clone()),
                content_type: Some("html".into()),
                ..Default::default()
            }),
            categories: post
                .tags
                .iter()
                .map(|t| atom::Category {
                    term: t.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let feed = atom::Feed {
        id: feed_id.to_string(),
        title: atom::Text::plain(config.site.title.clone()),
        subtitle: (!config.site.description.is_empty())
            .then(|| atom::Text::plain(config.site.description.clone())),
        updated: local(config, updated),
        authors: vec![author],
        links: vec![
            atom::Link {
                href: links.page(ATOM_PATH).to_string(),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Default::default()
            },
            atom::Link {
                href: links.home().to_string(),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            },
        ],
        lang: Some(config.site.language.clone()),
        generator: Some(atom::Generator {
            value: "posthorn".into(),
            ..Default::default()
        }),
        entries,
        ..Default::default()
    };
    feed.to_string()
}

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: String,
    feed_url: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    language: &'a str,
    authors: Vec<JsonAuthor<'a>>,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct JsonAuthor<'a> {
    name: &'a str,
    url: String,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: &'a str,
    url: String,
    title: &'a str,
    content_html: &'a str,
    summary: &'a str,
    date_published: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_modified: Option<String>,
    tags: &'a [String],
}

fn json(config: &Config, links: &Links, posts: &[Post]) -> String {
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &config.site.title,
        home_page_url: links.home().to_string(),
        feed_url: links.page(JSON_PATH).to_string(),
        description: &config.site.description,
        language: &config.site.language,
        authors: vec![JsonAuthor {
            name: &config.site.author,
            url: links.home().to_string(),
        }],
        items: posts
            .iter()
            .map(|post| JsonItem {
                id: &post.uid,
                url: links.post(post),
                title: &post.title,
                content_html: &post.content_html,
                summary: &post.summary,
                date_published: local(config, post.published_at).to_rfc3339(),
                date_modified: post.updated_at.map(|u| local(config, u).to_rfc3339()),
                tags: &post.tags,
            })
            .collect(),
    };
    // Serialising plain structs of strings cannot fail.
    serde_json::to_string_pretty(&feed).unwrap_or_default()
}
