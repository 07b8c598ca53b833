//! Transports behind one trait: the delivery loop does not know whether it writes
//! `.eml` files or talks SMTP.

mod file;
mod relays;
mod smtp;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use lettre::transport::smtp::extension::Extension;

use super::message::Outgoing;
use crate::config::{Config, RelayName, TransportKind};
pub use file::FileTransport;
pub use relays::{RelayPool, RelaySession, RelayState, RelayView, SmtpMeters};
pub use smtp::{SmtpSession, SmtpTransport};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a send did not succeed. The retry policy asks [`SendError::is_connection`],
/// [`SendError::is_permanent`] and [`SendError::is_transient`]; the cause is kept.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The session could not be set up (connect, TLS, login): nothing was sent, and
    /// no other message will go through it either.
    #[error("{server}: {stage}")]
    Connect {
        server: String,
        stage: String,
        #[source]
        source: BoxError,
    },
    /// The server answered with an error (4xx, 5xx) or the connection broke,
    /// at `stage`.
    #[error("SMTP, at {stage}")]
    Smtp {
        stage: Stage,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// Every relay is set aside: nothing was sent.
    #[error("every relay is set aside: {0}")]
    NoRelay(String),
    /// The server said nothing for `timeout_seconds`.
    #[error("no reply within {0}s")]
    Timeout(u64),
    /// The server lacks an extension this message needs (8BITMIME for an 8bit body,
    /// SMTPUTF8 for an address that is not ASCII). Nothing was sent; the session
    /// stays usable.
    #[error("the server does not offer {0}")]
    Unsupported(Extension),
    /// The file transport could not write the message.
    #[error("writing to {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The command a server's refusal answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    MailFrom,
    RcptTo,
    Data,
    /// The message itself, after DATA's 354.
    Message,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "end of DATA",
        })
    }
}

impl SendError {
    /// Nothing was attempted: no server could be reached.
    pub fn is_connection(&self) -> bool {
        matches!(self, SendError::Connect { .. } | SendError::NoRelay(_))
    }

    /// The relay, not the reader, is at fault: it could not be reached, did
    /// not greet, refused EHLO or the login (all within `timeout_seconds`), or
    /// answered MAIL FROM with a 4xx or not at all. Nothing was sent, so
    /// another relay may take the message at once. A reply about the
    /// recipient (to RCPT or DATA) stays the reader's.
    pub fn is_relay_fault(&self) -> bool {
        match self {
            SendError::Connect { .. } => true,
            SendError::Smtp {
                stage: Stage::MailFrom,
                source,
            } => !source.is_permanent(),
            _ => false,
        }
    }

    /// The command the server's reply answered, when it refused one.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            SendError::Smtp { stage, .. } => Some(*stage),
            _ => None,
        }
    }

    /// A 5xx for this message or recipient: trying again will not help.
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::Smtp { source, .. } => source.is_permanent(),
            SendError::Unsupported(_) => true,
            _ => false,
        }
    }

    /// A 4xx, a dropped connection, a timeout: trying later may work.
    pub fn is_transient(&self) -> bool {
        !self.is_permanent()
    }

    /// The server's reply, with its code, when there was one.
    pub fn reply(&self) -> Option<String> {
        let SendError::Smtp { source, .. } = self else {
            return None;
        };
        let code = source.status()?;
        let text = source.to_string();
        Some(if text.contains(&code.to_string()) {
            text
        } else {
            format!("{code} {text}")
        })
    }
}

pub trait Transport: Send + Sync + 'static {
    type Session: Session;
    /// A session; SMTP connects lazily on the first send.
    fn session(&self) -> Self::Session;

    /// Sends one message outside the queue (a test copy, a confirmation request).
    fn send_one(
        &self,
        message: &Outgoing,
    ) -> impl Future<Output = Result<String, SendError>> + Send {
        let mut session = self.session();
        async move {
            let result = session.send(message).await;
            session.close().await;
            result
        }
    }
}

pub trait Session: Send + 'static {
    /// Sends one message and returns the server's reply.
    fn send(
        &mut self,
        message: &Outgoing,
    ) -> impl Future<Output = Result<String, SendError>> + Send;
    /// The relay the last send went through, where there are relays.
    fn relay(&self) -> Option<RelayName> {
        None
    }
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// The transport `[email] transport` names.
#[derive(Debug, Clone)]
pub enum ConfiguredTransport {
    File(FileTransport),
    /// `[smtp]` and the `[relays.NAME]` beside it (or none).
    Smtp(Arc<RelayPool>),
}

impl ConfiguredTransport {
    pub fn new(config: &Config) -> ConfiguredTransport {
        match config.email.transport {
            TransportKind::File => ConfiguredTransport::File(FileTransport::new(config)),
            TransportKind::Smtp => ConfiguredTransport::Smtp(Arc::new(RelayPool::new(config))),
        }
    }

    /// Each relay and whether it is taking mail; none for the file transport.
    pub fn relays(&self) -> Vec<RelayView> {
        match self {
            ConfiguredTransport::File(_) => Vec::new(),
            ConfiguredTransport::Smtp(pool) => pool.views(),
        }
    }

    /// What the relays did since start, for `/metrics`.
    pub fn smtp_meters(&self) -> Option<SmtpMeters> {
        match self {
            ConfiguredTransport::File(_) => None,
            ConfiguredTransport::Smtp(pool) => Some(pool.meters()),
        }
    }

    /// Tries every relay now; see [`RelayPool::probe`].
    pub async fn probe_relays(&self) {
        if let ConfiguredTransport::Smtp(pool) = self {
            pool.probe().await;
        }
    }

    /// Sessions worth running at once, where the relays set it.
    pub fn concurrency(&self) -> Option<usize> {
        match self {
            ConfiguredTransport::File(_) => None,
            ConfiguredTransport::Smtp(pool) => Some(pool.concurrency()),
        }
    }
}

pub enum ConfiguredSession {
    File(FileTransport),
    /// Boxed: live SMTP connections are large, a file session tiny.
    Smtp(Box<RelaySession>),
}

impl Transport for ConfiguredTransport {
    type Session = ConfiguredSession;
    fn session(&self) -> ConfiguredSession {
        match self {
            ConfiguredTransport::File(t) => ConfiguredSession::File(t.session()),
            ConfiguredTransport::Smtp(t) => ConfiguredSession::Smtp(Box::new(t.session())),
        }
    }
}

impl Session for ConfiguredSession {
    async fn send(&mut self, message: &Outgoing) -> Result<String, SendError> {
        match self {
            ConfiguredSession::File(s) => s.send(message).await,
            ConfiguredSession::Smtp(s) => s.send(message).await,
        }
    }

    fn relay(&self) -> Option<RelayName> {
        match self {
            ConfiguredSession::File(_) => None,
            ConfiguredSession::Smtp(s) => s.relay(),
        }
    }

    async fn close(self) {
        match self {
            ConfiguredSession::File(s) => s.close().await,
            ConfiguredSession::Smtp(s) => (*s).close().await,
        }
    }
}
