//! DKIM signing of outgoing messages (RFC 6376), relaxed/relaxed, over the
//! finished bytes, with `ring`: RSA-SHA256 (RFC 8301) and Ed25519-SHA256
//! (RFC 8463), or both in one message. The headers signed are every one that
//! matters for bulk mail, the one-click unsubscribe headers included, as Gmail
//! and Yahoo require.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use sha2::{Digest, Sha256};

mod body;
#[cfg(test)]
pub(crate) use body::tests;
pub use body::{BodyHash, SplicedBody};

use crate::config::DkimConfig as Settings;
use crate::error::Error;

/// The headers every signature covers (those the message has).
pub const SIGNED_HEADERS: [&str; 10] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Key {
    fn algorithm(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        }
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        match self {
            Key::Rsa(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    data,
                    &mut signature,
                )
                .map_err(|_| Error::Internal("RSA signing failed".into()))?;
                Ok(signature)
            }
            // RFC 8463: Ed25519 signs the SHA-256 hash of the data.
            Key::Ed25519(key) => Ok(key.sign(&Sha256::digest(data)).as_ref().to_vec()),
        }
    }
}

pub struct Signer {
    domain: String,
    /// Each key with the selector its public half is published under.
    keys: Vec<(Key, String)>,
    /// `rsa-sha256`, `ed25519-sha256`, or both joined by `+`.
    pub algorithm: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.algorithm)
    }
}

impl Signer {
    /// Reads the private key named in `[dkim]` (PEM: RSA as PKCS#1 or PKCS#8, or
    /// Ed25519 as PKCS#8), and the second one for dual signing when set.
    pub fn load(
        settings: &Settings,
        key_path: &Path,
        second: Option<&Path>,
    ) -> Result<Signer, Error> {
        let mut keys = vec![(read_key(key_path)?, settings.selector.clone())];
        if let Some(path) = second {
            let key = read_key(path)?;
            if key.algorithm() == keys[0].0.algorithm() {
                return Err(Error::Config(
                    "dkim.second_private_key_file: dual signing takes one RSA and one Ed25519 key"
                        .into(),
                ));
            }
            let selector = settings.second_selector.clone().ok_or_else(|| {
                Error::Config(
                    "dkim.second_private_key_file needs dkim.second_selector, the selector its public key is published under".into(),
                )
            })?;
            keys.push((key, selector));
        }
        let algorithm = keys
            .iter()
            .map(|(k, _)| k.algorithm())
            .collect::<Vec<_>>()
            .join("+");
        Ok(Signer {
            domain: settings.domain.clone(),
            keys,
            algorithm,
        })
    }

    /// The message with a `DKIM-Signature` header per key in front, written
    /// into the same buffer. `body_hash` is the relaxed body's SHA-256 when the
    /// caller already has it (see [`SplicedBody`]); otherwise it is taken here.
    pub fn sign(&self, text: String, body_hash: Option<[u8; 32]>) -> Result<String, Error> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.sign_at(text, body_hash, timestamp)
    }

    pub(crate) fn sign_at(
        &self,
        mut text: String,
        body_hash: Option<[u8; 32]>,
        timestamp: u64,
    ) -> Result<String, Error> {
        let message = text.as_bytes();
        let split = memchr::memmem::find(message, b"\r\n\r\n").map(|i| i + 2);
        let (head, body) = match split {
            Some(i) => (&message[..i], &message[i + 2..]),
            None => (message, &b""[..]),
        };
        let body_hash = STANDARD.encode(body_hash.unwrap_or_else(|| {
            let mut hash = BodyHash::default();
            hash.update(body);
            hash.finish()
        }));
        let fields = header_fields(head);
        // The signed headers, bottom-up as RFC 6376 5.4.2 picks them.
        let mut names = Vec::new();
        let mut signed = Vec::new();
        for name in SIGNED_HEADERS {
            if let Some((_, raw)) = fields
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                names.push(name.to_ascii_lowercase());
                signed.extend_from_slice(relaxed_header(raw).as_bytes());
            }
        }
        let mut headers = String::with_capacity(700 * self.keys.len());
        for (key, selector) in &self.keys {
            let value = format!(
                "v=1; a={}; c=relaxed/relaxed; d={}; s={selector}; t={timestamp}; h={}; bh={body_hash}; b=",
                key.algorithm(),
                self.domain,
                names.join(":"),
            );
            let header = format!("DKIM-Signature: {value}");
            let mut data = signed.clone();
            // The signature's own header, relaxed, with `b=` empty and no CRLF.
            let own = relaxed_header(&header);
            data.extend_from_slice(own.trim_end_matches("\r\n").as_bytes());
            let signature = STANDARD.encode(key.sign(&data)?);
            headers.push_str(&header);
            headers.push_str(&signature);
            headers.push_str("\r\n");
        }
        // In front, in place: the message was written with room to spare.
        text.insert_str(0, &headers);
        Ok(text)
    }
}

fn read_key(path: &Path) -> Result<Key, Error> {
    let pem = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |why: &str| Error::Config(format!("dkim key {}: {why}", path.display()));
    let der = STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>()
                .trim(),
        )
        .map_err(|_| bad("not a PEM private key"))?;
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        return RsaKeyPair::from_der(&der).map(Key::Rsa).map_err(|e| {
            bad(&format!(
                "cannot use the RSA key ({e}); use 2048 bits or more"
            ))
        });
    }
    if !pem.contains("BEGIN PRIVATE KEY") {
        return Err(bad(
            "not a PEM private key (expected RSA PKCS#1/PKCS#8 or Ed25519 PKCS#8)",
        ));
    }
    if let Ok(key) = RsaKeyPair::from_pkcs8(&der) {
        return Ok(Key::Rsa(key));
    }
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map(Key::Ed25519)
        .map_err(|_| bad("neither an RSA key of 2048 bits or more nor an Ed25519 key"))
}

/// The header block as fields: name, and the whole field with its folds.
fn header_fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, raw)) = fields.last_mut() {
                raw.push_str(line);
            }
        } else if let Some((name, _)) = line.split_once(':') {
            fields.push((name.trim().to_string(), line.to_string()));
        }
    }
    fields
}

/// RFC 6376 3.4.2: lower-case name, unfolded value with runs of white space as
/// one space, none around the colon or at the end.
fn relaxed_header(raw: &str) -> String {
    let (name, value) = raw.split_once(':').unwrap_or((raw, ""));
    let unfolded = value.replace("\r\n", "");
    let value = unfolded
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    format!("{}:{}\r\n", name.trim().to_ascii_lowercase(), value)
}
