//! Reading a message into a report, with or without a database.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::bounces::{self, Report, Tracks};
use crate::config::Config;
use crate::domain::{hex, MatchedBy};
use crate::error::Error;

/// Reads messages, knowing posthorn's own marks (its VERP address and
/// Message-ID domain) from the config.
#[derive(Clone, Default)]
pub struct Reader {
    tracks: Arc<Tracks>,
}

/// What a message says, and the delivery it names.
#[derive(Debug, serde::Serialize)]
pub struct Reading {
    #[serde(flatten)]
    pub report: Report,
    /// As the message claims it, unchecked: for showing, never for acting
    /// (recording checks the MAC first).
    pub delivery: Option<Claim>,
}

/// The delivery a message names, and by which mark.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Claim {
    pub issue: i64,
    pub subscriber: i64,
    pub via: MatchedBy,
}

impl Reader {
    /// A reader of the site's mail; without a config, of anyone's.
    pub fn new(config: Option<&Config>) -> Reader {
        Reader {
            tracks: Arc::new(config.map(tracks).unwrap_or_default()),
        }
    }

    /// The report a message is.
    pub fn report(&self, raw: &[u8]) -> Result<Report, Error> {
        read(raw, &self.tracks)
    }

    /// The report a message is and the delivery it claims to be about: its VERP
    /// address first, else one of posthorn's Message-IDs.
    pub fn read(&self, raw: &[u8]) -> Result<Reading, Error> {
        let report = self.report(raw)?;
        let delivery = report
            .verp_tokens
            .iter()
            .find_map(|t| crate::tokens::verp_claims(t))
            .map(|(issue, subscriber)| Claim {
                issue,
                subscriber,
                via: MatchedBy::Verp,
            })
            .or_else(|| {
                report.message_ids.first().map(|m| Claim {
                    issue: m.issue,
                    subscriber: m.subscriber,
                    via: MatchedBy::MessageId,
                })
            });
        Ok(Reading { report, delivery })
    }

    pub(in crate::app) fn tracks(&self) -> &Tracks {
        &self.tracks
    }
}

/// The marks posthorn leaves on its mail, from the config.
fn tracks(config: &crate::config::Config) -> Tracks {
    Tracks::new(
        config.bounces.return_path.as_ref(),
        Some(&config.email.from.domain().to_ascii_lowercase()),
    )
}

/// Reads a message; what cannot be read is the sender's fault, not posthorn's.
fn read(raw: &[u8], tracks: &Tracks) -> Result<Report, Error> {
    bounces::read(raw, tracks).map_err(|e| Error::Invalid(e.to_string()))
}

/// Names a payload: the same bytes are the same report.
pub fn fingerprint(raw: &[u8]) -> String {
    hex(&Sha256::digest(raw))
}
