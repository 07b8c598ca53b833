//! `[site]`, `[posts]` and `[feeds]`: what is published, and from where.

use std::path::PathBuf;

use chrono_tz::Tz;
use serde::Deserialize;
use url::Url;

pub use crate::domain::LineBreaks;

/// `[site]`. `title`, `base_url` and `author` have no default, so this section
/// takes its defaults key by key instead of from one `impl Default`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub title: String,
    pub base_url: Url,
    pub author: String,
    pub email: Option<String>,
    #[serde(default = "SiteConfig::default_language")]
    pub language: String,
    /// UTC when unset.
    #[serde(default)]
    pub timezone: Tz,
    #[serde(default)]
    pub description: String,
    /// Folder whose files override the embedded templates of the same name.
    #[serde(default = "SiteConfig::default_templates_dir")]
    pub templates_dir: PathBuf,
}

impl SiteConfig {
    fn default_language() -> String {
        "en".into()
    }
    fn default_templates_dir() -> PathBuf {
        "templates".into()
    }
}

/// `[posts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostsConfig {
    pub dir: PathBuf,
    /// An existing blog's RSS or Atom feed to follow.
    pub feed: Option<Url>,
    /// Bounds each fetch of `feed`.
    pub fetch_timeout_seconds: u64,
    /// Tags a reader may choose to follow. A post tagged with none of them goes
    /// to everyone.
    pub topics: Vec<String>,
    /// How a line break in a post reads (a post's front matter may say otherwise).
    pub line_breaks: LineBreaks,
}

impl Default for PostsConfig {
    fn default() -> Self {
        PostsConfig {
            dir: "posts".into(),
            feed: None,
            fetch_timeout_seconds: 30,
            topics: Vec::new(),
            line_breaks: LineBreaks::Markdown,
        }
    }
}

/// `[feeds]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsConfig {
    /// Items in each feed, newest first.
    pub limit: usize,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig { limit: 50 }
    }
}
