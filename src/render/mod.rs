//! Handlebars templates: embedded defaults, each overridable by a file of the same
//! name in the configured templates folder.

pub mod email;
pub mod pages;

use handlebars::Handlebars;
use serde::Serialize;

use crate::config::Config;
use crate::error::Error;

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
    "confirm.subject.txt.hbs",
    "confirm.txt.hbs",
    "confirm.html.hbs",
    "head.html.hbs",
    "index.html.hbs",
    "post.html.hbs",
    "subscribe.html.hbs",
    "message.html.hbs",
    "unsubscribe.html.hbs",
];

/// Two registries: HTML templates escape what they insert, text templates do not
/// (there is no markup in a plain-text email to protect).
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl Templates {
    pub fn load(config: &Config) -> Result<Templates, Error> {
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
                .map_err(|e| Error::Template {
                    name: path.display().to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(Templates { html, text })
    }

    /// Renders `name` (`email.html`, `email.txt`, …) with `data`.
    pub fn render<T: Serialize>(&self, name: &str, data: &T) -> Result<String, Error> {
        let registry = if name.ends_with(".txt") {
            &self.text
        } else {
            &self.html
        };
        registry.render(name, data).map_err(|e| Error::Template {
            name: name.to_string(),
            message: e.to_string(),
        })
    }
}

fn template_name(file: &str) -> &str {
    file.strip_suffix(".hbs").unwrap_or(file)
}

/// What every template gets as `site`.
pub fn site_context(config: &Config) -> serde_json::Value {
    serde_json::json!({
        "title": config.site.title,
        "url": config.base_url().as_str(),
        "author": config.site.author,
        "description": config.site.description,
        "language": config.site.language,
        "korean": config.site.language.starts_with("ko"),
        "subscribe_url": config.site_url("subscribe").as_str(),
        "feeds": {
            "rss": config.site_url(crate::feeds::RSS_PATH).as_str(),
            "atom": config.site_url(crate::feeds::ATOM_PATH).as_str(),
            "json": config.site_url(crate::feeds::JSON_PATH).as_str(),
        },
    })
}

/// What every template gets as `post` (without its content).
pub fn post_context(config: &Config, post: &crate::store::PostRecord) -> serde_json::Value {
    let date = post.published_at.with_timezone(&config.site.timezone);
    serde_json::json!({
        "title": post.title,
        "slug": post.slug.as_str(),
        "url": crate::feeds::post_link(config, post),
        "date": human_date(date, &config.site.language),
        "date_iso": date.to_rfc3339(),
        "summary": post.summary,
        "tags": post.tags,
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
