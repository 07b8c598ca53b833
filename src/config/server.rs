//! `[server]` and `[database]`: where posthorn listens and what it keeps.

use serde::Deserialize;

use super::secrets::{optional_secret, Secret};

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    /// The HMAC key for links in emails; unset, one is generated and stored.
    #[serde(deserialize_with = "optional_secret")]
    pub secret: Option<Secret>,
    /// The admin API, the dashboard and `/metrics` are off while unset.
    #[serde(deserialize_with = "optional_secret")]
    pub admin_token: Option<Secret>,
    /// Reads `/metrics` and nothing else: what a Prometheus server holds.
    #[serde(deserialize_with = "optional_secret")]
    pub metrics_token: Option<Secret>,
    pub log_format: LogFormat,
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// A line for a person.
    #[default]
    Text,
    /// One JSON object a line: time, level, message and fields.
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            secret: None,
            admin_token: None,
            metrics_token: None,
            log_format: LogFormat::Text,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` (relative to the config file) or `postgres://…`.
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://subscribers/posthorn.db".into(),
        }
    }
}
