//! `config.toml`: strict serde structs, overridable by `POSTHORN_<SECTION>__<KEY>`.
//!
//! Relative paths in the file are read against the folder that holds the file,
//! so `posthorn --config /srv/essays/config.toml check` works from anywhere.

mod analytics;
mod bounces;
mod email;
mod schedule;
mod secrets;
mod server;
mod site;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

use crate::error::Error;

pub use analytics::AnalyticsConfig;
pub use bounces::{
    BouncesConfig, MailboxUrl, MailboxUrlError, ReturnPath, ReturnPathError, VERP_TOKEN_MAX,
};
pub use email::{DkimConfig, EmailConfig, RelayName, SmtpConfig, TlsMode, TransportKind};
pub use schedule::{next_time, Cron, CronError, ScheduleConfig};
pub use secrets::{Password, Secret, SecretTooShort, MIN_SECRET_BYTES};
pub use server::{DatabaseConfig, LogFormat, ServerConfig};
pub use site::{FeedsConfig, LineBreaks, PostsConfig, SiteConfig};

/// The whole file. `[site]` and `[email]` are required; every other section
/// may be left out, and each key it leaves out takes the section's default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub site: SiteConfig,
    #[serde(default)]
    pub posts: PostsConfig,
    #[serde(default)]
    pub feeds: FeedsConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    pub email: EmailConfig,
    #[serde(default)]
    pub smtp: SmtpConfig,
    /// More relays beside `[smtp]`, with the same keys.
    #[serde(default)]
    pub relays: std::collections::BTreeMap<RelayName, SmtpConfig>,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub dkim: Option<DkimConfig>,
    #[serde(default)]
    pub bounces: BouncesConfig,
    #[serde(default)]
    pub analytics: AnalyticsConfig,
    /// Folder of the config file; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Config {
    /// Reads the file at `path`, then the `POSTHORN_*` environment on top of it.
    pub fn load(path: &Path) -> Result<Config, Error> {
        if !path.exists() {
            return Err(Error::Config(format!(
                "{} does not exist; run `posthorn init` to create a site, or pass --config PATH",
                path.display()
            )));
        }
        Self::from_figment(
            Figment::new()
                .merge(Toml::file_exact(path))
                // Only `SECTION__KEY` names are overrides; other POSTHORN_* variables are left alone.
                .merge(
                    Env::prefixed("POSTHORN_")
                        .filter(|k| k.as_str().contains("__"))
                        .split("__"),
                ),
            path,
        )
    }

    /// Parses configuration text as if it were the file at `path` (no environment).
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Config, Error> {
        Self::from_figment(Figment::new().merge(Toml::string(text)), path)
    }

    fn from_figment(figment: Figment, path: &Path) -> Result<Config, Error> {
        let mut config: Config = figment.extract().map_err(|e| {
            // figment reports one error per problem; show them all, each with its key.
            let lines: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            Error::Config(format!("{}: {}", path.display(), lines.join("; ")))
        })?;
        config.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.site.base_url.cannot_be_a_base() || self.site.base_url.host_str().is_none() {
            return Err(Error::Config(format!(
                "site.base_url must be an absolute http(s) URL, got `{}`",
                self.site.base_url
            )));
        }
        for (name, relay) in self.all_relays() {
            let section = if name == RelayName::smtp() {
                "smtp".to_string()
            } else {
                format!("relays.{name}")
            };
            if relay.concurrency == 0 {
                return Err(Error::Config(format!(
                    "{section}.concurrency must be at least 1"
                )));
            }
            if relay.timeout_seconds == 0 {
                return Err(Error::Config(format!(
                    "{section}.timeout_seconds must be at least 1"
                )));
            }
            if self.email.transport == TransportKind::Smtp
                && relay.username.is_some()
                && relay.password.is_none()
            {
                let var = section.to_ascii_uppercase().replace('.', "__");
                return Err(Error::Config(format!(
                    "{section}.username is set but no password: set POSTHORN_{var}__PASSWORD"
                )));
            }
        }
        // Retries are the reader's, not a relay's: one budget for all of them.
        let defaults = SmtpConfig::default();
        for (name, relay) in &self.relays {
            if relay.max_attempts != defaults.max_attempts
                || relay.retry_backoff_seconds != defaults.retry_backoff_seconds
            {
                return Err(Error::Config(format!(
                    "relays.{name}: max_attempts and retry_backoff_seconds are set in [smtp], \
                     for every relay (a reader's retries do not depend on the relay)"
                )));
            }
        }
        if self.smtp.max_attempts == 0 {
            return Err(Error::Config("smtp.max_attempts must be at least 1".into()));
        }
        if self.all_relays().all(|(_, r)| r.weight == 0) {
            return Err(Error::Config(
                "every relay has weight 0: give [smtp] or one [relays.NAME] a weight of 1 or more"
                    .into(),
            ));
        }
        if self.schedule.max_new_per_tick == 0 {
            return Err(Error::Config(
                "schedule.max_new_per_tick must be at least 1".into(),
            ));
        }
        if let Some(t) = self.posts.topics.iter().find(|t| t.trim().is_empty()) {
            return Err(Error::Config(format!(
                "posts.topics: `{t}` is empty; list tags as they are written in posts"
            )));
        }
        if self.feeds.limit == 0 {
            return Err(Error::Config("feeds.limit must be at least 1".into()));
        }
        if self.bounces.hard_after == 0 || self.bounces.soft_after == 0 {
            return Err(Error::Config(
                "bounces.hard_after and bounces.soft_after must be at least 1".into(),
            ));
        }
        if self.bounces.imap_url.is_some() && self.bounces.imap_password.is_none() {
            return Err(Error::Config(
                "bounces.imap_url is set but no password: set POSTHORN_BOUNCES__IMAP_PASSWORD"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `[smtp]` (named `smtp`) and every `[relays.NAME]`, in that order.
    pub fn all_relays(&self) -> impl Iterator<Item = (RelayName, &SmtpConfig)> + '_ {
        std::iter::once((RelayName::smtp(), &self.smtp))
            .chain(self.relays.iter().map(|(n, r)| (n.clone(), r)))
    }

    /// Resolves a configured path against the config file's folder.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Host of the site, used for List-Id and tag: URIs.
    pub fn site_host(&self) -> String {
        self.site
            .base_url
            .host_str()
            .unwrap_or("localhost")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Frequency;

    const MINIMAL: &str = r#"
[site]
title = "에세이"
base_url = "https://essays.example.com"
author = "Jerry"
timezone = "Asia/Seoul"
language = "ko"

[email]
from = "Jerry <essays@example.com>"
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml_str(MINIMAL, Path::new("site/config.toml")).unwrap();
        assert_eq!(c.smtp.concurrency, 8);
        assert_eq!(c.feeds.limit, 50);
        assert_eq!(c.email.transport, TransportKind::File);
        assert_eq!(c.site.timezone, chrono_tz::Asia::Seoul);
        assert_eq!(c.base_dir, PathBuf::from("site"));
        assert_eq!(c.path(Path::new("posts")), PathBuf::from("site/posts"));
    }

    #[test]
    fn a_relay_does_not_set_the_readers_retries() {
        let relay = format!("{MINIMAL}\n[relays.backup]\nhost = \"mx.example.com\"\n");
        assert!(Config::from_toml_str(&relay, Path::new("config.toml")).is_ok());
        let own = format!("{relay}max_attempts = 2\n");
        let err = Config::from_toml_str(&own, Path::new("config.toml")).unwrap_err();
        assert!(err.to_string().contains("relays.backup"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("[email]", "[email]\ntransprt = \"smtp\"");
        let err = Config::from_toml_str(&text, Path::new("config.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("transprt"), "{msg}");
    }

    #[test]
    fn secrets_never_print() {
        let text = MINIMAL.replace(
            "[email]",
            "[server]\nsecret = \"hunter2-hunter2-hunter2\"\n[email]",
        );
        let c = Config::from_toml_str(&text, Path::new("config.toml")).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.server.secret.unwrap().expose(), "hunter2-hunter2-hunter2");
    }

    #[test]
    fn a_short_secret_is_refused_by_name_and_an_empty_one_is_unset() {
        for key in ["secret", "admin_token"] {
            let text = MINIMAL.replace(
                "[email]",
                &format!("[server]\n{key} = \"hunter2\"\n[email]"),
            );
            let msg = Config::from_toml_str(&text, Path::new("config.toml"))
                .unwrap_err()
                .to_string();
            assert!(msg.contains(key) && msg.contains("16"), "{msg}");
        }
        let text = format!("{MINIMAL}\n[bounces]\nwebhook_secret = \"x\"\n");
        let msg = Config::from_toml_str(&text, Path::new("config.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("webhook_secret"), "{msg}");
        let text = MINIMAL.replace(
            "[email]",
            "[server]\nsecret = \"\"\nadmin_token = \"\"\n[email]",
        );
        let c = Config::from_toml_str(&text, Path::new("config.toml")).unwrap();
        assert!(c.server.secret.is_none() && c.server.admin_token.is_none());
    }

    #[test]
    fn a_bad_from_address_or_cron_is_named() {
        let text = MINIMAL.replace("Jerry <essays@example.com>", "Jerry <essays@>");
        let msg = Config::from_toml_str(&text, Path::new("config.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("from") && msg.contains("essays@"), "{msg}");
        let text = format!("{MINIMAL}\n[schedule]\ncheck = \"every day\"\n");
        let msg = Config::from_toml_str(&text, Path::new("config.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("schedule.check"), "{msg}");
    }

    #[test]
    fn the_sample_file_reads_as_the_defaults() {
        let sample = include_str!("../../config.toml");
        let c = Config::from_toml_str(sample, Path::new("config.toml")).unwrap();
        let plain = Config::from_toml_str(MINIMAL, Path::new("config.toml")).unwrap();
        // Every section but [site] as written in the sample is what a minimal file gets.
        let sections = |c: &Config| {
            format!(
                "{:?}",
                (
                    &c.posts,
                    &c.feeds,
                    &c.schedule,
                    &c.database,
                    &c.email,
                    &c.smtp,
                    &c.server,
                    &c.bounces
                )
            )
        };
        assert_eq!(sections(&c), sections(&plain));
        assert_eq!(c.site.templates_dir, plain.site.templates_dir);
    }

    #[test]
    fn a_section_given_in_part_keeps_the_other_defaults() {
        let text = format!("{MINIMAL}\n[smtp]\nport = 2525\n[schedule]\nmode = \"digest\"\n");
        let c = Config::from_toml_str(&text, Path::new("config.toml")).unwrap();
        assert_eq!((c.smtp.port, c.smtp.concurrency), (2525, 8));
        assert_eq!(c.smtp.host, "localhost");
        assert_eq!(c.schedule.mode, Frequency::Digest);
        assert_eq!(c.schedule.check.as_str(), "0 */10 * * * *");
        assert_eq!(c.schedule.max_new_per_tick, 3);
    }

    #[test]
    fn a_bad_return_path_or_mailbox_url_is_named_with_its_key() {
        let cases = [
            (
                "return_path = \"bounces+x@example.com\"",
                "return_path",
                "no `+`",
            ),
            ("return_path = \"bounces\"", "return_path", "has no @"),
            (
                "imap_url = \"imap://reports@example.com/INBOX\"\nimap_password = \"x\"",
                "imap_url",
                "imaps://",
            ),
            (
                "imap_url = \"reports\"\nimap_password = \"x\"",
                "imap_url",
                "not a URL",
            ),
        ];
        for (line, key, why) in cases {
            let text = format!("{MINIMAL}\n[bounces]\n{line}\n");
            let msg = Config::from_toml_str(&text, Path::new("config.toml"))
                .unwrap_err()
                .to_string();
            assert!(msg.contains(key) && msg.contains(why), "{line}: {msg}");
        }
        let text = format!(
            "{MINIMAL}\n[bounces]\nreturn_path = \"Bounces@Bounce.Example.com\"\n\
             imap_url = \"imaps://reports%40example.com@imap.example.com/INBOX\"\n\
             imap_password = \"x\"\n"
        );
        let c = Config::from_toml_str(&text, Path::new("config.toml")).unwrap();
        let rp = c.bounces.return_path.unwrap();
        assert_eq!((rp.local(), rp.domain()), ("Bounces", "bounce.example.com"));
        let url = c.bounces.imap_url.unwrap();
        assert_eq!(url.name(), "reports@example.com@imap.example.com:993/INBOX");
    }

    #[test]
    fn a_cron_from_the_file_is_named_with_its_key_and_text() {
        let text = format!("{MINIMAL}\n[schedule]\ndigest = \"0 9 * * Sat\"\n");
        let msg = Config::from_toml_str(&text, Path::new("config.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("schedule.digest") && msg.contains("`0 9 * * Sat`"),
            "{msg}"
        );
    }
}
