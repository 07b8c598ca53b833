//! A mailbox of reports over IMAP with implicit TLS (rustls): list what arrived
//! since the last poll, read it without marking it read (`BODY.PEEK`), and file
//! it away with `MOVE`. Nothing here ever deletes or flags a message.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::MAX_REPORT_BYTES;
use crate::config::MailboxUrl;
use async_imap::Session;
use futures_util::TryStreamExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// How long one network step may take before the poll gives up until next tick.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("IMAP {step}: {source}")]
    Imap {
        step: &'static str,
        source: async_imap::error::Error,
    },
    #[error("IMAP {0}: no answer within {STEP_TIMEOUT:?}")]
    Timeout(&'static str),
    #[error("the IMAP server closed the connection before its greeting")]
    NoGreeting,
}

/// Messages that arrived after a given UID, in a mailbox whose UIDs are valid
/// as long as `uid_validity` stays the same (RFC 3501 2.3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    pub uid_validity: u32,
    pub last_uid: u32,
}

impl Watermark {
    pub fn parse(s: &str) -> Option<Watermark> {
        let (v, u) = s.split_once(':')?;
        Some(Watermark {
            uid_validity: v.parse().ok()?,
            last_uid: u.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid_validity, self.last_uid)
    }
}

/// An open, logged-in session with the folder selected.
pub struct Mailbox {
    session: Session<TlsStream<TcpStream>>,
    uid_validity: u32,
    delimiter: String,
    can_move: bool,
}

impl Mailbox {
    pub async fn open(
        address: &MailboxUrl,
        password: &str,
        ca_file: Option<&Path>,
    ) -> Result<Mailbox, ImapError> {
        let connector = TlsConnector::from(Arc::new(tls_config(ca_file)?));
        let target = address.address();
        let tcp = step("connect", TcpStream::connect(&target))
            .await?
            .map_err(|source| ImapError::Connect {
                address: target.clone(),
                source,
            })?;
        let name = address.server_name().clone();
        let tls = step("TLS handshake", connector.connect(name, tcp))
            .await?
            .map_err(|source| ImapError::Connect {
                address: target,
                source,
            })?;
        let mut client = async_imap::Client::new(tls);
        step("greeting", client.read_response())
            .await?
            .map_err(|source| imap("greeting", source.into()))?
            .ok_or(ImapError::NoGreeting)?;
        let mut session = step("login", client.login(address.user(), password))
            .await?
            .map_err(|(e, _)| imap("login", e))?;
        let selected = step("select", session.select(address.folder()))
            .await?
            .map_err(|e| imap("select", e))?;
        let can_move = step("capability", session.capabilities())
            .await?
            .map_err(|e| imap("capability", e))?
            .has_str("MOVE");
        // The hierarchy delimiter, from the one folder every server has.
        let delimiter = {
            let names: Vec<_> = step("list", async {
                session
                    .list(Some(""), Some("INBOX"))
                    .await?
                    .try_collect()
                    .await
            })
            .await?
            .map_err(|e| imap("list", e))?;
            names
                .first()
                .and_then(|n| n.delimiter())
                .unwrap_or("/")
                .to_string()
        };
        Ok(Mailbox {
            session,
            uid_validity: selected.uid_validity.unwrap_or(0),
            delimiter,
            can_move,
        })
    }

    /// Where the last poll stopped, if it was in this incarnation of the folder.
    pub fn resume(&self, previous: Option<Watermark>) -> Watermark {
        match previous {
            Some(w) if w.uid_validity == self.uid_validity => w,
            _ => Watermark {
                uid_validity: self.uid_validity,
                last_uid: 0,
            },
        }
    }

    /// The UIDs of the messages after `from`, oldest first.
    pub async fn arrived_after(&mut self, from: Watermark) -> Result<Vec<u32>, ImapError> {
        let query = format!("UID {}:*", from.last_uid.saturating_add(1));
        let mut uids: Vec<u32> = step("search", self.session.uid_search(&query))
            .await?
            .map_err(|e| imap("search", e))?
            .into_iter()
            // `N:*` always names the newest message, even one below N.
            .filter(|&u| u > from.last_uid)
            .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// One message, read without marking it read; `None` when it is larger than
    /// any report may be (it is not downloaded).
    pub async fn read(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let set = uid.to_string();
        let sizes: Vec<_> = step("fetch", async {
            self.session
                .uid_fetch(&set, "RFC822.SIZE")
                .await?
                .try_collect()
                .await
        })
        .await?
        .map_err(|e| imap("fetch", e))?;
        let size = sizes.first().and_then(|f| f.size).unwrap_or(0) as usize;
        if size > MAX_REPORT_BYTES {
            return Ok(None);
        }
        let bodies: Vec<_> = step("fetch", async {
            self.session
                .uid_fetch(&set, "BODY.PEEK[]")
                .await?
                .try_collect()
                .await
        })
        .await?
        .map_err(|e| imap("fetch", e))?;
        Ok(Some(
            bodies
                .first()
                .and_then(|f| f.body())
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
        ))
    }

    /// The name of the folder `posthorn/LEAF`, created when missing.
    pub async fn folder(&mut self, leaf: &str) -> Result<String, ImapError> {
        let name = format!("posthorn{}{leaf}", self.delimiter);
        let exists = step("list", async {
            self.session
                .list(Some(""), Some(&name))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?
        .map_err(|e| imap("list", e))?;
        if exists.is_empty() {
            step("create", self.session.create(&name))
                .await?
                .map_err(|e| imap("create", e))?;
        }
        Ok(name)
    }

    /// Files one message away. Without the MOVE extension it is copied and the
    /// original stays (never deleted); the watermark keeps it from being read again.
    pub async fn file(&mut self, uid: u32, folder: &str) -> Result<(), ImapError> {
        let set = uid.to_string();
        if self.can_move {
            step("move", self.session.uid_mv(&set, folder))
                .await?
                .map_err(|e| imap("move", e))
        } else {
            step("copy", self.session.uid_copy(&set, folder))
                .await?
                .map_err(|e| imap("copy", e))
        }
    }

    pub async fn close(mut self) {
        let _ = step("logout", self.session.logout()).await;
    }
}

/// The usual web roots, plus the CA in `ca_file` for a server with a private CA.
fn tls_config(ca_file: Option<&Path>) -> Result<ClientConfig, ImapError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let ca_error = |source| ImapError::CaFile {
            path: path.to_path_buf(),
            source,
        };
        for cert in CertificateDer::pem_file_iter(path).map_err(ca_error)? {
            roots.add(cert.map_err(ca_error)?)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

async fn step<T>(
    name: &'static str,
    f: impl std::future::Future<Output = T>,
) -> Result<T, ImapError> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| ImapError::Timeout(name))
}

fn imap(step: &'static str, source: async_imap::error::Error) -> ImapError {
    ImapError::Imap { step, source }
}
