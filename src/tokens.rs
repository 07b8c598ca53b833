//! Signed tokens for the links in emails: `/unsubscribe/{token}`, `/confirm/{token}`,
//! `/preferences/{token}`.
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
    Preferences,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Unsubscribe => "u",
            Purpose::Confirm => "c",
            Purpose::Preferences => "p",
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
    /// HMAC with the key already taken in: each token clones it instead of
    /// hashing the key again (a click checks two).
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens([redacted])")
    }
}

impl Tokens {
    pub fn new(key: &[u8]) -> Tokens {
        // HMAC takes a key of any length.
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        Tokens { keyed }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(payload);
        mac
    }

    /// A forgotten address as kept for imports to recognise (see migration
    /// 0013): a keyed hash of its key, 128 bits in hex, from which no address
    /// can be read back.
    pub fn forgotten_address(&self, email_key: &str) -> String {
        let mut mac = self.mac(b"forgotten.");
        mac.update(email_key.as_bytes());
        crate::domain::hex(&mac.finalize().into_bytes()[..16])
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

impl Tokens {
    /// A VERP token naming one delivery: `ISSUE-SUBSCRIBER-MAC`, the ids in base 36
    /// and 64 bits of HMAC in hex. Lower-case only, so an MTA that lower-cases
    /// local parts changes nothing; at most 44 characters.
    pub fn verp(&self, issue_id: i64, subscriber_id: i64) -> String {
        let ids = format!("{}-{}", base36(issue_id), base36(subscriber_id));
        let tag = self
            .mac(format!("v.{ids}").as_bytes())
            .finalize()
            .into_bytes();
        format!("{ids}-{}", crate::domain::hex(&tag[..8]))
    }

    /// The (issue, subscriber) a VERP token names, if its MAC is right.
    pub fn verify_verp(&self, token: &str) -> Result<(i64, i64), TokenError> {
        let token = token.to_ascii_lowercase();
        let (ids, tag) = token.rsplit_once('-').ok_or(TokenError::Invalid)?;
        let (issue, subscriber) = ids.split_once('-').ok_or(TokenError::Invalid)?;
        if tag.len() != 16 {
            return Err(TokenError::Invalid);
        }
        let tag = unhex(tag).ok_or(TokenError::Invalid)?;
        self.mac(format!("v.{ids}").as_bytes())
            .verify_truncated_left(&tag)
            .map_err(|_| TokenError::Invalid)?;
        let parse = |s: &str| i64::from_str_radix(s, 36).map_err(|_| TokenError::Invalid);
        Ok((parse(issue)?, parse(subscriber)?))
    }
}

impl Tokens {
    /// The MAC part of posthorn's Message-ID for one delivery,
    /// `<ISSUE.SUBSCRIBER.MAC@domain>`: 80 bits of HMAC in lower-case hex. It is
    /// the same for every attempt, so a re-send keeps its Message-ID, and no
    /// reader can derive another reader's Message-ID from their own.
    pub fn message_id_mac(&self, issue_id: i64, subscriber_id: i64) -> String {
        let tag = self
            .mac(format!("m.{issue_id}.{subscriber_id}").as_bytes())
            .finalize()
            .into_bytes();
        crate::domain::hex(&tag[..MESSAGE_ID_MAC_BYTES])
    }

    /// Whether `mac` is the right one for (issue, subscriber), in constant time.
    pub fn verify_message_id(&self, issue_id: i64, subscriber_id: i64, mac: &str) -> bool {
        let Some(tag) = unhex(mac) else {
            return false;
        };
        tag.len() == MESSAGE_ID_MAC_BYTES
            && self
                .mac(format!("m.{issue_id}.{subscriber_id}").as_bytes())
                .verify_truncated_left(&tag)
                .is_ok()
    }
}

/// One email as the counting links in it name it: its issue, and a random
/// tag drawn when it was written. The tag is kept nowhere else, and the token
/// carries nothing more (no time, no id of a delivery), so it names no reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailTag {
    pub issue_id: i64,
    pub tag: u64,
}

/// Bytes of HMAC in a counting link's parts: 96 bits.
const COUNTING_MAC_BYTES: usize = 12;

impl Tokens {
    /// An email's tag for `/c/…` and `/o/…`: `base64url(issue ‖ tag ‖ MAC)`,
    /// 38 characters.
    pub fn email_tag(&self, email: EmailTag) -> String {
        let mut bytes = Vec::with_capacity(16 + COUNTING_MAC_BYTES);
        bytes.extend_from_slice(&email.issue_id.to_be_bytes());
        bytes.extend_from_slice(&email.tag.to_be_bytes());
        let mut mac = self.mac(b"t.");
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..COUNTING_MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn verify_email_tag(&self, token: &str) -> Result<EmailTag, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Invalid)?;
        if bytes.len() != 16 + COUNTING_MAC_BYTES {
            return Err(TokenError::Invalid);
        }
        let (payload, tag) = bytes.split_at(16);
        let mut mac = self.mac(b"t.");
        mac.update(payload);
        mac.verify_truncated_left(tag)
            .map_err(|_| TokenError::Invalid)?;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&payload[i * 8..i * 8 + 8]);
            b
        };
        Ok(EmailTag {
            issue_id: i64::from_be_bytes(word(0)),
            tag: u64::from_be_bytes(word(1)),
        })
    }

    /// A link of an issue's email, for `/c/{link}.{email tag}`:
    /// `base64url(MAC ‖ url)`. The MAC binds the link to its issue, so a link
    /// cannot be paired with another issue's email, nor point anywhere else.
    pub fn counted_link(&self, issue_id: i64, url: &str) -> String {
        let mac = self
            .link_mac(issue_id, url.as_bytes())
            .finalize()
            .into_bytes();
        let mut bytes = mac[..COUNTING_MAC_BYTES].to_vec();
        bytes.extend_from_slice(url.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The URL of a counted link, if it was made for `issue_id`.
    pub fn verify_counted_link(&self, issue_id: i64, link: &str) -> Result<String, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(link)
            .map_err(|_| TokenError::Invalid)?;
        if bytes.len() <= COUNTING_MAC_BYTES {
            return Err(TokenError::Invalid);
        }
        let (tag, url) = bytes.split_at(COUNTING_MAC_BYTES);
        self.link_mac(issue_id, url)
            .verify_truncated_left(tag)
            .map_err(|_| TokenError::Invalid)?;
        String::from_utf8(url.to_vec()).map_err(|_| TokenError::Invalid)
    }

    fn link_mac(&self, issue_id: i64, url: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac(b"l.");
        mac.update(&issue_id.to_be_bytes());
        mac.update(url);
        mac
    }
}

/// Bytes of HMAC in a Message-ID (written as twice as many hex digits).
pub const MESSAGE_ID_MAC_BYTES: usize = 10;

/// Lower- or upper-case hex to bytes; `None` for anything else.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect()
}

/// The ids a VERP token claims, without checking its MAC: for showing what a
/// report says (`bounces parse`), never for acting on it.
pub fn verp_claims(token: &str) -> Option<(i64, i64)> {
    let mut parts = token.splitn(3, '-');
    let issue = i64::from_str_radix(parts.next()?, 36).ok()?;
    let subscriber = i64::from_str_radix(parts.next()?, 36).ok()?;
    parts.next()?;
    Some((issue, subscriber))
}

fn base36(mut n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
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
    fn verp_tokens_round_trip_survive_lower_casing_and_refuse_forgeries() {
        let t = Tokens::new(b"key");
        let tok = t.verp(123_456, i64::MAX);
        assert!(tok.len() <= crate::config::VERP_TOKEN_MAX, "{tok}");
        assert_eq!(tok, tok.to_ascii_lowercase());
        assert_eq!(t.verify_verp(&tok), Ok((123_456, i64::MAX)));
        assert_eq!(
            t.verify_verp(&tok.to_ascii_uppercase()),
            Ok((123_456, i64::MAX))
        );
        let (_, mac) = tok.rsplit_once('-').unwrap();
        assert_eq!(
            t.verify_verp(&format!("2n9d-1-{mac}")),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            Tokens::new(b"other").verify_verp(&tok),
            Err(TokenError::Invalid)
        );
        assert_eq!(t.verify_verp("nonsense"), Err(TokenError::Invalid));
    }

    #[test]
    fn message_id_macs_are_fixed_per_delivery_and_cannot_be_moved() {
        let t = Tokens::new(b"0123456789abcdef");
        let mac = t.message_id_mac(7, 42);
        assert_eq!(mac.len(), 2 * MESSAGE_ID_MAC_BYTES);
        assert_eq!(mac, t.message_id_mac(7, 42), "a re-send keeps it");
        assert!(t.verify_message_id(7, 42, &mac));
        assert!(t.verify_message_id(7, 42, &mac.to_ascii_uppercase()));
        assert!(!t.verify_message_id(7, 43, &mac), "another reader's id");
        assert!(!t.verify_message_id(8, 42, &mac), "another issue");
        assert!(!t.verify_message_id(7, 42, &mac[..18]));
        assert!(!t.verify_message_id(7, 42, "zz"));
        assert!(!Tokens::new(b"another key, 16+").verify_message_id(7, 42, &mac));
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

    #[test]
    fn counting_links_name_an_issue_and_a_link_and_nothing_else() {
        let t = Tokens::new(b"0123456789abcdef");
        let email = EmailTag {
            issue_id: 7,
            tag: 0xDEAD_BEEF_0BAD_F00D,
        };
        let tag = t.email_tag(email);
        assert_eq!(tag.len(), 38);
        assert_eq!(t.verify_email_tag(&tag), Ok(email));
        let link = t.counted_link(7, "https://example.org/a?b=c#d");
        assert_eq!(
            t.verify_counted_link(7, &link).as_deref(),
            Ok("https://example.org/a?b=c#d")
        );
        // Another issue's email, another key, a changed byte, a cut token.
        assert!(t.verify_counted_link(8, &link).is_err());
        assert!(Tokens::new(b"another key, 16+")
            .verify_email_tag(&tag)
            .is_err());
        let mut forged = tag.clone().into_bytes();
        forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(t.verify_email_tag(&forged).is_err());
        assert!(t.verify_email_tag(&tag[..30]).is_err());
        assert!(t.verify_counted_link(7, &link[..10]).is_err());
        assert!(t.verify_counted_link(7, "").is_err());
        assert!(t.verify_email_tag("not base64!").is_err());
    }
}
