//! What each service's status words mean: a row's standing in its export,
//! and the status and reason posthorn keeps for it.

use super::cells::{shown, truthy};
use super::services::ExportFormat;
use crate::domain::SubscriberStatus;

/// A Mailchimp audience is exported as one file per list, named for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MailchimpList {
    Subscribed,
    Unsubscribed,
    Cleaned,
    /// Contacts who never opted in (transactional only).
    Nonsubscribed,
}

impl MailchimpList {
    /// By the file's name (`cleaned_members_export_….csv`), else by its columns.
    pub(super) fn of(file: &str, has: impl Fn(&str) -> bool) -> MailchimpList {
        let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
        let base = base.to_ascii_lowercase();
        if base.starts_with("unsubscribed") {
            MailchimpList::Unsubscribed
        } else if base.starts_with("cleaned") {
            MailchimpList::Cleaned
        } else if base.starts_with("nonsubscribed") {
            MailchimpList::Nonsubscribed
        } else if base.starts_with("subscribed") {
            MailchimpList::Subscribed
        } else if has("clean_time") {
            MailchimpList::Cleaned
        } else if has("unsub_time") {
            MailchimpList::Unsubscribed
        } else {
            MailchimpList::Subscribed
        }
    }
}

/// Where a row stands, in the export's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    Subscribed,
    /// Signed up, never confirmed: no mail until they do.
    Pending,
    Unsubscribed,
    Bounced,
    Complained,
}

/// The export's status words, as the export means them.
pub(super) fn standing(
    format: ExportFormat,
    list: Option<MailchimpList>,
    status: &str,
    flag: &str,
    deleted: &str,
) -> Result<Standing, String> {
    let word = status.to_ascii_lowercase();
    let unknown = || {
        format!(
            "the {} status `{}` is not one posthorn knows",
            format.service(),
            shown(status)
        )
    };
    Ok(match format {
        ExportFormat::Posthorn => match word.as_str() {
            "" | "active" => Standing::Subscribed,
            "pending" => Standing::Pending,
            "unsubscribed" => Standing::Unsubscribed,
            "bounced" => Standing::Bounced,
            _ => return Err(unknown()),
        },
        ExportFormat::Mailchimp => match list {
            Some(MailchimpList::Unsubscribed) => Standing::Unsubscribed,
            Some(MailchimpList::Cleaned) => Standing::Bounced,
            Some(MailchimpList::Nonsubscribed) => Standing::Pending,
            Some(MailchimpList::Subscribed) | None => Standing::Subscribed,
        },
        ExportFormat::Substack if truthy(flag) => Standing::Unsubscribed,
        ExportFormat::Substack => Standing::Subscribed,
        ExportFormat::Ghost if !deleted.is_empty() || !truthy(flag) => Standing::Unsubscribed,
        ExportFormat::Ghost => Standing::Subscribed,
        ExportFormat::Listmonk => match word.as_str() {
            "enabled" => Standing::Subscribed,
            "disabled" | "blocklisted" | "unsubscribed" => Standing::Unsubscribed,
            _ => return Err(unknown()),
        },
        ExportFormat::Buttondown => match word.as_str() {
            "regular" | "premium" | "gifted" | "trialed" | "churning" | "churned" | "past_due"
            | "unpaid" | "paused" | "free" | "active" => Standing::Subscribed,
            "unactivated" => Standing::Pending,
            "unsubscribed" | "removed" => Standing::Unsubscribed,
            "undeliverable" | "bounced" => Standing::Bounced,
            "complained" => Standing::Complained,
            "spammy" | "malformed" | "blocked" => {
                return Err(format!("marked `{word}` by Buttondown"))
            }
            _ => return Err(unknown()),
        },
        ExportFormat::Kit => match word.as_str() {
            "active" => Standing::Subscribed,
            "inactive" => Standing::Pending,
            "cancelled" | "canceled" | "unsubscribed" => Standing::Unsubscribed,
            "bounced" => Standing::Bounced,
            "complained" => Standing::Complained,
            _ => return Err(unknown()),
        },
    })
}

/// posthorn's status for a standing, and the reason kept with it. A
/// complaint is an unsubscribe whose reason begins "complaint", as
/// posthorn's own are.
pub(super) fn status_of(
    format: ExportFormat,
    standing: Standing,
) -> (SubscriberStatus, Option<String>) {
    let at = |what: &str| match format {
        ExportFormat::Posthorn => None,
        f => Some(format!("{what} at {}", f.service())),
    };
    match standing {
        Standing::Subscribed => (SubscriberStatus::Active, None),
        Standing::Pending => (SubscriberStatus::Pending, None),
        Standing::Unsubscribed => (SubscriberStatus::Unsubscribed, at("unsubscribed")),
        Standing::Bounced if format == ExportFormat::Mailchimp => {
            (SubscriberStatus::Bounced, at("cleaned"))
        }
        Standing::Bounced => (SubscriberStatus::Bounced, at("bounced")),
        Standing::Complained => (
            SubscriberStatus::Unsubscribed,
            Some(format!("complaint at {}", format.service())),
        ),
    }
}

/// How a Mailchimp file ranks when several are read: leaving first, so that
/// an address in two lists keeps the one that says it left.
pub(super) fn mailchimp_rank(file: &str) -> u8 {
    match MailchimpList::of(file, |_| false) {
        MailchimpList::Cleaned => 0,
        MailchimpList::Unsubscribed => 1,
        MailchimpList::Nonsubscribed => 2,
        MailchimpList::Subscribed => 3,
    }
}
