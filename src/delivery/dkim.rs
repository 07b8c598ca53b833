//! DKIM signing of outgoing messages.
//!
//! lettre signs, but its default configuration (simple header canonicalization, a
//! short header list) does not verify everywhere; posthorn uses relaxed/relaxed and
//! names every header that matters for bulk mail, the one-click unsubscribe headers
//! included, as Gmail and Yahoo require. `Content-Type` is left out on purpose:
//! lettre writes it as part of the body of a multipart message.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::Message;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;

use crate::config::DkimConfig as Settings;
use crate::error::Error;

/// The headers every signature covers.
pub const SIGNED_HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

pub struct Signer {
    config: DkimConfig,
    pub algorithm: &'static str,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.algorithm)
    }
}

impl Signer {
    /// Reads the private key named in `[dkim]` (PEM: RSA as PKCS#1 or PKCS#8, or Ed25519).
    pub fn load(settings: &Settings, key_path: &Path) -> Result<Signer, Error> {
        let pem = std::fs::read_to_string(key_path).map_err(|e| Error::io(key_path, e))?;
        let bad = |why: String| {
            Error::Config(format!(
                "dkim.private_key_file {}: {why}",
                key_path.display()
            ))
        };
        let (key, algorithm) = if pem.contains("BEGIN RSA PRIVATE KEY") {
            let key = rsa::RsaPrivateKey::from_pkcs1_pem(&pem)
                .map_err(|e| bad(format!("cannot read the RSA key: {e}")))?;
            (rsa_key(&key).map_err(bad)?, "rsa-sha256")
        } else if pem.contains("BEGIN PRIVATE KEY") {
            match rsa::RsaPrivateKey::from_pkcs8_pem(&pem) {
                Ok(key) => (rsa_key(&key).map_err(bad)?, "rsa-sha256"),
                Err(_) => (ed25519_key(&pem).map_err(bad)?, "ed25519-sha256"),
            }
        } else {
            return Err(bad(
                "not a PEM private key (expected RSA PKCS#1/PKCS#8 or Ed25519 PKCS#8)".into(),
            ));
        };
        let headers = SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        let canonicalization = DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        };
        Ok(Signer {
            config: DkimConfig::new(
                settings.selector.clone(),
                settings.domain.clone(),
                key,
                headers,
                canonicalization,
            ),
            algorithm,
        })
    }

    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

fn rsa_key(key: &rsa::RsaPrivateKey) -> Result<DkimSigningKey, String> {
    let bits = key.size() * 8;
    if bits < 1024 {
        return Err(format!("an RSA key of {bits} bits is too short; use 2048"));
    }
    // lettre reads PKCS#1; a PKCS#8 key (what `openssl genrsa` writes today) is converted.
    let pkcs1 = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(|e| format!("cannot convert the RSA key: {e}"))?;
    DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa).map_err(|e| format!("{e:?}"))
}

/// An Ed25519 PKCS#8 key is a fixed 16-byte prefix and the 32-byte seed.
fn ed25519_key(pem: &str) -> Result<DkimSigningKey, String> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD
        .decode(body.trim())
        .map_err(|e| format!("bad PEM: {e}"))?;
    if der.len() != 48 || der[..16] != PREFIX {
        return Err("neither an RSA nor an Ed25519 private key".into());
    }
    DkimSigningKey::new(&STANDARD.encode(&der[16..]), DkimSigningAlgorithm::Ed25519)
        .map_err(|e| format!("{e:?}"))
}
