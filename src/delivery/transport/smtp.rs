//! SMTP over long-lived sessions, pipelined where the server allows it.

use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;

use super::{BoxError, SendError, Session, Stage, Transport};
use crate::config::{Config, SmtpConfig, TlsMode};
use crate::delivery::message::Outgoing;

/// SMTP with long-lived connections, one per session.
#[derive(Debug, Clone)]
pub struct SmtpTransport {
    config: SmtpConfig,
}

impl SmtpTransport {
    /// `[smtp]`.
    pub fn new(config: &Config) -> SmtpTransport {
        SmtpTransport::with(config.smtp.clone())
    }

    /// One relay.
    pub fn with(config: SmtpConfig) -> SmtpTransport {
        SmtpTransport { config }
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

impl SmtpSession {
    /// Connects, greets and logs in as a send would, then says goodbye: whether
    /// the relay answers now.
    pub async fn probe(mut self) -> Result<(), SendError> {
        let (conn, _) = match tokio::time::timeout(self.timeout(), self.connect()).await {
            Ok(connected) => connected?,
            Err(elapsed) => {
                let stage = format!("no SMTP session within {}s", self.config.timeout_seconds);
                return Err(self.failed(&stage)(elapsed.into()));
            }
        };
        self.conn = Some(conn);
        self.close().await;
        Ok(())
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
            Ok(Err((stage, source))) => {
                // After a refusal, like lettre, start the next message on a new session.
                conn.abort().await;
                Err(SendError::Smtp { stage, source })
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
/// message, dot-stuffed and terminated, in one more. A refusal comes with the
/// stage it answered.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    pipelining: bool,
    parameters: Vec<MailParameter>,
    message: &Outgoing,
) -> Result<Response, (Stage, lettre::transport::smtp::Error)> {
    let mail = Mail::new(message.envelope.from().cloned(), parameters);
    let recipients: Vec<Rcpt> = message
        .envelope
        .to()
        .iter()
        .map(|to| Rcpt::new(to.clone(), vec![]))
        .collect();
    // The stage of the reply at `index`: MAIL, each RCPT, then DATA.
    let stage_of = |index: usize| match index {
        0 => Stage::MailFrom,
        i if i <= recipients.len() => Stage::RcptTo,
        _ => Stage::Data,
    };
    if pipelining {
        let mut group = mail.to_string();
        for rcpt in &recipients {
            group.push_str(&rcpt.to_string());
        }
        group.push_str(&Data.to_string());
        // Every reply is read, so one refusal cannot be mistaken for the next.
        let mut first_error = conn.command(group).await.err().map(|e| (stage_of(0), e));
        for i in 1..=recipients.len() + 1 {
            if let Err(e) = conn.read_response().await {
                first_error.get_or_insert((stage_of(i), e));
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    } else {
        conn.command(mail).await.map_err(|e| (Stage::MailFrom, e))?;
        for rcpt in recipients.iter().cloned() {
            conn.command(rcpt).await.map_err(|e| (Stage::RcptTo, e))?;
        }
        conn.command(Data).await.map_err(|e| (Stage::Data, e))?;
    }
    conn.command(DataBlock(&message.text))
        .await
        .map_err(|e| (Stage::Message, e))
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
