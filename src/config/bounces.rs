//! `[bounces]`: reports that come back after the relay said 250, and the two
//! values that arrive parsed for them: the VERP return path and the mailbox URL.

use std::path::PathBuf;

use rustls_pki_types::ServerName;
use serde::Deserialize;
use url::Url;

use super::secrets::{optional_secret, Password, Secret};
use crate::domain::EmailAddress;

/// `[bounces]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BouncesConfig {
    /// VERP: the envelope sender becomes `local+TOKEN@domain`.
    pub return_path: Option<ReturnPath>,
    /// Hard bounces (the address is gone) before a subscriber is `bounced`.
    pub hard_after: u32,
    /// Soft bounces in a row before a subscriber is `bounced`.
    pub soft_after: u32,
    /// A mailbox to poll at every tick: `imaps://user@host:993/INBOX`.
    pub imap_url: Option<MailboxUrl>,
    pub imap_password: Option<Password>,
    /// An extra CA certificate (PEM) to trust for the IMAP server, beside the
    /// usual roots: for a server with a private CA.
    pub imap_ca_file: Option<PathBuf>,
    /// Postmark (basic-auth password) and Mailgun (signing key).
    #[serde(deserialize_with = "optional_secret")]
    pub webhook_secret: Option<Secret>,
    /// SendGrid's signed event webhook: its public key (base64 DER, as shown by SendGrid).
    pub sendgrid_public_key: Option<String>,
    /// Where SNS signing certificates come from: unset, they are fetched from
    /// the message's `SigningCertURL` (HTTPS, an `sns.*.amazonaws.com` host
    /// only); a PEM file here is used instead, for a closed network or tests.
    pub sns_certificate_file: Option<PathBuf>,
    /// The SNS topics SES publishes to; a message from any other topic is
    /// refused (anyone can point a topic of their own at the webhook).
    pub sns_topic_arns: Vec<String>,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig {
            return_path: None,
            hard_after: 1,
            soft_after: 5,
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

/// The longest VERP token: two base-36 ids of up to 13 characters, a 16-digit
/// MAC, and two dashes.
pub const VERP_TOKEN_MAX: usize = 13 + 1 + 13 + 1 + 16;

/// The longest local part an address may have (RFC 5321 4.5.3.1.1).
const LOCAL_PART_MAX: usize = 64;

/// `bounces.return_path`, held as its two parts: every message's envelope
/// sender is `local+TOKEN@domain`, and reports are searched for that shape.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ReturnPath {
    local: String,
    /// Lower-cased.
    domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnPathError {
    #[error("{0}")]
    Address(String),
    #[error("the local part `{0}` must have no `+` and at most {max} characters, so that `{0}+TOKEN` fits the {LOCAL_PART_MAX} an address may have", max = LOCAL_PART_MAX - 1 - VERP_TOKEN_MAX)]
    LocalPart(String),
}

impl ReturnPath {
    pub fn parse(text: &str) -> Result<ReturnPath, ReturnPathError> {
        let address = EmailAddress::parse(text).map_err(ReturnPathError::Address)?;
        let (local, domain) = address
            .as_str()
            .rsplit_once('@')
            .ok_or_else(|| ReturnPathError::Address(format!("`{text}` has no @")))?;
        if local.contains('+') || local.len() + 1 + VERP_TOKEN_MAX > LOCAL_PART_MAX {
            return Err(ReturnPathError::LocalPart(local.to_string()));
        }
        Ok(ReturnPath {
            local: local.to_string(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The envelope sender that names one delivery: `local+TOKEN@domain`.
    pub fn with_token(&self, token: &str) -> String {
        format!("{}+{token}@{}", self.local, self.domain)
    }
}

impl TryFrom<String> for ReturnPath {
    type Error = ReturnPathError;
    fn try_from(text: String) -> Result<ReturnPath, ReturnPathError> {
        ReturnPath::parse(&text)
    }
}

/// `bounces.imap_url`, `imaps://user@host:993/FOLDER`, parsed: where to poll.
/// A password in the URL is not kept; it comes from `bounces.imap_password`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct MailboxUrl {
    host: String,
    /// `host` as TLS checks it against the server's certificate.
    server_name: ServerName<'static>,
    port: u16,
    user: String,
    folder: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxUrlError {
    #[error("`{text}` is not a URL: {source}")]
    NotUrl {
        text: String,
        source: url::ParseError,
    },
    #[error("`{0}` is not supported: use imaps:// (IMAP over TLS), so that the password never travels in the clear")]
    Scheme(String),
    #[error("no host")]
    NoHost,
    #[error("`{0}` is not a host name")]
    HostName(String),
    #[error("the user name is not UTF-8")]
    UserNotUtf8,
    #[error("no user: imaps://USER@host/FOLDER (write @ in the user as %40)")]
    NoUser,
    #[error("the folder is not UTF-8")]
    FolderNotUtf8,
}

impl MailboxUrl {
    pub fn parse(text: &str) -> Result<MailboxUrl, MailboxUrlError> {
        let url = Url::parse(text).map_err(|source| MailboxUrlError::NotUrl {
            text: text.to_string(),
            source,
        })?;
        if url.scheme() != "imaps" {
            return Err(MailboxUrlError::Scheme(url.scheme().to_string()));
        }
        let host = url
            .host_str()
            .ok_or(MailboxUrlError::NoHost)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| MailboxUrlError::HostName(host.clone()))?;
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8()
            .map_err(|_| MailboxUrlError::UserNotUtf8)?
            .into_owned();
        if user.is_empty() {
            return Err(MailboxUrlError::NoUser);
        }
        let folder = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
            .decode_utf8()
            .map_err(|_| MailboxUrlError::FolderNotUtf8)?
            .into_owned();
        Ok(MailboxUrl {
            host,
            server_name,
            port: url.port().unwrap_or(993),
            user,
            folder: if folder.is_empty() {
                "INBOX".into()
            } else {
                folder
            },
        })
    }

    /// `host:port`, to connect to (an IPv6 host in brackets).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// The address without secrets, to name the mailbox in logs and state.
    pub fn name(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.folder)
    }
}

impl TryFrom<String> for MailboxUrl {
    type Error = MailboxUrlError;
    fn try_from(text: String) -> Result<MailboxUrl, MailboxUrlError> {
        MailboxUrl::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_path_is_split_once_with_its_domain_lower_cased() {
        let rp = ReturnPath::parse("Bounces@Bounce.Example.COM").unwrap();
        assert_eq!(rp.local(), "Bounces");
        assert_eq!(rp.domain(), "bounce.example.com");
        assert_eq!(rp.with_token("abc"), "Bounces+abc@bounce.example.com");
    }

    #[test]
    fn a_return_path_that_cannot_carry_a_token_is_refused() {
        let msg = ReturnPath::parse("bounces+x@example.com")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`bounces+x`") && msg.contains("no `+`"),
            "{msg}"
        );
        let long = format!("{}@example.com", "b".repeat(20));
        let msg = ReturnPath::parse(&long).unwrap_err().to_string();
        assert!(msg.contains("at most 19 characters"), "{msg}");
        assert!(ReturnPath::parse(&format!("{}@example.com", "b".repeat(19))).is_ok());
        for bad in ["bounces", "bounces@localhost", ""] {
            assert!(
                matches!(ReturnPath::parse(bad), Err(ReturnPathError::Address(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_mailbox_url_is_read_into_its_parts() {
        let url =
            MailboxUrl::parse("imaps://reports%40example.com@[::1]:1993/Bounces%20In").unwrap();
        assert_eq!(url.user(), "reports@example.com");
        assert_eq!(url.address(), "[::1]:1993");
        assert_eq!(url.folder(), "Bounces In");
        let url = MailboxUrl::parse("imaps://reports@imap.example.com").unwrap();
        assert_eq!(url.name(), "reports@imap.example.com:993/INBOX");
    }

    #[test]
    fn a_bad_mailbox_url_says_what_is_wrong() {
        let cases = [
            ("imap://reports@example.com/INBOX", "imaps://"),
            ("imaps://example.com/INBOX", "no user"),
            ("not a url", "is not a URL"),
            ("imaps://reports@/INBOX", "not a URL"),
        ];
        for (text, expected) in cases {
            let msg = MailboxUrl::parse(text).unwrap_err().to_string();
            assert!(msg.contains(expected), "{text}: {msg}");
        }
    }
}
