//! The crate's error type. Expected errors (bad input, bad state) carry a message
//! that tells the user what to do; unexpected ones (I/O, database) keep their cause.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),

    /// Bad input from the user: an argument, a CSV row, a form field.
    #[error("{0}")]
    Invalid(String),

    #[error(
        "no post with slug `{0}` (run `posthorn check` to sync posts/, or see `posthorn status`)"
    )]
    PostNotFound(String),

    #[error("post `{0}` has no issue yet; nothing was sent (use `posthorn send {0}`)")]
    IssueNotFound(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("database error while {context}: {source}")]
    Db {
        context: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("template `{name}`: {message}")]
    Template { name: String, message: String },

    #[error("email: {0}")]
    Email(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
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
