//! Transports behind one trait: the delivery loop does not know whether it writes
//! `.eml` files or talks SMTP.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;

use super::message::Outgoing;
use crate::config::{Config, SmtpConfig, TlsMode, TransportKind};
use crate::domain::EmailAddress;
use crate::error::Error;

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
    /// The server answered with an error (4xx, 5xx) or the connection broke.
    #[error("SMTP")]
    Smtp {
        #[source]
        source: lettre::transport::smtp::Error,
    },
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

impl SendError {
    /// Nothing was attempted: the server could not be reached.
    pub fn is_connection(&self) -> bool {
        matches!(self, SendError::Connect { .. })
    }

    /// A 5xx for this message or recipient: trying again will not help.
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::Smtp { source } => source.is_permanent(),
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
        let SendError::Smtp { source } = self else {
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

    /// Removes the `.eml` files addressed to `email` (forgetting a person): the
    /// outbox is posthorn's own, and these files are the only copies of what was
    /// "sent" through it. Only the `To` header decides, so no other reader's file
    /// is touched. Returns how many were removed; no outbox is none.
    pub async fn remove_addressed_to(&self, email: &EmailAddress) -> Result<u64, Error> {
        let dir = self.dir.clone();
        let email = email.to_string();
        tokio::task::spawn_blocking(move || {
            let io = |source| Error::Io {
                path: dir.clone(),
                source,
            };
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(io(e)),
            };
            let mut removed = 0;
            for entry in entries {
                let path = entry.map_err(io)?.path();
                if path.extension().is_none_or(|e| e != "eml") {
                    continue;
                }
                if addressed_to(&path, &email).map_err(io)? {
                    std::fs::remove_file(&path).map_err(io)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
        .map_err(|e| Error::Internal(format!("clearing the outbox: {e}")))?
    }
}

/// Whether the `.eml` file at `path` has `email` among its `To` addresses (in
/// any letter case). Reads the header block only.
fn addressed_to(path: &std::path::Path, email: &str) -> std::io::Result<bool> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut header = Vec::new();
    // Headers end at the first empty line; a runaway file stops at 64 KiB.
    while header.len() < 64 * 1024 {
        let start = header.len();
        if reader.read_until(b'\n', &mut header)? == 0 || header[start..].trim_ascii().is_empty() {
            break;
        }
    }
    let Some(message) = mail_parser::MessageParser::default().parse_headers(&header) else {
        return Ok(false);
    };
    Ok(message.to().is_some_and(|to| {
        to.iter()
            .filter_map(|a| a.address())
            .any(|a| a.eq_ignore_ascii_case(email))
    }))
}

impl Transport for FileTransport {
    type Session = FileTransport;
    fn session(&self) -> FileTransport {
        self.clone()
    }
}

impl Session for FileTransport {
    async fn send(&mut self, message: &Outgoing) -> Result<String, SendError> {
        let io = |source| SendError::Write {
            path: self.dir.clone(),
            source,
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
        tokio::fs::write(&tmp, &message.text).await.map_err(io)?;
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
            pipelining: false,
        }
    }
}

pub struct SmtpSession {
    config: SmtpConfig,
    conn: Option<AsyncSmtpConnection>,
    /// The server offers PIPELINING (RFC 2920).
    pipelining: bool,
}

impl SmtpSession {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_seconds)
    }

    fn failed(&self, stage: &str) -> impl Fn(BoxError) -> SendError + '_ {
        let stage = stage.to_string();
        move |source| SendError::Connect {
            server: format!("{}:{}", self.config.host, self.config.port),
            stage: stage.clone(),
            source,
        }
    }

    async fn connect(&self) -> Result<(AsyncSmtpConnection, bool), SendError> {
        let c = &self.config;
        let hello = ClientId::default();
        let tls =
            || TlsParameters::new(c.host.clone()).map_err(|e| self.failed("TLS set-up")(e.into()));
        let mut conn = match c.tls {
            TlsMode::Tls => AsyncSmtpConnection::connect_tokio1(
                (c.host.as_str(), c.port),
                Some(self.timeout()),
                &hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(|e| self.failed("connect")(e.into()))?,
            TlsMode::None | TlsMode::Starttls => {
                // We open the socket ourselves to set TCP_NODELAY: without it, Nagle's
                // algorithm and delayed ACKs hold every pipelined command for ~40 ms.
                let tcp = TcpStream::connect((c.host.as_str(), c.port))
                    .await
                    .map_err(|e| self.failed("connect")(e.into()))?;
                tcp.set_nodelay(true)
                    .map_err(|e| self.failed("connect")(e.into()))?;
                let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
                    .await
                    .map_err(|e| self.failed("greeting")(e.into()))?;
                if c.tls == TlsMode::Starttls {
                    conn.starttls(tls()?, &hello)
                        .await
                        .map_err(|e| self.failed("STARTTLS")(e.into()))?;
                }
                conn
            }
        };
        // lettre keeps only the extensions it uses; PIPELINING is read from a second
        // EHLO, sent before any login (RFC 5321 allows it at any time).
        let ehlo = conn
            .command(Ehlo::new(hello.clone()))
            .await
            .map_err(|e| self.failed("EHLO")(e.into()))?;
        let pipelining = ehlo
            .message()
            .any(|line| line.eq_ignore_ascii_case("PIPELINING"));
        if let (Some(user), Some(password)) = (&c.username, &c.password) {
            let credentials = Credentials::new(user.clone(), password.expose().to_string());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
                .map_err(|e| self.failed(&format!("login as {user}"))(e.into()))?;
        }
        Ok((conn, pipelining))
    }
}

impl Session for SmtpSession {
    async fn send(&mut self, message: &Outgoing) -> Result<String, SendError> {
        let timeout = self.timeout();
        let mut conn = match self.conn.take() {
            Some(conn) if !conn.has_broken() => conn,
            _ => match tokio::time::timeout(timeout, self.connect()).await {
                Ok(connected) => {
                    let (conn, pipelining) = connected?;
                    self.pipelining = pipelining;
                    conn
                }
                Err(elapsed) => {
                    let stage = format!("no SMTP session within {}s", self.config.timeout_seconds);
                    return Err(self.failed(&stage)(elapsed.into()));
                }
            },
        };
        let mut parameters = Vec::new();
        for (needed, extension, parameter) in [
            (
                message
                    .envelope
                    .from()
                    .into_iter()
                    .chain(message.envelope.to())
                    .any(|a| !AsRef::<str>::as_ref(a).is_ascii()),
                Extension::SmtpUtfEight,
                MailParameter::SmtpUtfEight,
            ),
            (
                !message.text.is_ascii(),
                Extension::EightBitMime,
                MailParameter::Body(MailBodyParameter::EightBitMime),
            ),
        ] {
            if needed {
                if !conn.server_info().supports_feature(extension) {
                    self.conn = Some(conn);
                    return Err(SendError::Unsupported(extension));
                }
                parameters.push(parameter);
            }
        }
        let transaction = transaction(&mut conn, self.pipelining, parameters, message);
        // lettre's own timeout covers only the connect; bound the whole transaction.
        match tokio::time::timeout(timeout, transaction).await {
            Ok(Ok(response)) => {
                let reply = format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                );
                self.conn = Some(conn);
                Ok(reply)
            }
            Ok(Err(source)) => {
                // Where in a pipelined group the server stopped is not worth
                // untangling: like lettre, start the next message on a new session.
                conn.abort().await;
                Err(SendError::Smtp { source })
            }
            Err(_) => Err(SendError::Timeout(self.config.timeout_seconds)),
        }
    }

    async fn close(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.quit()).await;
        }
    }
}

/// MAIL, RCPT and DATA (in one write where the server pipelines), then the
/// message, dot-stuffed and terminated, in one more.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    pipelining: bool,
    parameters: Vec<MailParameter>,
    message: &Outgoing,
) -> Result<Response, lettre::transport::smtp::Error> {
    let mail = Mail::new(message.envelope.from().cloned(), parameters);
    let recipients: Vec<Rcpt> = message
        .envelope
        .to()
        .iter()
        .map(|to| Rcpt::new(to.clone(), vec![]))
        .collect();
    if pipelining {
        let mut group = mail.to_string();
        for rcpt in &recipients {
            group.push_str(&rcpt.to_string());
        }
        group.push_str(&Data.to_string());
        // Every reply is read, so one refusal cannot be mistaken for the next.
        let mut first_error = conn.command(group).await.err();
        for _ in 0..recipients.len() + 1 {
            if let Err(e) = conn.read_response().await {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    } else {
        conn.command(mail).await?;
        for rcpt in recipients {
            conn.command(rcpt).await?;
        }
        conn.command(Data).await?;
    }
    conn.command(DataBlock(&message.text)).await
}

/// A message as the DATA command carries it (RFC 5321 4.5.2): a dot at the start
/// of a line doubled, then the line with one dot that ends it.
struct DataBlock<'a>(&'a str);

impl std::fmt::Display for DataBlock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        if rest.starts_with('.') {
            f.write_str(".")?;
        }
        while let Some(at) = memchr::memmem::find(rest.as_bytes(), b"\n.") {
            f.write_str(&rest[..=at])?;
            f.write_str(".")?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)?;
        if !rest.is_empty() && !rest.ends_with("\r\n") {
            f.write_str("\r\n")?;
        }
        f.write_str(".\r\n")
    }
}

/// The transport `[email] transport` names.
#[derive(Debug, Clone)]
pub enum ConfiguredTransport {
    File(FileTransport),
    Smtp(SmtpTransport),
}

impl ConfiguredTransport {
    pub fn new(config: &Config) -> ConfiguredTransport {
        match config.email.transport {
            TransportKind::File => ConfiguredTransport::File(FileTransport::new(config)),
            TransportKind::Smtp => ConfiguredTransport::Smtp(SmtpTransport::new(config)),
        }
    }
}

pub enum ConfiguredSession {
    File(FileTransport),
    /// Boxed: a live SMTP connection is large, a file session tiny.
    Smtp(Box<SmtpSession>),
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

    async fn close(self) {
        match self {
            ConfiguredSession::File(s) => s.close().await,
            ConfiguredSession::Smtp(s) => (*s).close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_doubles_leading_dots_and_ends_with_a_lone_dot() {
        let wire = |m: &str| DataBlock(m).to_string();
        assert_eq!(
            wire(".a\r\nb\r\n.\r\n..c"),
            "..a\r\nb\r\n..\r\n...c\r\n.\r\n"
        );
        assert_eq!(wire("a\r\n"), "a\r\n.\r\n");
        assert_eq!(wire("가.\r\n"), "가.\r\n.\r\n");
    }
}
