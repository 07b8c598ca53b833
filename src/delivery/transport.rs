//! Transports behind one trait: the delivery loop does not know whether it writes
//! `.eml` files or talks SMTP.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::message::Outgoing;
use crate::config::{Config, SmtpConfig, TlsMode};

/// Why a send did not succeed, sorted by what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// 4xx, refused or dropped connection, timeout: try again later.
    Transient {
        message: String,
        reply: Option<String>,
    },
    /// 5xx for this message or recipient: do not try again.
    Permanent {
        message: String,
        reply: Option<String>,
    },
    /// The session could not be set up (connect, TLS, login): nothing was sent, and
    /// no other message will go through it either.
    Connection { message: String },
}

pub trait Transport: Send + Sync + 'static {
    type Session: Session;
    /// A session; SMTP connects lazily on the first send.
    fn session(&self) -> Self::Session;
}

pub trait Session: Send + 'static {
    /// Sends one message and returns the server's reply.
    fn send(
        &mut self,
        message: &Outgoing,
    ) -> impl Future<Output = Result<String, SendError>> + Send;
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Writes each message to `outbox_dir/<message-id>.eml`. A message written twice
/// (after a crash) replaces its own file rather than adding a second one.
#[derive(Debug, Clone)]
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    pub fn new(config: &Config) -> FileTransport {
        FileTransport {
            dir: config.path(&config.email.outbox_dir),
        }
    }
}

impl Transport for FileTransport {
    type Session = FileTransport;
    fn session(&self) -> FileTransport {
        self.clone()
    }
}

impl Session for FileTransport {
    async fn send(&mut self, message: &Outgoing) -> Result<String, SendError> {
        let io = |e: std::io::Error| SendError::Transient {
            message: format!("writing to {}: {e}", self.dir.display()),
            reply: None,
        };
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        let name: String = message
            .message_id
            .trim_matches(['<', '>'])
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        let tmp = self.dir.join(format!(".{name}.eml.tmp"));
        tokio::fs::write(&tmp, &message.bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        Ok(format!("written to {}", path.display()))
    }

    async fn close(self) {}
}

/// SMTP with long-lived connections, one per session.
#[derive(Debug, Clone)]
pub struct SmtpTransport {
    config: SmtpConfig,
}

impl SmtpTransport {
    pub fn new(config: &Config) -> SmtpTransport {
        SmtpTransport {
            config: config.smtp.clone(),
        }
    }
}

impl Transport for SmtpTransport {
    type Session = SmtpSession;
    fn session(&self) -> SmtpSession {
        SmtpSession {
            config: self.config.clone(),
            conn: None,
        }
    }
}

pub struct SmtpSession {
    config: SmtpConfig,
    conn: Option<AsyncSmtpConnection>,
}

impl SmtpSession {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_seconds)
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let c = &self.config;
        let hello = ClientId::default();
        let tls = || {
            TlsParameters::new(c.host.clone())
                .map_err(|e| format!("TLS set-up for {}: {e}", c.host))
        };
        let mut conn = match c.tls {
            TlsMode::Tls => AsyncSmtpConnection::connect_tokio1(
                (c.host.as_str(), c.port),
                Some(self.timeout()),
                &hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(|e| e.to_string())?,
            TlsMode::None | TlsMode::Starttls => {
                // We open the socket ourselves to set TCP_NODELAY: without it, Nagle's
                // algorithm and delayed ACKs hold every pipelined command for ~40 ms.
                let tcp = TcpStream::connect((c.host.as_str(), c.port))
                    .await
                    .map_err(|e| e.to_string())?;
                tcp.set_nodelay(true).map_err(|e| e.to_string())?;
                let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
                    .await
                    .map_err(|e| e.to_string())?;
                if c.tls == TlsMode::Starttls {
                    conn.starttls(tls()?, &hello)
                        .await
                        .map_err(|e| format!("STARTTLS: {e}"))?;
                }
                conn
            }
        };
        if let (Some(user), Some(password)) = (&c.username, &c.password) {
            let credentials = Credentials::new(user.clone(), password.expose().to_string());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
                .map_err(|e| format!("login as {user}: {e}"))?;
        }
        Ok(conn)
    }
}

impl Session for SmtpSession {
    async fn send(&mut self, message: &Outgoing) -> Result<String, SendError> {
        let timeout = self.timeout();
        let mut conn = match self.conn.take() {
            Some(conn) if !conn.has_broken() => conn,
            _ => match tokio::time::timeout(timeout, self.connect()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    return Err(SendError::Connection {
                        message: format!("{}:{}: {e}", self.config.host, self.config.port),
                    })
                }
                Err(_) => {
                    return Err(SendError::Connection {
                        message: format!(
                            "{}:{}: no SMTP session within {}s",
                            self.config.host, self.config.port, self.config.timeout_seconds
                        ),
                    })
                }
            },
        };
        // lettre's own timeout covers only the connect; bound the whole transaction.
        match tokio::time::timeout(timeout, conn.send(&message.envelope, &message.bytes)).await {
            Ok(Ok(response)) => {
                let reply = format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                );
                self.conn = Some(conn);
                Ok(reply)
            }
            Ok(Err(e)) => {
                // lettre has already closed the connection after a failed command.
                let reply = e.status().map(|code| {
                    let text = e.to_string();
                    if text.contains(&code.to_string()) {
                        text
                    } else {
                        format!("{code} {text}")
                    }
                });
                if e.is_permanent() {
                    Err(SendError::Permanent {
                        message: e.to_string(),
                        reply,
                    })
                } else {
                    Err(SendError::Transient {
                        message: e.to_string(),
                        reply,
                    })
                }
            }
            Err(_) => Err(SendError::Transient {
                message: format!("no reply within {}s", self.config.timeout_seconds),
                reply: None,
            }),
        }
    }

    async fn close(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.quit()).await;
        }
    }
}
