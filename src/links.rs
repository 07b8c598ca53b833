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
    pub fn post(&self, post: &Post) -> String {
        post.external_url
            .clone()
            .unwrap_or_else(|| self.post_page(&post.slug).to_string())
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
