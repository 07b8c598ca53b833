//! Reports that must never be read as auto-replies, whatever their words.

use super::{read, Reason, ReportKind, Tracks};

fn kind(raw: &str) -> super::Report {
    read(raw.as_bytes(), &Tracks::default()).expect("a message")
}

#[test]
fn a_postfix_bounce_quoting_vacation_words_is_a_bounce() {
    let raw = "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n\
To: news@example.com\r\nSubject: Out of office: Undelivered Mail Returned to Sender\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nI am on vacation until Monday.\r\n\
<reader@example.net>: host mx.example.net said: 550 5.1.1 User unknown\r\n\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
Final-Recipient: rfc822; reader@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--b--\r\n";
    let report = kind(raw);
    assert_eq!(report.kind, ReportKind::Bounce);
    assert_eq!(report.recipients[0].reason, Reason::UserUnknown);
    assert!(report.recipients[0].hard);
}

#[test]
fn a_mail_systems_notice_is_never_an_auto_reply() {
    for header in [
        "From: MAILER-DAEMON@mx.example.org",
        "From: postmaster@mx.example.org",
        "From: someone@example.org\r\nX-Failed-Recipients: lost@example.net",
    ] {
        let raw = format!(
            "{header}\r\nTo: news@example.com\r\nSubject: Auto reply: away until Monday\r\n\
Auto-Submitted: auto-replied\r\n\r\nI am away until Monday.\r\n"
        );
        assert_ne!(kind(&raw).kind, ReportKind::AutoReply, "{header}");
    }
}

#[test]
fn every_feedback_type_is_a_complaint() {
    for feedback_type in [
        "abuse",
        "fraud",
        "opt-out",
        "not-spam",
        "virus",
        "other",
        "auth-failure",
    ] {
        let raw = format!(
            "From: fbl@example.net\r\nTo: news@example.com\r\nSubject: Auto reply: complaint\r\n\
Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\r\n\
--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: {feedback_type}\r\n\
User-Agent: fbl/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: reader@example.net\r\n\r\n--b--\r\n"
        );
        let report = kind(&raw);
        assert_eq!(report.kind, ReportKind::Complaint, "{feedback_type}");
        assert_eq!(report.feedback_type.as_deref(), Some(feedback_type));
        assert_eq!(report.recipients[0].reason, Reason::Feedback);
    }
}

#[test]
fn an_opt_out_report_written_as_text_is_a_complaint() {
    let raw = "From: fbl@example.net\r\nTo: news@example.com\r\nSubject: Auto reply: opt-out\r\n\
Auto-Submitted: auto-replied\r\n\r\nFeedback-Type: opt-out\r\nUser-Agent: fbl/1.0\r\n\
Version: 1\r\nOriginal-Rcpt-To: reader@example.net\r\n";
    let report = kind(raw);
    assert_eq!(report.kind, ReportKind::Complaint);
    assert_eq!(report.feedback_type.as_deref(), Some("opt-out"));
}
