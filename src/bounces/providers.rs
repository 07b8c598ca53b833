//! Sending providers' own notifications: Amazon SES (by webhook through SNS, or
//! as mail), Postmark, Mailgun and SendGrid. Each becomes the same [`Report`] a
//! bounce message does. Authentication is checked by the caller, before this.

use serde_json::Value;

use super::arf::complained;
use super::status::StatusCode;
use super::{address_in, join_words, Action, Recipient, Report, ReportKind, MAX_RECIPIENTS};
use crate::domain::EmailAddress;

/// An SES notification by mail is an SNS message, at most 256 KB; this leaves
/// room for the line breaks MTAs add. Anything larger is not parsed at all.
const MAX_SES_NOTIFICATION_BYTES: usize = 512 * 1024;

/// An SES notification (`notificationType`, or `eventType` for event publishing)
/// in a text: a mail body or an SNS `Message`.
pub fn ses_notification_in(text: &str) -> Option<Report> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let json = text.get(start..=end)?;
    if json.len() > MAX_SES_NOTIFICATION_BYTES {
        return None;
    }
    // Lines longer than SMTP allows were broken by an MTA with `!`, newline, space.
    let json = json.replace("!\r\n ", "").replace("!\n ", "");
    let value: Value = serde_json::from_str(&json).ok()?;
    ses(&value)
}

/// One SES notification.
pub fn ses(v: &Value) -> Option<Report> {
    let kind = v
        .get("notificationType")
        .or_else(|| v.get("eventType"))?
        .as_str()?;
    match kind {
        "Bounce" => {
            let b = v.get("bounce")?;
            let permanent = b.get("bounceType").and_then(Value::as_str) == Some("Permanent");
            let sub = b.get("bounceSubType").and_then(Value::as_str).unwrap_or("");
            let recipients = list(b, "bouncedRecipients")
                .map(|r| {
                    let status = str_at(r, "status").and_then(StatusCode::find);
                    let mut diagnostic = str_at(r, "diagnosticCode").map(str::to_string);
                    if diagnostic.is_none() && !sub.is_empty() {
                        diagnostic = Some(format!("{sub} bounce"));
                    }
                    // A transient SES bounce is a soft failure (4.x when it names no code).
                    let stated = status
                        .or_else(|| StatusCode::parse(if permanent { "5.0.0" } else { "4.0.0" }));
                    let mut rec = Recipient::new(
                        str_at(r, "emailAddress").and_then(address_in),
                        Action::Failed,
                        stated,
                        diagnostic,
                    );
                    // SES says itself which permanent bounces mean "no such address".
                    rec.set_hard(
                        permanent && (rec.hard || matches!(sub, "NoEmail" | "Suppressed")),
                    );
                    rec
                })
                .collect();
            Some(Report::from_recipients(recipients))
        }
        "Complaint" => {
            let c = v.get("complaint")?;
            let recipients = list(c, "complainedRecipients")
                .map(|r| complained(str_at(r, "emailAddress").and_then(address_in)))
                .collect();
            Some(Report::complaint(
                recipients,
                str_at(c, "complaintFeedbackType").unwrap_or("abuse"),
            ))
        }
        "Delivery" => Some(Report::empty(ReportKind::Delivered)),
        "DeliveryDelay" => {
            let d = v.get("deliveryDelay")?;
            let recipients = list(d, "delayedRecipients")
                .map(|r| {
                    Recipient::new(
                        str_at(r, "emailAddress").and_then(address_in),
                        Action::Delayed,
                        str_at(r, "status").and_then(StatusCode::find),
                        str_at(r, "diagnosticCode").map(str::to_string),
                    )
                })
                .collect();
            Some(Report::from_recipients(recipients))
        }
        _ => None,
    }
}

/// A Postmark bounce or spam-complaint webhook.
pub fn postmark(v: &Value) -> Option<Report> {
    // Older bounce webhooks (and Postmark's own example) carry no RecordType.
    let record = str_at(v, "RecordType").or_else(|| v.get("BouncedAt").map(|_| "Bounce"))?;
    let address = str_at(v, "Email").and_then(address_in);
    match record {
        "SpamComplaint" => Some(Report::complaint(vec![complained(address)], "abuse")),
        "Bounce" => {
            let kind = str_at(v, "Type").unwrap_or("");
            let words = join_words(&[field(v, "Description"), field(v, "Details")]);
            let (action, stated) = match kind {
                "HardBounce" | "BadEmailAddress" => (Action::Failed, StatusCode::parse("5.1.1")),
                "Transient" | "DnsError" | "SoftBounce" | "AutoResponder" => {
                    (Action::Failed, StatusCode::parse("4.0.0"))
                }
                "SpamNotification" | "Blocked" | "ContentRelated" | "SpamComplaint" => {
                    (Action::Failed, StatusCode::parse("5.7.1"))
                }
                _ => (Action::Failed, None),
            };
            if kind == "AutoResponder" {
                return Some(Report::empty(ReportKind::AutoReply));
            }
            let mut rec = Recipient::new(address, action, stated, Some(words));
            rec.set_hard(matches!(kind, "HardBounce" | "BadEmailAddress"));
            Some(Report::from_recipients(vec![rec]))
        }
        "Delivery" => Some(Report::empty(ReportKind::Delivered)),
        _ => None,
    }
}

/// A Mailgun webhook's `event-data`.
pub fn mailgun(v: &Value) -> Option<Report> {
    let e = v.get("event-data")?;
    let address = str_at(e, "recipient").and_then(address_in);
    match str_at(e, "event")? {
        "complained" => Some(Report::complaint(vec![complained(address)], "abuse")),
        "failed" => {
            let ds = e.get("delivery-status");
            let words = ds
                .map(|d| {
                    let code = d.get("code").map(|c| c.to_string()).unwrap_or_default();
                    join_words(&[&code, field(d, "message"), field(d, "description")])
                })
                .unwrap_or_default();
            let stated = ds
                .and_then(|d| str_at(d, "enhanced-code"))
                .and_then(StatusCode::find);
            let permanent = str_at(e, "severity") == Some("permanent");
            let action = if permanent {
                Action::Failed
            } else {
                Action::Delayed
            };
            Some(one_recipient(address, action, stated, words))
        }
        "delivered" => Some(Report::empty(ReportKind::Delivered)),
        _ => None,
    }
}

/// One SendGrid event (the webhook posts an array of them).
pub fn sendgrid(v: &Value) -> Option<Report> {
    let address = str_at(v, "email").and_then(address_in);
    match str_at(v, "event")? {
        "spamreport" => Some(Report::complaint(vec![complained(address)], "abuse")),
        "bounce" | "dropped" | "deferred" => {
            let words = join_words(&[field(v, "reason"), field(v, "response")]);
            let action = if str_at(v, "event") == Some("deferred") {
                Action::Delayed
            } else {
                Action::Failed
            };
            let stated = str_at(v, "status").and_then(StatusCode::find);
            Some(one_recipient(address, action, stated, words))
        }
        "delivered" => Some(Report::empty(ReportKind::Delivered)),
        _ => None,
    }
}

/// A provider's event about one recipient, in its words.
fn one_recipient(
    address: Option<EmailAddress>,
    action: Action,
    stated: Option<StatusCode>,
    words: String,
) -> Report {
    Report::from_recipients(vec![Recipient::new(address, action, stated, Some(words))])
}

/// A text field, or "" when it is missing.
fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    str_at(v, key).unwrap_or("")
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The recipients listed under `key`, at most `MAX_RECIPIENTS` of them.
fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
        .take(MAX_RECIPIENTS)
}
