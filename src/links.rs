//! Every public URL of the site, and the signed links in emails. One value builds
//! them all, from `site.base_url` and the site's secret, so a link is spelled the
//! same in a feed, a page, an email and a web answer.

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::Config;
use crate::domain::{Post, Slug};
use crate::tokens::{Purpose, Tokens};

pub const RSS_PATH: &str = "feed.xml";
pub const ATOM_PATH: &str = "atom.xml";
pub const JSON_PATH: &str = "feed.json";

/// The schemes a URL may have where a post puts it: a page, a feed or an email.
/// Every other scheme (`javascript:`, `data:`, `vbscript:`, …) is dropped.
pub const LINK_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// An absolute `http` or `https` URL: where a post may be read, and the only
/// kind of base a relative URL is resolved against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUrl(Url);

#[derive(Debug, thiserror::Error)]
pub enum WebUrlError {
    #[error("not a URL")]
    Invalid(#[from] url::ParseError),
    #[error("a `{0}:` URL, not http or https")]
    Scheme(String),
}

impl WebUrl {
    pub fn parse(text: &str) -> Result<WebUrl, WebUrlError> {
        WebUrl::try_from(Url::parse(text)?)
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<Url> for WebUrl {
    type Error = WebUrlError;

    fn try_from(url: Url) -> Result<WebUrl, WebUrlError> {
        // The URL parser has already trimmed, dropped tabs and newlines and
        // lower-cased the scheme, as a browser does.
        match url.scheme() {
            "http" | "https" if url.has_host() => Ok(WebUrl(url)),
            other => Err(WebUrlError::Scheme(other.to_string())),
        }
    }
}

impl From<WebUrl> for Url {
    fn from(url: WebUrl) -> Url {
        url.0
    }
}

impl std::fmt::Display for WebUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one rule for a URL that reaches HTML, a feed or an email. `value` is the
/// attribute as a browser reads it (character references decoded); it is
/// resolved against `base` and kept only with one of [`LINK_SCHEMES`]. Without a
/// base, a relative URL is dropped. The URL is returned as the parser writes
/// it, so what is kept starts with exactly the scheme that was checked.
pub fn link_url(value: &str, base: Option<&WebUrl>) -> Option<Url> {
    let url = match base {
        Some(base) => base.0.join(value),
        None => Url::parse(value),
    }
    .ok()?;
    LINK_SCHEMES.contains(&url.scheme()).then_some(url)
}

#[derive(Debug, Clone)]
pub struct Links {
    /// The site's root, always ending in `/` so that joins keep any path prefix.
    base: Url,
    tokens: Tokens,
}

impl Links {
    pub fn new(config: &Config, tokens: Tokens) -> Links {
        let mut base = config.site.base_url.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Links { base, tokens }
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub fn home(&self) -> &Url {
        &self.base
    }

    /// An absolute URL under the site, e.g. `posts/essay/`.
    pub fn page(&self, relative: &str) -> Url {
        // Joining a relative path onto a base ending in `/` cannot fail.
        self.base
            .join(relative.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base.clone())
    }

    /// The public page of a post, which is also its "view in browser" link.
    pub fn post_page(&self, slug: &Slug) -> Url {
        self.page(&format!("posts/{}/", slug.as_str()))
    }

    /// Where a post is read: its own page, or for an imported post the blog's.
    /// A stored link that is not http(s) (an older version stored any) is never
    /// shown: the post's own page stands in for it.
    pub fn post(&self, post: &Post) -> String {
        post.external_url
            .as_deref()
            .and_then(|u| WebUrl::parse(u).ok())
            .map_or_else(|| self.post_page(&post.slug).to_string(), |u| u.to_string())
    }

    pub fn subscribe(&self) -> Url {
        self.page("subscribe")
    }

    pub fn unsubscribe(&self, subscriber_id: i64) -> String {
        let token = self.tokens.sign(Purpose::Unsubscribe, subscriber_id, None);
        self.with_token("unsubscribe", &token)
    }

    /// A reader's own page, where they choose how often and what they get.
    pub fn preferences(&self, subscriber_id: i64) -> String {
        let token = self.tokens.sign(Purpose::Preferences, subscriber_id, None);
        self.with_token("preferences", &token)
    }

    pub fn confirm(&self, subscriber_id: i64, expires: DateTime<Utc>) -> String {
        let token = self
            .tokens
            .sign(Purpose::Confirm, subscriber_id, Some(expires));
        self.with_token("confirm", &token)
    }

    /// A counted link of issue `issue_id`'s email: `https://site/c/LINK.TAG`,
    /// where `tag` is the email's tag (or the marker that stands for it). Written
    /// as text, not through the URL parser, which would escape a marker.
    pub fn counted_click(&self, issue_id: i64, url: &str, tag: &str) -> String {
        let link = self.tokens.counted_link(issue_id, url);
        format!("{}c/{link}.{tag}", self.base)
    }

    /// A new email's tag for issue `issue_id`: random, so that it names no
    /// reader (see [`crate::tokens::EmailTag`]).
    pub fn email_tag(&self, issue_id: i64) -> String {
        self.tokens.email_tag(crate::tokens::EmailTag {
            issue_id,
            tag: rand::random(),
        })
    }

    /// The open pixel of the email with `tag`: `https://site/o/TAG`.
    pub fn open_pixel(&self, tag: &str) -> String {
        format!("{}o/{tag}", self.base)
    }

    /// The absolute link of a token route: `https://site/unsubscribe/TOKEN`.
    pub fn with_token(&self, route: &str, token: &str) -> String {
        self.page(&format!("{route}/{token}")).to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn links_keep_a_path_prefix() {
        let config = Config::from_toml_str(
            "[site]\ntitle = \"t\"\nbase_url = \"https://example.com/essays\"\nauthor = \"a\"\n\
             [email]\nfrom = \"a@example.com\"\n",
            Path::new("config.toml"),
        )
        .unwrap();
        let links = Links::new(&config, Tokens::new(b"key"));
        let slug = Slug::parse("첫-글").unwrap();
        assert_eq!(
            links.post_page(&slug).as_str(),
            "https://example.com/essays/posts/%EC%B2%AB-%EA%B8%80/"
        );
        assert_eq!(
            links.page(RSS_PATH).as_str(),
            "https://example.com/essays/feed.xml"
        );
        assert!(links
            .unsubscribe(7)
            .starts_with("https://example.com/essays/unsubscribe/"));
    }
}
