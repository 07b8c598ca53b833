//! Who sent a provider's webhook, checked the way each provider documents it:
//! Amazon SNS signs each message with an X.509 certificate (signature version 1:
//! SHA1withRSA, 2: SHA256withRSA); Postmark sends HTTP basic auth; Mailgun signs
//! `timestamp + token` with HMAC-SHA256; SendGrid signs `timestamp + body` with
//! ECDSA P-256.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use ring::signature::{self, UnparsedPublicKey};
use serde_json::Value;
use sha2::Sha256;
use x509_cert::der::{Decode, DecodePem};
use x509_cert::spki::SubjectPublicKeyInfoRef;
use x509_cert::Certificate;

use crate::domain::{constant_time_eq, hex};

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The request is not from the provider: 401, and nothing changes.
    #[error("not authenticated: {0}")]
    Unauthorized(String),
    /// The provider is not set up in `[bounces]`.
    #[error("{0}")]
    NotConfigured(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Amazon could not be reached (a certificate, a subscription to confirm):
    /// the provider retries.
    #[error("{0}")]
    Upstream(String),
}

fn unauthorized(why: impl Into<String>) -> WebhookError {
    WebhookError::Unauthorized(why.into())
}

/// Postmark: `Authorization: Basic …` with `webhook_secret` as the password
/// (the user name is free).
pub fn check_basic_auth(authorization: Option<&str>, secret: &str) -> Result<(), WebhookError> {
    let password = authorization
        .and_then(|v| v.trim().strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|s| s.split_once(':').map(|(_, p)| p.to_string()));
    match password {
        Some(p) if constant_time_eq(p.as_bytes(), secret.as_bytes()) => Ok(()),
        Some(_) => Err(unauthorized("wrong basic-auth password")),
        None => Err(unauthorized("no basic-auth credentials")),
    }
}

/// How old a Mailgun signature may be. Mailgun signs only `timestamp + token`,
/// not the body, so a signature that leaked must not be usable for long.
pub const MAILGUN_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// Mailgun: `signature.signature` is hex HMAC-SHA256 of `timestamp + token`,
/// keyed with the HTTP webhook signing key. The timestamp must be within
/// [`MAILGUN_MAX_AGE`] of `now`, and the token must not have been seen before
/// (`seen` remembers tokens for that long).
pub fn check_mailgun(
    payload: &Value,
    signing_key: &str,
    now: DateTime<Utc>,
    seen: &ReplayGuard,
) -> Result<(), WebhookError> {
    let part = |key: &str| {
        payload
            .get("signature")
            .and_then(|s| s.get(key))
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_i64().map(|n| n.to_string()))
            })
            .ok_or_else(|| unauthorized(format!("no signature.{key}")))
    };
    let (timestamp, token, given) = (part("timestamp")?, part("token")?, part("signature")?);
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes())
        .map_err(|_| WebhookError::NotConfigured("bounces.webhook_secret is unusable".into()))?;
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let expected = hex(&mac.finalize().into_bytes());
    if !constant_time_eq(expected.as_bytes(), given.to_ascii_lowercase().as_bytes()) {
        return Err(unauthorized("the Mailgun signature does not match"));
    }
    let signed_at = timestamp
        .parse::<i64>()
        .ok()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
        .ok_or_else(|| unauthorized("the Mailgun timestamp is not a time"))?;
    let max_age = chrono::Duration::from_std(MAILGUN_MAX_AGE).unwrap_or_default();
    if (now - signed_at).abs() > max_age {
        return Err(unauthorized(format!(
            "the Mailgun signature was made at {signed_at}, more than {} minutes from now",
            MAILGUN_MAX_AGE.as_secs() / 60
        )));
    }
    if !seen.first_use(&token, signed_at, now) {
        return Err(unauthorized("the Mailgun token was used before"));
    }
    Ok(())
}

/// Remembers the one-time tokens of signed requests for as long as their
/// signatures are accepted, so that each token is taken once.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: std::sync::Mutex<std::collections::HashMap<String, DateTime<Utc>>>,
}

impl ReplayGuard {
    /// Whether `token` (signed at `signed_at`) is new; it is remembered.
    pub fn first_use(&self, token: &str, signed_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Tokens whose signatures have expired can no longer be replayed.
        let max_age = chrono::Duration::from_std(MAILGUN_MAX_AGE).unwrap_or_default();
        seen.retain(|_, at| now - *at <= max_age);
        if seen.contains_key(token) {
            return false;
        }
        seen.insert(token.to_string(), signed_at);
        true
    }
}

/// A SendGrid verification key, as the settings page shows it: base64 of the
/// DER SubjectPublicKeyInfo of a P-256 key.
#[derive(Debug, Clone)]
pub struct SendgridKey {
    point: Vec<u8>,
}

impl SendgridKey {
    pub fn parse(base64_der: &str) -> Result<SendgridKey, String> {
        let der = STANDARD
            .decode(base64_der.trim())
            .map_err(|e| format!("bounces.sendgrid_public_key is not base64: {e}"))?;
        let spki = SubjectPublicKeyInfoRef::from_der(&der)
            .map_err(|e| format!("bounces.sendgrid_public_key is not a public key: {e}"))?;
        Ok(SendgridKey {
            point: spki.subject_public_key.raw_bytes().to_vec(),
        })
    }

    /// `X-Twilio-Email-Event-Webhook-Signature` (base64 DER ECDSA) over
    /// `X-Twilio-Email-Event-Webhook-Timestamp` followed by the raw body.
    pub fn check(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<(), WebhookError> {
        let signature = signature
            .and_then(|s| STANDARD.decode(s.trim()).ok())
            .ok_or_else(|| unauthorized("no X-Twilio-Email-Event-Webhook-Signature"))?;
        let timestamp =
            timestamp.ok_or_else(|| unauthorized("no X-Twilio-Email-Event-Webhook-Timestamp"))?;
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(&signed, &signature)
            .map_err(|_| unauthorized("the SendGrid signature does not match"))
    }
}

/// One message from Amazon SNS.
#[derive(Debug, Clone)]
pub struct SnsMessage {
    pub kind: SnsKind,
    pub message_id: String,
    pub topic_arn: String,
    pub message: String,
    pub signing_cert_url: String,
    pub subscribe_url: Option<String>,
    subject: Option<String>,
    timestamp: String,
    token: Option<String>,
    signature_version: String,
    signature: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsKind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl SnsMessage {
    pub fn parse(v: &Value) -> Result<SnsMessage, WebhookError> {
        let field = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let need = |key: &str| {
            field(key)
                .ok_or_else(|| WebhookError::BadRequest(format!("no `{key}` in the SNS message")))
        };
        let kind = match need("Type")?.as_str() {
            "Notification" => SnsKind::Notification,
            "SubscriptionConfirmation" => SnsKind::SubscriptionConfirmation,
            "UnsubscribeConfirmation" => SnsKind::UnsubscribeConfirmation,
            other => {
                return Err(WebhookError::BadRequest(format!(
                    "unknown SNS message type `{other}`"
                )))
            }
        };
        let message = SnsMessage {
            kind,
            message_id: need("MessageId")?,
            topic_arn: need("TopicArn")?,
            message: need("Message")?,
            signing_cert_url: need("SigningCertURL")?,
            subscribe_url: field("SubscribeURL"),
            subject: field("Subject"),
            timestamp: need("Timestamp")?,
            token: field("Token"),
            signature_version: need("SignatureVersion")?,
            signature: need("Signature")?,
        };
        if kind != SnsKind::Notification
            && (message.subscribe_url.is_none() || message.token.is_none())
        {
            return Err(WebhookError::BadRequest(
                "a subscription message without SubscribeURL or Token".into(),
            ));
        }
        Ok(message)
    }

    /// The text SNS signs: chosen fields, in byte order, each as `Name\nvalue\n`.
    pub fn string_to_sign(&self) -> String {
        let mut fields: Vec<(&str, &str)> =
            vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.kind {
            SnsKind::Notification => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.push(("Timestamp", &self.timestamp));
            }
            SnsKind::SubscriptionConfirmation | SnsKind::UnsubscribeConfirmation => {
                fields.push(("SubscribeURL", self.subscribe_url.as_deref().unwrap_or("")));
                fields.push(("Timestamp", &self.timestamp));
                fields.push(("Token", self.token.as_deref().unwrap_or("")));
            }
        }
        fields.push(("TopicArn", &self.topic_arn));
        let kind = match self.kind {
            SnsKind::Notification => "Notification",
            SnsKind::SubscriptionConfirmation => "SubscriptionConfirmation",
            SnsKind::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        };
        fields.push(("Type", kind));
        fields
            .into_iter()
            .map(|(k, v)| format!("{k}\n{v}\n"))
            .collect()
    }

    /// Checks the signature with the PEM certificate SNS signed with.
    pub fn verify(&self, certificate_pem: &[u8], now: DateTime<Utc>) -> Result<(), WebhookError> {
        let cert = Certificate::from_pem(certificate_pem).map_err(|e| {
            WebhookError::Upstream(format!("the SNS signing certificate cannot be read: {e}"))
        })?;
        let validity = &cert.tbs_certificate.validity;
        let (from, until) = (
            validity.not_before.to_unix_duration().as_secs() as i64,
            validity.not_after.to_unix_duration().as_secs() as i64,
        );
        if now.timestamp() < from || now.timestamp() > until {
            return Err(unauthorized("the SNS signing certificate is not valid now"));
        }
        let algorithm: &dyn signature::VerificationAlgorithm = match self.signature_version.as_str()
        {
            "1" => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &signature::RSA_PKCS1_2048_8192_SHA256,
            other => {
                return Err(unauthorized(format!(
                    "unknown SNS SignatureVersion `{other}`"
                )))
            }
        };
        let key = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        let signature = STANDARD
            .decode(self.signature.trim())
            .map_err(|_| unauthorized("the SNS signature is not base64"))?;
        UnparsedPublicKey::new(algorithm, key)
            .verify(self.string_to_sign().as_bytes(), &signature)
            .map_err(|_| unauthorized("the SNS signature does not match"))
    }
}

/// An address Amazon SNS serves over HTTPS (`https://sns.REGION.amazonaws.com/…`):
/// the only place a signing certificate is fetched from or a subscription confirmed at.
pub fn is_sns_url(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let host = url.host_str().unwrap_or("");
    let region = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
        .and_then(|h| h.strip_prefix("sns."));
    url.scheme() == "https"
        && url.port().is_none()
        && region.is_some_and(|r| {
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// GETs an SNS address (a certificate, a subscription confirmation).
pub async fn fetch_from_sns(url: &str) -> Result<Vec<u8>, WebhookError> {
    if !is_sns_url(url) {
        return Err(WebhookError::BadRequest(format!(
            "`{url}` is not an Amazon SNS address"
        )));
    }
    let upstream = |e: reqwest::Error| WebhookError::Upstream(format!("{url}: {e}"));
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(upstream)?
        .get(url)
        .send()
        .await
        .map_err(upstream)?
        .error_for_status()
        .map_err(upstream)?;
    Ok(response.bytes().await.map_err(upstream)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_amazon_sns_addresses_are_fetched() {
        assert!(is_sns_url(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"
        ));
        assert!(is_sns_url("https://sns.cn-north-1.amazonaws.com.cn/x.pem"));
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://s3.amazonaws.com/x.pem",
        ] {
            assert!(!is_sns_url(bad), "{bad}");
        }
    }

    #[test]
    fn the_string_to_sign_names_the_fields_sns_signs() {
        let v: Value = serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn", "Message": "{}",
            "Timestamp": "t", "SignatureVersion": "1", "Signature": "",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/c.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        });
        let m = SnsMessage::parse(&v).unwrap();
        assert_eq!(
            m.string_to_sign(),
            "Message\n{}\nMessageId\nm\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
        );
    }

    #[test]
    fn basic_auth_wants_the_secret_as_password() {
        let header = format!("Basic {}", STANDARD.encode("postmark:s3cret"));
        assert!(check_basic_auth(Some(&header), "s3cret").is_ok());
        assert!(check_basic_auth(Some(&header), "other").is_err());
        assert!(check_basic_auth(None, "s3cret").is_err());
        assert!(check_basic_auth(Some("Basic !!!"), "s3cret").is_err());
    }
}
