//! A post: as read from a file ([`FilePost`]) or an upstream feed ([`FeedEntry`]),
//! and as stored with its identity ([`Post`]).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use super::Slug;

/// Where a post comes from. Stored as one column (`file:PATH` or
/// `feed:SOURCE_ID:KEY`); [`PostSource::encode`] and [`PostSource::decode`] are the
/// only places that know the text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PostSource {
    /// A Markdown file, by its path below the posts folder (`2026/walk.md`).
    File(String),
    /// An entry of an upstream feed, by the feed's id and the entry's first key.
    Feed { source_id: i64, key: String },
}

impl PostSource {
    pub fn encode(&self) -> String {
        match self {
            PostSource::File(path) => format!("file:{path}"),
            PostSource::Feed { source_id, key } => format!("feed:{source_id}:{key}"),
        }
    }

    pub fn decode(text: &str) -> Result<PostSource, String> {
        if let Some(path) = text.strip_prefix("file:") {
            return Ok(PostSource::File(path.to_string()));
        }
        let feed = text.strip_prefix("feed:").and_then(|rest| {
            let (id, key) = rest.split_once(':')?;
            Some(PostSource::Feed {
                source_id: id.parse().ok()?,
                key: key.to_string(),
            })
        });
        feed.ok_or_else(|| format!("unknown post source `{text}`"))
    }

    /// The file's path below the posts folder, for posts that come from a file.
    pub fn file(&self) -> Option<&str> {
        match self {
            PostSource::File(path) => Some(path),
            PostSource::Feed { .. } => None,
        }
    }
}

impl fmt::Display for PostSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// Why a post may not be mailed by hand now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsendable {
    /// Its file is gone from `posts/`.
    Removed,
    Draft,
    /// `email = false`: for the feeds and the archive only.
    FeedsOnly,
    /// Published in the future: it goes out then.
    Scheduled(DateTime<Utc>),
}

/// A post as stored: its identity (`uid`, fixed when first seen) and its content.
#[derive(Debug, Clone)]
pub struct Post {
    pub id: i64,
    pub uid: String,
    pub slug: Slug,
    pub source: PostSource,
    pub title: String,
    pub summary: String,
    pub content_html: String,
    pub tags: Vec<String>,
    pub published_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub draft: bool,
    pub email: bool,
    /// Imported posts: the entry's own page on the blog.
    pub external_url: Option<String>,
    /// False when the post predates the database: it goes in the feeds only.
    pub announce: bool,
    pub removed: bool,
    /// When this version of the post was stored: the Last-Modified of its pages.
    pub synced_at: DateTime<Utc>,
}

impl Post {
    pub fn is_published(&self, now: DateTime<Utc>) -> bool {
        !self.draft && !self.removed && self.published_at <= now
    }

    /// Why this post may not be mailed by hand at `now`, or `None` when it may.
    pub fn unsendable(&self, now: DateTime<Utc>) -> Option<Unsendable> {
        if self.removed {
            Some(Unsendable::Removed)
        } else if self.draft {
            Some(Unsendable::Draft)
        } else if !self.email {
            Some(Unsendable::FeedsOnly)
        } else if self.published_at > now {
            Some(Unsendable::Scheduled(self.published_at))
        } else {
            None
        }
    }
}

/// A post as read from its file, before the database gives it an identity.
#[derive(Debug, Clone)]
pub struct FilePost {
    /// Path below the posts folder, with `/` separators: `2026/walk.md`.
    pub path: String,
    pub slug: Slug,
    pub title: String,
    pub date: DateTime<Utc>,
    /// The calendar date of `date` in the site's time zone.
    pub local_date: NaiveDate,
    pub updated: Option<DateTime<Utc>>,
    pub summary: String,
    pub tags: Vec<String>,
    pub draft: bool,
    pub email: bool,
    /// Rendered HTML with every URL absolute.
    pub content_html: String,
    /// Changes when the file, the base URL or the time zone changes.
    pub content_hash: String,
}

/// An entry of an upstream feed, ready to be stored as a post.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    /// guid/id, else the link, else a hash of title and date.
    pub key: String,
    pub link: Option<String>,
    pub slug: Slug,
    pub title: String,
    pub published: DateTime<Utc>,
    pub updated: Option<DateTime<Utc>>,
    pub summary: String,
    /// Sanitised, with every URL absolute.
    pub content_html: String,
    pub tags: Vec<String>,
    pub content_hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_through_their_column() {
        for source in [
            PostSource::File("2026/느리게.md".into()),
            PostSource::Feed {
                source_id: 3,
                key: "https://blog.example.com/p?id=1:2".into(),
            },
        ] {
            assert_eq!(PostSource::decode(&source.encode()).unwrap(), source);
        }
        assert!(PostSource::decode("ftp:x").is_err());
        assert!(PostSource::decode("feed:x:y").is_err());
    }
}
