//! RFC 5965 Abuse Reporting Format: a reader pressed "report spam" and their
//! provider's feedback loop tells the sender.

use super::mime::{blocks, Mail};
use super::{addresses_in, each_address, first_recipients, Action, Recipient, Report};

/// A complaint from the `message/feedback-report` fields, with its recipient from
/// `Original-Rcpt-To`, or else from the returned message's `To`.
pub fn read(mail: &Mail<'_>, fields: &str) -> Report {
    let fields: Vec<(String, String)> = blocks(fields).flatten().collect();
    let get_all = |name: &str| {
        fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let feedback_type = get_all("Feedback-Type").first().copied().unwrap_or("abuse");
    let mut addresses = first_recipients(
        get_all("Original-Rcpt-To")
            .into_iter()
            .chain(get_all("Removal-Recipient"))
            .flat_map(each_address),
    );
    if addresses.is_empty() {
        addresses = mail
            .original_headers()
            .map(|h| original_to(&h))
            .unwrap_or_default();
    }
    let mut recipients: Vec<Recipient> =
        addresses.into_iter().map(|a| complained(Some(a))).collect();
    if recipients.is_empty() {
        recipients.push(complained(None));
    }
    Report::complaint(recipients, feedback_type)
}

/// ARF fields some feedback loops write into the text of the report instead
/// of a `message/feedback-report` part: a line starting `Feedback-Type:`.
pub fn fields_in_text(mail: &Mail<'_>) -> Option<String> {
    let text = mail.notice_text();
    let start = text.lines().position(|l| {
        l.trim_start()
            .to_ascii_lowercase()
            .starts_with("feedback-type:")
    })?;
    Some(text.lines().skip(start).collect::<Vec<_>>().join("\n"))
}

/// Microsoft's older feedback loop (JMRP) sends no ARF fields: the complained-about
/// message comes back whole, stamped `X-HmXmrOriginalRecipient`.
pub fn read_jmrp(mail: &Mail<'_>) -> Option<Report> {
    let inner = Mail::parse(mail.attached_message()?)?;
    let recipient = inner.header_text("X-HmXmrOriginalRecipient")?;
    let addresses = first_recipients(each_address(recipient));
    let recipients = if addresses.is_empty() {
        vec![complained(None)]
    } else {
        addresses.into_iter().map(|a| complained(Some(a))).collect()
    };
    Some(Report::complaint(recipients, "abuse"))
}

pub fn complained(address: Option<crate::domain::EmailAddress>) -> Recipient {
    Recipient {
        address,
        status: None,
        hard: false,
        reason: super::Reason::Feedback,
        action: Action::Complained,
        diagnostic: None,
    }
}

/// The addresses in the `To` header of a returned message's header block.
fn original_to(headers: &str) -> Vec<crate::domain::EmailAddress> {
    let to = blocks(headers)
        .next()
        .unwrap_or_default()
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("To"))
        .flat_map(|(_, v)| addresses_in(&v));
    first_recipients(to)
}
