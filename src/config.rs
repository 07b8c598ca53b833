//! `config.toml`: strict serde structs, overridable by `POSTHORN_<SECTION>__<KEY>`.
//!
//! Relative paths in the file are read against the folder that holds the file,
//! so `posthorn --config /srv/essays/config.toml check` works from anywhere.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use url::Url;

use crate::domain::{Frequency, Mailbox};
use crate::error::Error;

/// A password for someone else's server (the SMTP relay, the IMAP mailbox),
/// from the environment or the file. It never prints.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Password(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// The shortest secret posthorn accepts for a key of its own.
pub const MIN_SECRET_BYTES: usize = 16;

/// One of posthorn's own keys (`server.secret`, `server.admin_token`,
/// `bounces.webhook_secret`): at least [`MIN_SECRET_BYTES`], so that nobody can
/// guess it or compute an HMAC with an empty key. It never prints.
///
/// An empty value (what an unset variable in a compose file gives) reads as
/// unset, and start-up says so; every key is safe unset (the feature is off,
/// or a generated secret is used).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is {0} bytes long; a secret must have at least {MIN_SECRET_BYTES} (`openssl rand -hex 32` makes a good one)")]
pub struct SecretTooShort(usize);

impl Secret {
    pub fn new(value: impl Into<String>) -> Result<Self, SecretTooShort> {
        let value = value.into();
        if value.len() < MIN_SECRET_BYTES {
            return Err(SecretTooShort(value.len()));
        }
        Ok(Secret(value))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// `Option<Secret>` from the file or the environment: empty is unset (and
/// logged with its key by [`Config::load`]), too short is an error that
/// figment reports with its key.
fn optional_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Secret::new(v).map(Some).map_err(serde::de::Error::custom),
    }
}

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
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub dkim: Option<DkimConfig>,
    #[serde(default)]
    pub bounces: BouncesConfig,
    /// Folder of the config file; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub title: String,
    pub base_url: Url,
    pub author: String,
    pub email: Option<String>,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default = "default_timezone")]
    pub timezone: Tz,
    #[serde(default)]
    pub description: String,
    /// Folder whose files override the embedded templates of the same name.
    #[serde(default = "default_templates_dir")]
    pub templates_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostsConfig {
    #[serde(default = "default_posts_dir")]
    pub dir: PathBuf,
    /// An existing blog's RSS or Atom feed to follow.
    pub feed: Option<Url>,
    /// Bounds each fetch of `feed`.
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout_seconds: u64,
    /// Tags a reader may choose to follow. A post tagged with none of them goes
    /// to everyone.
    #[serde(default)]
    pub topics: Vec<String>,
    /// How a line break in a post reads (a post's front matter may say otherwise).
    #[serde(default = "default_line_breaks")]
    pub line_breaks: LineBreaks,
}

impl Default for PostsConfig {
    fn default() -> Self {
        PostsConfig {
            dir: default_posts_dir(),
            feed: None,
            fetch_timeout_seconds: default_fetch_timeout(),
            topics: Vec::new(),
            line_breaks: default_line_breaks(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedsConfig {
    #[serde(default = "default_feed_limit")]
    pub limit: usize,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig {
            limit: default_feed_limit(),
        }
    }
}

pub use crate::domain::LineBreaks;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default = "default_check")]
    pub check: String,
    /// The frequency of readers who have not chosen one.
    #[serde(default = "default_mode")]
    pub mode: Frequency,
    /// When readers who chose the digest get theirs.
    #[serde(default = "default_digest")]
    pub digest: String,
    /// More posts than this due in one tick go out as one digest.
    #[serde(default = "default_max_new_per_tick")]
    pub max_new_per_tick: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            check: default_check(),
            mode: default_mode(),
            digest: default_digest(),
            max_new_per_tick: default_max_new_per_tick(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    #[serde(default = "default_database_url")]
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_database_url(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    #[serde(default = "default_transport")]
    pub transport: TransportKind,
    #[serde(default = "default_outbox")]
    pub outbox_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    #[serde(default = "default_smtp_host")]
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<Password>,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_rate")]
    pub rate_per_second: u32,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff")]
    pub retry_backoff_seconds: u64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: default_smtp_host(),
            port: default_smtp_port(),
            tls: default_tls(),
            username: None,
            password: None,
            concurrency: default_concurrency(),
            rate_per_second: default_rate(),
            max_attempts: default_max_attempts(),
            retry_backoff_seconds: default_backoff(),
            timeout_seconds: default_timeout(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default, deserialize_with = "optional_secret")]
    pub secret: Option<Secret>,
    #[serde(default, deserialize_with = "optional_secret")]
    pub admin_token: Option<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: default_bind(),
            secret: None,
            admin_token: None,
        }
    }
}

/// `[bounces]`: reports that come back after the relay said 250.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncesConfig {
    /// VERP: the envelope sender becomes `local+TOKEN@domain`.
    pub return_path: Option<String>,
    #[serde(default = "default_hard_after")]
    pub hard_after: u32,
    #[serde(default = "default_soft_after")]
    pub soft_after: u32,
    /// A mailbox to poll at every tick: `imaps://user@host:993/INBOX`.
    pub imap_url: Option<Url>,
    pub imap_password: Option<Password>,
    /// An extra CA certificate (PEM) to trust for the IMAP server, beside the
    /// usual roots: for a server with a private CA.
    pub imap_ca_file: Option<PathBuf>,
    /// Postmark (basic-auth password) and Mailgun (signing key).
    #[serde(default, deserialize_with = "optional_secret")]
    pub webhook_secret: Option<Secret>,
    /// SendGrid's signed event webhook: its public key (base64 DER, as shown by SendGrid).
    pub sendgrid_public_key: Option<String>,
    /// Where SNS signing certificates come from: unset, they are fetched from
    /// the message's `SigningCertURL` (HTTPS, an `sns.*.amazonaws.com` host
    /// only); a PEM file here is used instead, for a closed network or tests.
    pub sns_certificate_file: Option<PathBuf>,
    /// The SNS topics SES publishes to; a message from any other topic is
    /// refused (anyone can point a topic of their own at the webhook).
    #[serde(default)]
    pub sns_topic_arns: Vec<String>,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig {
            return_path: None,
            hard_after: default_hard_after(),
            soft_after: default_soft_after(),
            imap_url: None,
            imap_password: None,
            imap_ca_file: None,
            webhook_secret: None,
            sendgrid_public_key: None,
            sns_certificate_file: None,
            sns_topic_arns: Vec::new(),
        }
    }
}

impl BouncesConfig {
    /// `return_path` split into local part and domain.
    pub fn verp(&self) -> Option<(String, String)> {
        let rp = self.return_path.as_deref()?;
        let (local, domain) = rp.rsplit_once('@')?;
        Some((local.to_string(), domain.to_ascii_lowercase()))
    }
}

/// The longest VERP token: two base-36 ids of up to 13 characters, a 16-digit
/// MAC, and two dashes.
pub const VERP_TOKEN_MAX: usize = 13 + 1 + 13 + 1 + 16;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    pub private_key_file: PathBuf,
    /// Dual signing (RFC 8463): a second key of the other kind (Ed25519 beside
    /// RSA, or RSA beside Ed25519), published under `second_selector`.
    pub second_private_key_file: Option<PathBuf>,
    pub second_selector: Option<String>,
}

fn default_language() -> String {
    "en".into()
}
fn default_timezone() -> Tz {
    Tz::UTC
}
fn default_templates_dir() -> PathBuf {
    "templates".into()
}
fn default_posts_dir() -> PathBuf {
    "posts".into()
}
fn default_fetch_timeout() -> u64 {
    30
}
fn default_feed_limit() -> usize {
    50
}
fn default_check() -> String {
    "0 */10 * * * *".into()
}
fn default_mode() -> Frequency {
    Frequency::Each
}
fn default_line_breaks() -> LineBreaks {
    LineBreaks::Markdown
}
fn default_digest() -> String {
    "0 0 9 * * Sat".into()
}
fn default_max_new_per_tick() -> usize {
    3
}
fn default_database_url() -> String {
    "sqlite://subscribers/posthorn.db".into()
}
fn default_transport() -> TransportKind {
    TransportKind::File
}
fn default_outbox() -> PathBuf {
    "outbox".into()
}
fn default_smtp_host() -> String {
    "localhost".into()
}
fn default_smtp_port() -> u16 {
    587
}
fn default_tls() -> TlsMode {
    TlsMode::Starttls
}
fn default_concurrency() -> usize {
    8
}
fn default_rate() -> u32 {
    50
}
fn default_max_attempts() -> u32 {
    6
}
fn default_backoff() -> u64 {
    60
}
fn default_timeout() -> u64 {
    30
}
fn default_hard_after() -> u32 {
    1
}
fn default_soft_after() -> u32 {
    5
}
fn default_bind() -> String {
    "127.0.0.1:8080".into()
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
        if self.smtp.concurrency == 0 {
            return Err(Error::Config("smtp.concurrency must be at least 1".into()));
        }
        if self.smtp.max_attempts == 0 {
            return Err(Error::Config("smtp.max_attempts must be at least 1".into()));
        }
        if self.smtp.timeout_seconds == 0 {
            return Err(Error::Config(
                "smtp.timeout_seconds must be at least 1".into(),
            ));
        }
        validate_cron("schedule.check", &self.schedule.check, self.site.timezone)?;
        validate_cron("schedule.digest", &self.schedule.digest, self.site.timezone)?;
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
        if let Some(rp) = &self.bounces.return_path {
            let address = crate::domain::EmailAddress::parse(rp)
                .map_err(|e| Error::Config(format!("bounces.return_path: {e}")))?;
            let local = address
                .as_str()
                .rsplit_once('@')
                .map(|(l, _)| l)
                .unwrap_or("");
            if local.contains('+') || local.len() + 1 + VERP_TOKEN_MAX > 64 {
                return Err(Error::Config(format!(
                    "bounces.return_path: the local part `{local}` must have no `+` and at most {} characters, so that `{local}+TOKEN` fits the 64 an address may have",
                    64 - 1 - VERP_TOKEN_MAX
                )));
            }
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
        if self.email.transport == TransportKind::Smtp
            && self.smtp.username.is_some()
            && self.smtp.password.is_none()
        {
            return Err(Error::Config(
                "smtp.username is set but no password: set POSTHORN_SMTP__PASSWORD".into(),
            ));
        }
        Ok(())
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

/// When the cron expression `cron` (with seconds) fires next after `now`, in `tz`.
pub fn next_time(
    cron: &str,
    tz: chrono_tz::Tz,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let parsed = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(cron)
        .ok()?;
    parsed
        .find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A six-field cron expression (with seconds) as the scheduler reads it.
fn validate_cron(key: &str, cron: &str, tz: Tz) -> Result<(), Error> {
    tokio_cron_scheduler::Job::new_async_tz(cron, tz, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|e| {
            Error::Config(format!(
                "{key} `{cron}` is not a six-field cron expression: {e}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
