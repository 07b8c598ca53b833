//! Handlebars templates: embedded defaults, each overridable by a file of the same
//! name in the configured templates folder.

pub mod charts;
pub mod email;
pub mod pages;

use handlebars::Handlebars;
use serde::Serialize;

use crate::config::Config;
use crate::domain::Post;
use crate::error::Error;
use crate::links::{Links, ATOM_PATH, JSON_PATH, RSS_PATH};

/// The built-in text of every template a user may edit, by file name.
macro_rules! embedded {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../../templates/", $file)))),*]
    };
}

pub const DEFAULT_TEMPLATES: &[(&str, &str)] = embedded![
    "email.html.hbs",
    "email.txt.hbs",
    "digest.html.hbs",
    "digest.txt.hbs",
    "digest.subject.txt.hbs",
    "welcome.html.hbs",
    "welcome.txt.hbs",
    "welcome.subject.txt.hbs",
    "preferences.html.hbs",
    "confirm.subject.txt.hbs",
    "confirm.txt.hbs",
    "confirm.html.hbs",
    "head.html.hbs",
    "index.html.hbs",
    "post.html.hbs",
    "subscribe.html.hbs",
    "message.html.hbs",
    "unsubscribe.html.hbs",
    "admin-head.html.hbs",
    "admin-nav.html.hbs",
    "admin-login.html.hbs",
    "admin-overview.html.hbs",
    "admin-posts.html.hbs",
    "admin-post.html.hbs",
    "admin-send.html.hbs",
    "admin-issue.html.hbs",
    "admin-delivery.html.hbs",
    "admin-subscribers.html.hbs",
    "admin-subscriber.html.hbs",
    "admin-bounces.html.hbs",
    "admin-error.html.hbs",
];

/// The dashboard's words, by language: a template file like the others.
const ADMIN_WORDS: (&str, &str) = (
    "admin-words.json",
    include_str!("../../templates/admin-words.json"),
);

/// The site's templates, ready to render: two registries (HTML templates escape
/// what they insert, text templates do not: there is no markup in a plain-text
/// email to protect), and what every template gets as `site`.
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    site: serde_json::Value,
    timezone: chrono_tz::Tz,
    language: String,
    links: Links,
    /// The dashboard's words in the site's language (`t` in its templates).
    admin_words: serde_json::Value,
}

impl Templates {
    pub fn load(config: &Config, links: &Links) -> Result<Templates, Error> {
        let dir = config.path(&config.site.templates_dir);
        let mut html = Handlebars::new();
        let mut text = Handlebars::new();
        text.register_escape_fn(handlebars::no_escape);
        for (file, default) in DEFAULT_TEMPLATES {
            let path = dir.join(file);
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => default.to_string(),
                Err(e) => return Err(Error::io(path, e)),
            };
            let name = template_name(file);
            let registry = if name.ends_with(".txt") {
                &mut text
            } else {
                &mut html
            };
            registry
                .register_template_string(name, source)
                .map_err(|e| Error::template(path.display().to_string(), e))?;
        }
        let admin_words = admin_words(&dir, &config.site.language)?;
        Ok(Templates {
            admin_words,
            html,
            text,
            site: site_context(config, links),
            timezone: config.site.timezone,
            language: config.site.language.clone(),
            links: links.clone(),
        })
    }

    /// Renders `name` (`email.html`, `email.txt`, …) with `data`.
    pub fn render<T: Serialize>(&self, name: &str, data: &T) -> Result<String, Error> {
        let registry = if name.ends_with(".txt") {
            &self.text
        } else {
            &self.html
        };
        registry
            .render(name, data)
            .map_err(|e| Error::template(name, e))
    }

    /// Renders a page or message template with `site` added to `data`.
    pub fn page(&self, name: &str, mut data: serde_json::Value) -> Result<String, Error> {
        data["site"] = self.site.clone();
        self.render(name, &data)
    }

    /// Renders a dashboard page: `site` and the words `t` added to `data`.
    pub fn admin_page(&self, name: &str, mut data: serde_json::Value) -> Result<String, Error> {
        data["t"] = self.admin_words.clone();
        self.page(name, data)
    }

    /// One word of the dashboard, by key (the key itself when missing).
    pub fn admin_word(&self, key: &str) -> String {
        self.admin_words
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or(key)
            .to_string()
    }

    /// What every template gets as `post` (without its content).
    fn post(&self, post: &Post) -> serde_json::Value {
        let date = post.published_at.with_timezone(&self.timezone);
        serde_json::json!({
            "title": post.title,
            "slug": post.slug.as_str(),
            "url": self.links.post(post),
            "date": human_date(date, &self.language),
            "date_iso": date.to_rfc3339(),
            "summary": post.summary,
            "tags": post.tags,
        })
    }
}

/// The words file (`templates/admin-words.json`, or the built-in one), in the
/// site's language: Korean for `ko…`, English otherwise.
fn admin_words(dir: &std::path::Path, language: &str) -> Result<serde_json::Value, Error> {
    let (file, default) = ADMIN_WORDS;
    let path = dir.join(file);
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => default.to_string(),
        Err(e) => return Err(Error::io(path, e)),
    };
    let all: serde_json::Value = serde_json::from_str(&source)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let key = if language.starts_with("ko") {
        "ko"
    } else {
        "en"
    };
    Ok(all.get(key).cloned().unwrap_or(serde_json::Value::Null))
}

fn template_name(file: &str) -> &str {
    file.strip_suffix(".hbs").unwrap_or(file)
}

/// What every template gets as `site`.
fn site_context(config: &Config, links: &Links) -> serde_json::Value {
    serde_json::json!({
        "title": config.site.title,
        "url": links.home().as_str(),
        "author": config.site.author,
        "description": config.site.description,
        "language": config.site.language,
        "korean": config.site.language.starts_with("ko"),
        "subscribe_url": links.subscribe().as_str(),
        "feeds": {
            "rss": links.page(RSS_PATH).as_str(),
            "atom": links.page(ATOM_PATH).as_str(),
            "json": links.page(JSON_PATH).as_str(),
        },
    })
}

/// A date as people of the site's language write it.
pub fn human_date(date: chrono::DateTime<chrono_tz::Tz>, language: &str) -> String {
    if language.starts_with("ko") {
        date.format("%Y년 %-m월 %-d일").to_string()
    } else {
        date.format("%-d %B %Y").to_string()
    }
}
