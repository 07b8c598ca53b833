//! Writes each message to a file in the outbox: the transport for trying posthorn
//! without a mail server, and for tests.

use std::path::PathBuf;

use super::{SendError, Session, Transport};
use crate::config::Config;
use crate::delivery::message::Outgoing;
use crate::domain::EmailAddress;
use crate::error::Error;

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
