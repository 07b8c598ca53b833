//! MIME messages. Everything that is the same for every recipient of an issue is
//! prepared once in [`PreparedIssue`]; [`PreparedIssue::message_for`] only adds the
//! recipient's fields.

use std::sync::Arc;
use std::time::SystemTime;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::dkim::Signer;
use crate::config::Config;
use crate::domain::{hex, one_line, EmailAddress};
use crate::error::Error;
use crate::links::Links;
use crate::render::email::{EmailBodies, Recipient};

/// An issue ready to be addressed to many subscribers.
#[derive(Debug, Clone)]
pub struct PreparedIssue {
    pub issue_id: i64,
    pub subject: String,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    list_id: String,
    message_id_suffix: String,
    bodies: EmailBodies,
    signer: Option<Arc<Signer>>,
    links: Links,
    /// `bounces.return_path` split at `@`: the envelope sender is `local+TOKEN@domain`.
    verp: Option<(String, String)>,
}

/// One recipient of an issue.
#[derive(Debug, Clone)]
pub struct Addressee<'a> {
    pub subscriber_id: i64,
    pub email: &'a EmailAddress,
    pub name: &'a str,
}

/// A message ready for a transport.
pub struct Outgoing {
    pub message_id: String,
    pub envelope: lettre::address::Envelope,
    pub bytes: Vec<u8>,
}

impl PreparedIssue {
    pub fn new(
        config: &Config,
        links: &Links,
        issue_id: i64,
        subject: &str,
        instance: &str,
        bodies: EmailBodies,
        signer: Option<Arc<Signer>>,
    ) -> PreparedIssue {
        let from = config.email.from.get().clone();
        let reply_to = config.email.reply_to.as_ref().map(|m| m.get().clone());
        let host = config.site_host();
        // RFC 2919: a phrase, then <list-label.namespace>.
        let list_id = format!(
            "{} <{}>",
            one_line(&config.site.title).replace(['<', '>', '"'], ""),
            host
        );
        PreparedIssue {
            issue_id,
            subject: one_line(subject),
            message_id_suffix: format!("{}@{}", instance, from.email.domain()),
            from,
            reply_to,
            list_id,
            bodies,
            signer,
            links: links.clone(),
            verp: config.bounces.verp(),
        }
    }

    /// Whether each message is signed (then building it is CPU work).
    pub fn is_signed(&self) -> bool {
        self.signer.is_some()
    }

    /// The Message-ID of this issue for one subscriber: the same on every attempt,
    /// so a message sent again after a crash is recognisably the same message.
    pub fn message_id(&self, subscriber_id: i64) -> String {
        format!(
            "<{}.{}.{}>",
            self.issue_id, subscriber_id, self.message_id_suffix
        )
    }

    pub fn message_for(&self, to: &Addressee<'_>, date: SystemTime) -> Result<Outgoing, Error> {
        self.build(to, self.message_id(to.subscriber_id), date)
    }

    /// A copy outside the log, with a fresh Message-ID so that mail clients do not
    /// fold several test copies together.
    pub fn test_copy_for(&self, to: &Addressee<'_>, date: SystemTime) -> Result<Outgoing, Error> {
        let id = format!(
            "<{}.copy-{}.{}>",
            self.issue_id,
            hex(&rand::random::<[u8; 6]>()),
            self.message_id_suffix
        );
        self.build(to, id, date)
    }

    fn build(
        &self,
        to: &Addressee<'_>,
        message_id: String,
        date: SystemTime,
    ) -> Result<Outgoing, Error> {
        let unsubscribe_url = self.links.unsubscribe(to.subscriber_id);
        let recipient = Recipient {
            email: to.email.as_str(),
            name: to.name,
            unsubscribe_url: &unsubscribe_url,
        };
        let address = lettre_address(to.email)?;
        let name = one_line(to.name);
        let mailbox = Mailbox::new((!name.is_empty()).then_some(name), address);

        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(mailbox)
            .subject(self.subject.clone())
            .date(date)
            .message_id(Some(message_id.clone()))
            .raw_header(header("List-Id", self.list_id.clone()))
            .raw_header(header("List-Unsubscribe", format!("<{unsubscribe_url}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        if let Some((local, domain)) = &self.verp {
            // VERP: reports come back to an address that names this delivery.
            let token = self.links.tokens().verp(self.issue_id, to.subscriber_id);
            let sender: lettre::Address = format!("{local}+{token}@{domain}")
                .parse()
                .map_err(|e| Error::Internal(format!("the VERP return path: {e}")))?;
            let envelope =
                lettre::address::Envelope::new(Some(sender), vec![lettre_address(to.email)?])
                    .map_err(|e| Error::Internal(format!("the envelope: {e}")))?;
            builder = builder.envelope(envelope);
        }
        finish(
            builder,
            message_id,
            self.bodies.text.fill(&recipient, false),
            self.bodies.html.fill(&recipient, true),
            self.signer.as_deref(),
        )
    }
}

/// A one-off message that is not an issue, such as a confirmation request: no
/// List-* headers, a fresh Message-ID, signed like every other message.
pub fn transactional(
    config: &Config,
    signer: Option<&Signer>,
    to: &EmailAddress,
    subject: &str,
    text: String,
    html: String,
) -> Result<Outgoing, Error> {
    let message_id = format!(
        "<{}@{}>",
        hex(&rand::random::<[u8; 12]>()),
        config.email.from.domain()
    );
    let address = lettre_address(to)?;
    let builder = Message::builder()
        .from(config.email.from.get().clone())
        .to(Mailbox::new(None, address))
        .subject(one_line(subject))
        .date(SystemTime::now())
        .message_id(Some(message_id.clone()));
    finish(builder, message_id, text, html, signer)
}

/// The common end of every message: both parts, the signature, the bytes.
fn finish(
    builder: lettre::message::MessageBuilder,
    message_id: String,
    text: String,
    html: String,
    signer: Option<&Signer>,
) -> Result<Outgoing, Error> {
    let message = builder
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(text))
                .singlepart(SinglePart::html(html)),
        )
        .map_err(|e| Error::Internal(format!("the message cannot be built: {e}")))?;
    let bytes = message.formatted();
    Ok(Outgoing {
        message_id,
        envelope: message.envelope().clone(),
        bytes: match signer {
            Some(signer) => signer.sign(&bytes)?,
            None => bytes,
        },
    })
}

/// An address already parsed as [`EmailAddress`] is one lettre accepts too.
fn lettre_address(email: &EmailAddress) -> Result<lettre::Address, Error> {
    email
        .as_str()
        .parse()
        .map_err(|e| Error::Internal(format!("{email}: {e}")))
}

fn header(name: &'static str, value: String) -> HeaderValue {
    // `HeaderValue::new` encodes non-ASCII words (RFC 2047) and folds long lines.
    HeaderValue::new(HeaderName::new_from_ascii_str(name), one_line(&value))
}
