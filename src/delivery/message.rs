//! MIME messages. Everything that is the same for every recipient of an issue is
//! laid out once in [`PreparedIssue`]: the shared header fields, the boundary, and
//! both bodies with their line ends and line lengths already made fit for the wire.
//! [`PreparedIssue::message_for`] only writes the recipient's header fields and
//! splices the recipient's values into the bodies.

mod headers;
mod layout;
mod lines;

use std::sync::Arc;
use std::time::SystemTime;

use lettre::message::header::{self, Headers};
use lettre::message::{Mailbox, Mailboxes};

use super::dkim::Signer;
use crate::config::{Config, ReturnPath};
use crate::domain::{hex, one_line, EmailAddress};
use crate::error::Error;
use crate::links::Links;
use crate::render::email::{EmailBodies, Field, Personalizable, ReaderFields};
use headers::{raw, subject_field, to_field};
use layout::Layout;

/// How the bodies travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// As they are (RFC 6152), where the server offers 8BITMIME: no encoding work per
    /// message, and Korean text a quarter smaller than in base64. A part with a line
    /// the wire cannot carry goes in base64 all the same.
    EightBit,
    /// Base64, for a server without 8BITMIME.
    Base64,
}

/// An issue ready to be addressed to many subscribers.
#[derive(Debug, Clone)]
pub struct PreparedIssue {
    pub issue_id: i64,
    pub subject: String,
    layout: Layout,
    /// The right-hand side of every Message-ID: the From domain.
    message_id_domain: String,
    signer: Option<Arc<Signer>>,
    links: Links,
    /// `bounces.return_path`: the envelope sender is `local+TOKEN@domain`.
    verp: Option<ReturnPath>,
    /// The bodies have counted links or an open pixel: each copy gets a tag.
    counted: bool,
}

/// One recipient of an issue.
#[derive(Debug, Clone)]
pub struct Addressee<'a> {
    pub subscriber_id: i64,
    pub email: &'a EmailAddress,
    pub name: &'a str,
}

/// A message ready for a transport. Built as text: 8bit bodies are UTF-8, the
/// rest ASCII, so DATA can carry it without checking it again.
pub struct Outgoing {
    pub message_id: String,
    pub envelope: lettre::address::Envelope,
    pub text: String,
}

impl PreparedIssue {
    pub fn new(
        config: &Config,
        links: &Links,
        issue_id: i64,
        subject: &str,
        bodies: EmailBodies,
        signer: Option<Arc<Signer>>,
    ) -> PreparedIssue {
        let from = config.email.from.get();
        let subject = one_line(subject);
        let mut shared = Headers::new();
        if let Some(reply_to) = &config.email.reply_to {
            shared.set(header::ReplyTo::from(Mailboxes::from(
                reply_to.get().clone(),
            )));
        }
        shared.insert_raw(subject_field(&subject));
        // RFC 2919: a phrase, then <list-label.namespace>.
        let list_id = format!(
            "{} <{}>",
            one_line(&config.site.title).replace(['<', '>', '"'], ""),
            config.site_host()
        );
        shared.insert_raw(raw("List-Id", list_id));
        shared.insert_raw(raw(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".into(),
        ));
        let counted = bodies.html.has(Field::Tag) || bodies.text.has(Field::Tag);
        PreparedIssue {
            counted,
            issue_id,
            subject,
            layout: Layout::new(
                from,
                shared,
                config.site.timezone,
                &bodies.text,
                &bodies.html,
                signer.is_some(),
            ),
            message_id_domain: from.email.domain().to_string(),
            signer,
            links: links.clone(),
            verp: config.bounces.return_path.clone(),
        }
    }

    /// Whether each message is signed (then building it is CPU work).
    pub fn is_signed(&self) -> bool {
        self.signer.is_some()
    }

    /// The Message-ID of this issue for one subscriber,
    /// `<ISSUE.SUBSCRIBER.MAC@domain>`: the same on every attempt, so a message
    /// sent again after a crash is recognisably the same message, and signed, so
    /// a report quoting it proves which delivery it is about.
    pub fn message_id(&self, subscriber_id: i64) -> String {
        let mac = self
            .links
            .tokens()
            .message_id_mac(self.issue_id, subscriber_id);
        format!(
            "<{}.{}.{mac}@{}>",
            self.issue_id, subscriber_id, self.message_id_domain
        )
    }

    pub fn message_for(
        &self,
        to: &Addressee<'_>,
        date: SystemTime,
        encoding: BodyEncoding,
    ) -> Result<Outgoing, Error> {
        self.build(to, self.message_id(to.subscriber_id), date, encoding)
    }

    /// A copy outside the log, with a fresh Message-ID so that mail clients do not
    /// fold several test copies together. In base64, which every server takes.
    pub fn test_copy_for(&self, to: &Addressee<'_>, date: SystemTime) -> Result<Outgoing, Error> {
        let id = format!(
            "<{}.copy-{}@{}>",
            self.issue_id,
            hex(&rand::random::<[u8; 6]>()),
            self.message_id_domain
        );
        self.build(to, id, date, BodyEncoding::Base64)
    }

    fn build(
        &self,
        to: &Addressee<'_>,
        message_id: String,
        date: SystemTime,
        encoding: BodyEncoding,
    ) -> Result<Outgoing, Error> {
        let unsubscribe_url = self.links.unsubscribe(to.subscriber_id);
        let preferences_url = self.links.preferences(to.subscriber_id);
        // A name is one line wherever it goes: in a header and in the bodies alike.
        let name = one_line(to.name);
        let tag = if self.counted {
            self.links.email_tag(self.issue_id)
        } else {
            String::new()
        };
        let recipient = ReaderFields {
            email: to.email.as_str(),
            name: &name,
            unsubscribe_url: &unsubscribe_url,
            preferences_url: &preferences_url,
            tag: &tag,
        };
        let mut own = Headers::new();
        own.insert_raw(to_field(&name, lettre_address(to.email)?));
        own.insert_raw(raw("List-Unsubscribe", format!("<{unsubscribe_url}>")));
        let sender = match &self.verp {
            // VERP: reports come back to an address that names this delivery.
            Some(return_path) => {
                let token = self.links.tokens().verp(self.issue_id, to.subscriber_id);
                return_path
                    .with_token(&token)
                    .parse()
                    .map_err(|e| Error::Internal(format!("the VERP return path: {e}")))?
            }
            None => self.layout.from.clone(),
        };
        let envelope =
            lettre::address::Envelope::new(Some(sender), vec![lettre_address(to.email)?])
                .map_err(|e| Error::Internal(format!("the envelope: {e}")))?;
        let written = self
            .layout
            .write(own, &message_id, date, &recipient, encoding);
        Ok(Outgoing {
            message_id,
            envelope,
            text: sign(self.signer.as_deref(), written)?,
        })
    }
}

/// A one-off message that is not an issue, such as a confirmation request: no
/// List-* headers, a fresh Message-ID, signed like every other message, in base64.
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
    let mut shared = Headers::new();
    shared.insert_raw(subject_field(&one_line(subject)));
    let layout = Layout::new(
        config.email.from.get(),
        shared,
        config.site.timezone,
        &Personalizable::literal(&text),
        &Personalizable::literal(&html),
        false,
    );
    let mut own = Headers::new();
    own.set(header::To::from(Mailboxes::from(Mailbox::new(
        None,
        lettre_address(to)?,
    ))));
    let envelope =
        lettre::address::Envelope::new(Some(layout.from.clone()), vec![lettre_address(to)?])
            .map_err(|e| Error::Internal(format!("the envelope: {e}")))?;
    let none = ReaderFields {
        email: "",
        name: "",
        unsubscribe_url: "",
        preferences_url: "",
        tag: "",
    };
    let written = layout.write(
        own,
        &message_id,
        SystemTime::now(),
        &none,
        BodyEncoding::Base64,
    );
    Ok(Outgoing {
        message_id,
        envelope,
        text: sign(signer, written)?,
    })
}

fn sign(signer: Option<&Signer>, written: layout::Written) -> Result<String, Error> {
    match signer {
        Some(signer) => signer.sign(written.text, written.body_hash),
        None => Ok(written.text),
    }
}

/// An address already parsed as [`EmailAddress`] is one lettre accepts too.
fn lettre_address(email: &EmailAddress) -> Result<lettre::Address, Error> {
    email
        .as_str()
        .parse()
        .map_err(|e| Error::Internal(format!("{email}: {e}")))
}
