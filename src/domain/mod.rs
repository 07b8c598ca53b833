//! The nouns every layer shares: parsed values (a value of one of these has been
//! checked once, at the edge, so code further in cannot be handed an unchecked
//! string), the statuses as enums, and the post as it is read and stored.

mod post;

pub use post::{FeedEntry, FilePost, Post, PostSource, Unsendable};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

/// A syntactically valid email address with its domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        if s.is_empty() {
            return Err("empty address".into());
        }
        if s.len() > 254 {
            return Err("address longer than 254 characters".into());
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "`{}` contains spaces or control characters",
                s.escape_debug()
            ));
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| format!("`{s}` has no @"))?;
        if !domain.contains('.') {
            return Err(format!("`{s}`: the domain `{domain}` has no dot"));
        }
        let normalized = format!("{local}@{}", domain.to_lowercase());
        lettre::Address::from_str(&normalized).map_err(|e| format!("`{s}`: {e}"))?;
        Ok(EmailAddress(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: one subscriber per address, whatever the case of its letters.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The URL name of a post: letters and digits of any script, `-`, `_` and `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.is_empty() {
            return Err("empty slug".into());
        }
        if input.len() > 200 {
            return Err("slug longer than 200 bytes".into());
        }
        if input.starts_with('.') {
            return Err(format!("slug `{input}` starts with a dot"));
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "slug `{}` contains `{}`; use letters, digits, `-`, `_` or `.`",
                input.escape_debug(),
                c.escape_debug()
            ));
        }
        Ok(Slug(input.to_string()))
    }

    /// Turns a file name such as `My First Essay.md`'s stem into `my-first-essay`.
    pub fn from_file_stem(stem: &str) -> Result<Self, String> {
        let mut out = String::with_capacity(stem.len());
        for c in stem.chars().flat_map(char::to_lowercase) {
            if c.is_alphanumeric() || matches!(c, '_' | '.') {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        Slug::parse(out.trim_matches(|c| c == '-' || c == '.'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Slug {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Text that goes into a header or a one-line field: control characters (CR, LF, tab…)
/// become spaces and runs of white space collapse, so it cannot start a new header.
pub fn one_line(input: &str) -> String {
    input
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lower-case hexadecimal, for digests and random ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares digests, so neither the contents nor the length of a secret leak
/// through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A `Name <address>` address, such as `email.from`: parsed once, when the config is read.
/// (A "mailbox" in posthorn is the IMAP folder bounces are read from.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct NamedAddress(lettre::message::Mailbox);

impl NamedAddress {
    pub fn parse(input: &str) -> Result<NamedAddress, String> {
        input
            .trim()
            .parse::<lettre::message::Mailbox>()
            .map(NamedAddress)
            .map_err(|e| format!("`{input}` is not a valid address: {e}"))
    }

    pub fn get(&self) -> &lettre::message::Mailbox {
        &self.0
    }

    /// The domain of the address, as Message-IDs use it.
    pub fn domain(&self) -> &str {
        self.0.email.domain()
    }
}

impl TryFrom<String> for NamedAddress {
    type Error = String;
    fn try_from(s: String) -> Result<NamedAddress, String> {
        NamedAddress::parse(&s)
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} `{}`; expected one of: {}",
                        stringify!($name),
                        other,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

pub(crate) use string_enum;

string_enum!(
    /// Where a subscriber stands. Only `active` subscribers get issues.
    SubscriberStatus {
        Active => "active",
        Pending => "pending",
        Unsubscribed => "unsubscribed",
        Bounced => "bounced",
        // Erased on request: the row keeps nothing that identifies the person.
        Forgotten => "forgotten",
    }
);

string_enum!(
    /// The life of one delivery row. Rows are never deleted; they are the log.
    DeliveryStatus {
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Retrying => "retrying",
        Failed => "failed",
        Skipped => "skipped",
        Bounced => "bounced",
        Complained => "complained",
    }
);

impl DeliveryStatus {
    /// Waiting for a worker: due now or at `next_attempt_at`.
    pub fn is_waiting(self) -> bool {
        matches!(self, DeliveryStatus::Queued | DeliveryStatus::Retrying)
    }
}

string_enum!(
    /// Where a report came from.
    ReportSource {
        Mail => "mail",
        Imap => "imap",
        Ses => "ses",
        Postmark => "postmark",
        Mailgun => "mailgun",
        Sendgrid => "sendgrid",
    }
);

impl ReportSource {
    /// A provider's webhook is signed by the provider, who vouches for the
    /// recipient it names; mail to the bounce address vouches for nothing.
    pub fn vouches_for_recipient(self) -> bool {
        !matches!(self, ReportSource::Mail | ReportSource::Imap)
    }
}

string_enum!(
    /// What a report did to its delivery and subscriber. `recorded`: kept in the
    /// history only (a delay, or a subscriber already gone); `unmatched`: tied
    /// to no delivery, kept for the author; `forged`: its VERP token failed its
    /// signature, so it changes nothing.
    ReportEffect {
        Bounced => "bounced",
        Complained => "complained",
        Recorded => "recorded",
        Unmatched => "unmatched",
        Forged => "forged",
    }
);

string_enum!(
    /// How a report was tied to its delivery.
    MatchedBy {
        Verp => "verp",
        MessageId => "message-id",
        Recipient => "recipient",
    }
);

string_enum!(
    /// What happened to a delivery, in its history.
    EventKind {
        Attempt => "attempt",
        Bounce => "bounce",
        Delay => "delay",
        Complaint => "complaint",
        Delivered => "delivered",
    }
);

string_enum!(
    /// What an issue holds: one post, a digest of several, or the welcome a new
    /// reader gets (with the newest essay).
    IssueKind {
        Post => "post",
        Digest => "digest",
        Welcome => "welcome",
    }
);

string_enum!(
    /// How often a reader gets letters: every essay as it is published, or one
    /// digest at each `[schedule] digest` time.
    Frequency {
        Each => "each",
        Digest => "digest",
    }
);

string_enum!(
    /// How a single line break in a post reads: as Markdown has it (a space, so
    /// lines run into one paragraph), or as its own paragraph, which is how text
    /// copied from many blogs (and many Korean essays) is laid out.
    LineBreaks {
        Markdown => "markdown",
        Paragraph => "paragraph",
    }
);

impl<'de> Deserialize<'de> for LineBreaks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a reader chose. `None` is the site's default: `schedule.mode` for the
/// frequency, every post for the topics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Preferences {
    pub frequency: Option<Frequency>,
    /// The topics followed; posts tagged with none of the site's topics come too.
    pub topics: Option<Vec<String>>,
}

impl Preferences {
    /// Whether a post carrying `post_topics` (its tags that are site topics) is
    /// for this reader.
    pub fn wants(&self, post_topics: &[String]) -> bool {
        match &self.topics {
            None => true,
            Some(chosen) => {
                post_topics.is_empty() || post_topics.iter().any(|t| chosen.contains(t))
            }
        }
    }

    pub fn frequency_or(&self, default: Frequency) -> Frequency {
        self.frequency.unwrap_or(default)
    }

    /// Topics as stored: a JSON array, or NULL for every post.
    pub fn topics_json(&self) -> Option<String> {
        self.topics
            .as_ref()
            .map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".into()))
    }

    /// Reads the stored topics; a value that is not a JSON array of strings is
    /// read as every post rather than as none.
    pub fn parse_topics(stored: Option<&str>) -> Option<Vec<String>> {
        stored.and_then(|s| serde_json::from_str(s).ok())
    }
}

/// The tags of `tags` that are among the site's `topics`.
pub fn topics_of(tags: &[String], topics: &[String]) -> Vec<String> {
    tags.iter()
        .filter(|t| topics.contains(t))
        .cloned()
        .collect()
}

impl<'de> Deserialize<'de> for Frequency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

string_enum!(
    /// Who made an issue: a scheduler tick, or the author by hand.
    IssueOrigin {
        Schedule => "schedule",
        Manual => "manual",
    }
);

string_enum!(
    /// How the last fetch of an upstream feed ended.
    FetchStatus {
        Ok => "200 OK",
        NotModified => "304 Not Modified",
        Error => "error",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domain_is_lowercased_local_part_kept() {
        let a = EmailAddress::parse("  Kim.MinJi@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "Kim.MinJi@example.com");
        assert_eq!(a.key(), "kim.minji@example.com");
    }

    #[test]
    fn bad_emails_are_rejected_with_a_reason() {
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "two words@example.com",
            "x@example.com\r\nBcc: victim@example.com",
            "@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn slugs_from_file_names() {
        assert_eq!(
            Slug::from_file_stem("My First Essay").unwrap().as_str(),
            "my-first-essay"
        );
        assert_eq!(
            Slug::from_file_stem("느리게 읽기").unwrap().as_str(),
            "느리게-읽기"
        );
        assert!(Slug::parse("a/b").is_err());
        assert!(Slug::parse("../etc").is_err());
    }

    #[test]
    fn one_line_removes_header_breaks() {
        assert_eq!(
            one_line("Hello\r\nBcc: x@y.z\tend "),
            "Hello Bcc: x@y.z end"
        );
    }
}
