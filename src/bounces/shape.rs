//! Who wrote a recipient's words, and what they answered, read before the
//! words themselves.
//!
//! The same "550 user unknown" means different things by who says it and when.
//! The reporting system may speak for itself, having looked the address up in
//! its own directory (Exchange, Domino, Notes, IMail, a carrier's MMS gateway):
//! then it knows. Or it may relay a remote server's reply: then the words are
//! only as good as the moment they were said. A refusal of `RCPT TO` is about
//! the address; one after `DATA` is a content filter's, whatever it says; and
//! one whose moment the report does not give, under a status that says nothing
//! (`5.0.0`), is ambiguous. Each MTA writes the moment in its own dialect, and
//! some remote systems are known to refuse unknown users only after `DATA`.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::mime::Mail;
use super::status::reply_class;

/// The SMTP command a remote reply answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    MailFrom,
    RcptTo,
    Data,
}

/// How MTAs say which command a reply answered, in the order they are
/// believed: a reply about the sender first, then one after the message.
static COMMAND: LazyLock<(Vec<Command>, RegexSet)> = LazyLock::new(|| {
    let dialects: [(Command, &str); 3] = [
        (
            Command::MailFrom,
            // Postfix, Exim and the `SMTP command:` label.
            r"(in\s+reply\s+to|after|during)\s+(the\s+)?mail\s+from\b",
        ),
        (
            Command::Data,
            // Postfix "in reply to end of DATA", Exim "after end of data",
            // Sendmail's transcript: a 550, 552 or 553 to `DATA` (with
            // pipelining, a 554 there is "no valid recipients", not the reason).
            r"(?x)(in\s+reply\s+to|after|during)\s+(the\s+)?(end\s+of\s+)?data\b
            | >>>\s*data\s+<<<\s*55[023] | did\s+not\s+like\s+our\s+(final\s+)?data",
        ),
        (
            Command::RcptTo,
            // Postfix "in reply to RCPT TO", Exim "after RCPT TO", qmail "most
            // progress was RCPT TO response", Yahoo "[RCPT_TO]", Sendmail's
            // transcript, Messaging Server "has rejected address", "SMTP:RCPT".
            r"(?x)(in\s+reply\s+to|after|during)\s+(the\s+)?(pipelined\s+)?rcpt\b
            | rcpt\s+to\s+response | \[rcpt_to\] | >>>\s*rcpt\s+to | smtp:rcpt
            | rejected\s+(the\s+)?(recipient\s+)?address\b",
        ),
    ];
    let (commands, patterns): (Vec<Command>, Vec<String>) = dialects
        .into_iter()
        .map(|(c, p)| (c, format!("(?i){p}")))
        .unzip();
    let set = RegexSet::new(patterns).unwrap_or_else(|e| unreachable!("fixed patterns: {e}"));
    (commands, set)
});

impl Command {
    /// The command `text` says a reply answered, when it says.
    pub fn find(text: &str) -> Option<Command> {
        let (commands, set) = &*COMMAND;
        set.matches(text).iter().next().map(|i| commands[i])
    }
}

/// Remote systems whose refusals of an unknown user come only after `DATA`,
/// in words of their own: Yahoo checks recipients then ("dd This user
/// doesn't have a yahoo.com account"), so its words there are about the address.
static CHECKS_AT_DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\byahoo(dns)?\.(com|net|co\.jp)\b")
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// The system that wrote the report, where its shape changes how its words
/// are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Writer {
    /// McAfee's mail gateway checks recipients against its own directory and
    /// writes its verdict as the SMTP reply it gave (`550 Unknown user …`).
    McAfee,
    #[default]
    Other,
}

impl Writer {
    pub fn of(mail: &Mail<'_>) -> Writer {
        if mail
            .header_text("X-NAI-Header")
            .is_some_and(|v| v.contains("McAfee"))
        {
            Writer::McAfee
        } else {
            Writer::Other
        }
    }
}

/// Who is speaking in a recipient's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// The reporting system, in its own words (no SMTP reply in them): its
    /// directory or its DNS answered.
    Reporter,
    /// A remote server's reply, relayed.
    Remote,
    /// A remote known to refuse unknown users after `DATA`.
    RemoteCheckingAtData,
}

impl Speaker {
    pub fn of(text: &str, writer: Writer) -> Speaker {
        if writer == Writer::McAfee || reply_class(text).is_none() {
            Speaker::Reporter
        } else if CHECKS_AT_DATA.is_match(text) {
            Speaker::RemoteCheckingAtData
        } else {
            Speaker::Remote
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_names_its_command() {
        for (text, want) in [
            (
                "550 5.1.1 <a@b.c>: User unknown (in reply to RCPT TO command)",
                Command::RcptTo,
            ),
            (
                "SMTP error from remote mail server after RCPT TO:<a@b.c>: 550",
                Command::RcptTo,
            ),
            (
                "most progress was RCPT TO response; remote host said: 550",
                Command::RcptTo,
            ),
            (
                "550 5.2.1 <a@b.c>... User Unknown [RCPT_TO]",
                Command::RcptTo,
            ),
            (">>> RCPT To:<a@b.c> <<< 550 User unknown", Command::RcptTo),
            (
                "Reason: Remote SMTP server has rejected address",
                Command::RcptTo,
            ),
            (
                "550 No such user here (in reply to end of DATA command)",
                Command::Data,
            ),
            (
                "SMTP error from remote mail server after end of data: 550",
                Command::Data,
            ),
            (">>> DATA <<< 550 5.7.1 Refused", Command::Data),
            (
                "550 5.1.8 Bad sender (in reply to MAIL FROM command)",
                Command::MailFrom,
            ),
        ] {
            assert_eq!(Command::find(text), Some(want), "{text}");
        }
        // With pipelining, a 554 to DATA is "no valid recipients", not the reason.
        assert_eq!(Command::find(">>> DATA <<< 554 no valid recipients"), None);
        assert_eq!(Command::find("550 user unknown"), None);
    }

    #[test]
    fn words_without_a_reply_are_the_reporters_own() {
        assert_eq!(
            Speaker::of("The recipient name is not recognized", Writer::Other),
            Speaker::Reporter
        );
        assert_eq!(
            Speaker::of("550 user unknown", Writer::Other),
            Speaker::Remote
        );
        assert_eq!(
            Speaker::of("550 Unknown user a@b.c", Writer::McAfee),
            Speaker::Reporter
        );
        assert_eq!(
            Speaker::of(
                "554 delivery error: dd This user doesn't have a yahoo.com account",
                Writer::Other
            ),
            Speaker::RemoteCheckingAtData
        );
    }
}
