//! The crate's error type, in two kinds. Expected errors (bad input, bad state)
//! carry a message that tells the user what to do; the web answers them with a
//! 4xx. Unexpected ones (I/O, the database, a fault of posthorn's own) keep their
//! cause for the log; the web answers them with a 5xx.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;

use crate::tokens::TokenError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),

    /// Bad input from the user: an argument, a CSV row, a form field. Only
    /// that: a missing thing is [`Error::NotFound`], a failed write [`Error::Io`].
    #[error("{0}")]
    Invalid(String),

    /// A request the current state does not allow, such as sending a draft.
    #[error("{0}")]
    Conflict(String),

    #[error(
        "no post with slug `{0}` (run `posthorn check` to sync posts/, or see `posthorn status`)"
    )]
    PostNotFound(String),

    #[error("post `{0}` has no issue yet; nothing was sent (use `posthorn send {0}`)")]
    IssueNotFound(String),

    /// Nothing answers to the address or id asked for (a subscriber, a
    /// delivery); the message says what was looked for.
    #[error("{0}")]
    NotFound(String),

    /// A link from an email (confirm, unsubscribe, preferences) that is
    /// malformed, for another action, expired, or whose reader is gone.
    #[error(transparent)]
    Token(#[from] TokenError),

    /// A fault of posthorn's own: a broken invariant, a task that died.
    #[error("internal error: {0}")]
    Internal(String),

    /// A message could not be sent (an SMTP server down, a refusal, a write error).
    #[error("{context}")]
    Send {
        context: String,
        #[source]
        source: BoxError,
    },

    /// A file or stream could not be read or written; `path` names it.
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("database error while {context}")]
    Db {
        context: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("template `{name}`")]
    Template {
        name: String,
        #[source]
        source: BoxError,
    },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn template(name: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Template {
            name: name.into(),
            source: source.into(),
        }
    }

    /// Whether the user (or the request) is at fault rather than posthorn or its
    /// surroundings: the CLI prints these as they are, the web answers with a 4xx.
    pub fn is_expected(&self) -> bool {
        matches!(
            self,
            Error::Config(_)
                | Error::Invalid(_)
                | Error::Conflict(_)
                | Error::PostNotFound(_)
                | Error::IssueNotFound(_)
                | Error::NotFound(_)
                | Error::Token(_)
        )
    }
}

/// The error and every cause under it, on one line: `a: b: c`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        // Some errors repeat their cause in their own text; say it once.
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Adds what we were doing to a database error, at the boundary where it is known.
pub trait DbContext<T> {
    fn db(self, context: &str) -> Result<T, Error>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn db(self, context: &str) -> Result<T, Error> {
        self.map_err(|source| Error::Db {
            context: context.to_string(),
            source,
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Panics caught at a boundary (a tick, one delivery) since the process started.
static CAUGHT_PANICS: AtomicU64 = AtomicU64::new(0);

/// Runs `work`, catching a panic in it: the panic is logged with its cause and
/// counted, and comes back as its message. The process goes on, and
/// `/healthz` shows the count.
pub async fn catch_panic<T>(during: &str, work: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|payload| {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            CAUGHT_PANICS.fetch_add(1, Ordering::Relaxed);
            tracing::error!(during, cause = %why, "caught a panic; carrying on");
            format!("posthorn failed during {during}: {why}")
        })
}

/// How many panics [`catch_panic`] has caught.
pub fn caught_panics() -> u64 {
    CAUGHT_PANICS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_name_every_cause_once() {
        let e = Error::io(
            "posts/a.md",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(chain(&e), "posts/a.md: gone");
        assert!(!e.is_expected());
        assert!(Error::Conflict("draft".into()).is_expected());
        assert!(Error::NotFound("no delivery 7".into()).is_expected());
        assert!(Error::from(TokenError::Expired).is_expected());
    }

    #[tokio::test]
    async fn a_panic_is_caught_counted_and_told() {
        let before = caught_panics();
        assert_eq!(catch_panic("a test", async { 7 }).await, Ok(7));
        let slice = "x".repeat(3);
        let caught = catch_panic("a test", async move {
            // The shape of a real fault: slicing inside a character.
            let s = format!("{slice}é");
            s[..4].len()
        })
        .await;
        let why = caught.unwrap_err();
        assert!(
            why.contains("a test") && why.contains("char boundary"),
            "{why}"
        );
        assert!(caught_panics() > before);
    }
}
