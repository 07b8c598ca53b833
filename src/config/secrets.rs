//! Secrets in the config: someone else's passwords and posthorn's own keys.
//! Neither ever prints.

use std::fmt;

use serde::Deserialize;

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
/// logged with its key by [`super::Config::load`]), too short is an error that
/// figment reports with its key.
pub(super) fn optional_secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Secret>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Secret::new(v).map(Some).map_err(serde::de::Error::custom),
    }
}
