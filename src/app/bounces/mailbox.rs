//! The bounce mailbox, polled over IMAP once per tick.

use super::{fingerprint, Bounces};
use crate::bounces::imap::{ImapError, Mailbox, Watermark};
use crate::config::MailboxUrl;
use crate::domain::ReportSource;
use crate::error::Error;

/// What one poll of the bounce mailbox did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MailboxPoll {
    /// The mailbox, without its password.
    pub mailbox: String,
    /// Reports recorded and moved to `posthorn/processed`.
    pub processed: usize,
    /// Messages that could not be read, moved to `posthorn/unparsed`.
    pub unparsed: usize,
    /// Messages that are not reports (readers' replies), left where they were, unread.
    pub left: usize,
    /// Why the poll stopped early; the rest waits for the next tick.
    pub error: Option<String>,
}

/// Why a poll stopped: the mailbox (wait for the next tick) or the database (fail).
enum PollStop {
    Imap(ImapError),
    Store(Error),
}

impl From<ImapError> for PollStop {
    fn from(e: ImapError) -> Self {
        PollStop::Imap(e)
    }
}

impl From<Error> for PollStop {
    fn from(e: Error) -> Self {
        PollStop::Store(e)
    }
}

/// What to do with one message of the mailbox.
enum Filing {
    Processed,
    Unparsed,
    Left,
}

impl Bounces {
    /// Polls `[bounces] imap_url` once: each new report is recorded and moved to
    /// `posthorn/processed`, each unreadable message to `posthorn/unparsed`, and
    /// anything else (a reader's reply) stays where it is, unread. A mailbox that
    /// cannot be reached is reported, not fatal; a database that fails is.
    pub async fn poll_mailbox(&self) -> Result<Option<MailboxPoll>, Error> {
        let config = &self.context.config.bounces;
        let Some(address) = &config.imap_url else {
            return Ok(None);
        };
        let mut poll = MailboxPoll {
            mailbox: address.name(),
            ..MailboxPoll::default()
        };
        match self.poll(address, &mut poll).await {
            Ok(()) => {}
            Err(PollStop::Imap(e)) => {
                tracing::warn!(mailbox = %poll.mailbox, error = %e, "the bounce mailbox could not be read; trying again next tick");
                poll.error = Some(e.to_string());
            }
            Err(PollStop::Store(e)) => return Err(e),
        }
        Ok(Some(poll))
    }

    async fn poll(&self, address: &MailboxUrl, poll: &mut MailboxPoll) -> Result<(), PollStop> {
        let config = &self.context.config.bounces;
        let store = &self.context.store;
        let password = config.imap_password.as_ref().map_or("", |p| p.expose());
        let mut mailbox = Mailbox::open(address, password, config.imap_ca_file.as_deref()).await?;
        // Messages left in place are not read again: the poll resumes after the last UID.
        let key = format!("imap:{}", address.name());
        let previous = store
            .meta(&key)
            .await?
            .as_deref()
            .and_then(Watermark::parse);
        let mut mark = mailbox.resume(previous);
        let (mut processed, mut unparsed) = (None, None);
        for uid in mailbox.arrived_after(mark).await? {
            let filing = match mailbox.read(uid).await? {
                None => Filing::Unparsed,
                Some(raw) => match self.reader.report(&raw) {
                    Err(e) => {
                        tracing::warn!(uid, error = %e, "an unreadable message in the bounce mailbox; set aside");
                        Filing::Unparsed
                    }
                    Ok(report) => {
                        let ingested = self
                            .record(&report, &fingerprint(&raw), ReportSource::Imap)
                            .await?;
                        if ingested.is_report() {
                            Filing::Processed
                        } else {
                            Filing::Left
                        }
                    }
                },
            };
            match filing {
                Filing::Processed => {
                    let folder = folder(&mut mailbox, &mut processed, "processed").await?;
                    mailbox.file(uid, &folder).await?;
                    poll.processed += 1;
                }
                Filing::Unparsed => {
                    let folder = folder(&mut mailbox, &mut unparsed, "unparsed").await?;
                    mailbox.file(uid, &folder).await?;
                    poll.unparsed += 1;
                }
                Filing::Left => poll.left += 1,
            }
            mark.last_uid = uid;
            store.set_meta(&key, &mark.to_string()).await?;
        }
        mailbox.close().await;
        Ok(())
    }
}

/// The folder `posthorn/LEAF`, looked up (and created) once per poll.
async fn folder(
    mailbox: &mut Mailbox,
    known: &mut Option<String>,
    leaf: &str,
) -> Result<String, ImapError> {
    if let Some(name) = known {
        return Ok(name.clone());
    }
    let name = mailbox.folder(leaf).await?;
    *known = Some(name.clone());
    Ok(name)
}
