//! `[email]`, `[smtp]` and `[dkim]`: how letters are written, signed and sent.

use std::path::PathBuf;

use serde::Deserialize;

use super::Password;
use crate::domain::NamedAddress;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// `.eml` files in `email.outbox_dir`: nothing leaves the machine.
    #[default]
    File,
    Smtp,
}

/// `[email]`. `from` has no default, so this section takes its defaults key
/// by key instead of from one `impl Default`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub from: NamedAddress,
    pub reply_to: Option<NamedAddress>,
    #[serde(default)]
    pub transport: TransportKind,
    #[serde(default = "EmailConfig::default_outbox")]
    pub outbox_dir: PathBuf,
}

impl EmailConfig {
    fn default_outbox() -> PathBuf {
        "outbox".into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    None,
    Starttls,
    Tls,
}

/// `[smtp]`: the relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<Password>,
    /// Parallel SMTP connections.
    pub concurrency: usize,
    /// Across all connections; 0 is unlimited.
    pub rate_per_second: u32,
    pub max_attempts: u32,
    /// The first retry's delay; it doubles each attempt.
    pub retry_backoff_seconds: u64,
    pub timeout_seconds: u64,
    /// This relay's share of the sending beside `[relays.*]`; 0 makes it a
    /// standby, used only while every weighted relay is down.
    pub weight: u32,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".into(),
            port: 587,
            tls: TlsMode::Starttls,
            username: None,
            password: None,
            concurrency: 8,
            rate_per_second: 50,
            max_attempts: 6,
            retry_backoff_seconds: 60,
            timeout_seconds: 30,
            weight: 1,
        }
    }
}

/// The name of a relay: `smtp` for `[smtp]`, or the `NAME` of `[relays.NAME]`,
/// which the environment spells `POSTHORN_RELAYS__NAME__PASSWORD` (so lower
/// case letters, digits, `-` and `_`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct RelayName(String);

impl RelayName {
    /// `[smtp]`'s name.
    pub fn smtp() -> RelayName {
        RelayName("smtp".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RelayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RelayName {
    type Err = String;
    fn from_str(s: &str) -> Result<RelayName, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!(
                "relay name `{s}`: use lower-case letters, digits, `-` and `_` (at most 64)"
            ));
        }
        if s == "smtp" {
            return Err("relay name `smtp` is [smtp]'s own; name the table otherwise".into());
        }
        Ok(RelayName(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for RelayName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RelayName, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `[dkim]`, optional as a whole; every key but the second key's is required.
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
