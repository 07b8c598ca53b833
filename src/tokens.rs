//! Signed tokens for the links in emails: `/unsubscribe/{token}`, `/confirm/{token}`.
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(key, payload)[..16])`,
//! where the payload names its purpose and subscriber (and an expiry for confirm
//! tokens). Nothing is stored per token; a forged or altered one fails the MAC.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    Confirm,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Unsubscribe => "u",
            Purpose::Confirm => "c",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is malformed or was altered")]
    Invalid,
    #[error("the link is for a different action")]
    WrongPurpose,
    #[error("the link has expired")]
    Expired,
}

#[derive(Clone)]
pub struct Tokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens([redacted])")
    }
}

impl Tokens {
    pub fn new(key: &[u8]) -> Tokens {
        Tokens { key: key.to_vec() }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(payload);
        mac
    }

    pub fn sign(
        &self,
        purpose: Purpose,
        subscriber_id: i64,
        expires: Option<DateTime<Utc>>,
    ) -> String {
        let payload = match expires {
            Some(t) => format!("{}.{}.{}", purpose.tag(), subscriber_id, t.timestamp()),
            None => format!("{}.{}", purpose.tag(), subscriber_id),
        };
        let tag = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(&tag[..16])
        )
    }

    /// Checks a token and returns the subscriber id it was made for.
    pub fn verify(
        &self,
        token: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<i64, TokenError> {
        let (payload_b64, tag_b64) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag_b64)
            .map_err(|_| TokenError::Invalid)?;
        // A short tag would be easy to guess: demand all 16 bytes, then compare in
        // constant time.
        if tag.len() != 16 {
            return Err(TokenError::Invalid);
        }
        self.mac(&payload)
            .verify_truncated_left(&tag)
            .map_err(|_| TokenError::Invalid)?;
        let payload = String::from_utf8(payload).map_err(|_| TokenError::Invalid)?;
        let mut fields = payload.split('.');
        let tag = fields.next().ok_or(TokenError::Invalid)?;
        if tag != purpose.tag() {
            return Err(TokenError::WrongPurpose);
        }
        let id: i64 = fields
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or(TokenError::Invalid)?;
        if let Some(expiry) = fields.next() {
            let expiry: i64 = expiry.parse().map_err(|_| TokenError::Invalid)?;
            if now.timestamp() > expiry {
                return Err(TokenError::Expired);
            }
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn round_trip_and_forgeries() {
        let t = Tokens::new(b"key");
        let now = Utc::now();
        let tok = t.sign(Purpose::Unsubscribe, 42, None);
        assert_eq!(t.verify(&tok, Purpose::Unsubscribe, now), Ok(42));
        assert_eq!(
            t.verify(&tok, Purpose::Confirm, now),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            Tokens::new(b"other").verify(&tok, Purpose::Unsubscribe, now),
            Err(TokenError::Invalid)
        );
        // Another subscriber's id with the old tag.
        let (_, tag) = tok.split_once('.').unwrap();
        let forged = format!("{}.{}", URL_SAFE_NO_PAD.encode("u.43"), tag);
        assert_eq!(
            t.verify(&forged, Purpose::Unsubscribe, now),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            t.verify(&tok[..tok.len() - 3], Purpose::Unsubscribe, now),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            t.verify("", Purpose::Unsubscribe, now),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn confirm_tokens_expire() {
        let t = Tokens::new(b"key");
        let now = Utc::now();
        let tok = t.sign(Purpose::Confirm, 7, Some(now + Duration::days(7)));
        assert_eq!(t.verify(&tok, Purpose::Confirm, now), Ok(7));
        assert_eq!(
            t.verify(&tok, Purpose::Confirm, now + Duration::days(8)),
            Err(TokenError::Expired)
        );
    }
}
