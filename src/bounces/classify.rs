//! Hard or soft: is the address itself gone, or may it work next time?
//!
//! Hard means the reader's address is dead: no such user, no such domain, a
//! domain that accepts no mail (null MX, RFC 7505), an address that has moved.
//! Everything else that fails is soft: a full mailbox, a message blocked as spam
//! or by policy (5.7.x is about the message or the sender, never the reader),
//! rate limits, size limits, a message that expired in a queue, a server that
//! is down. The same reading serves reports and the replies posthorn sees itself.

use std::sync::LazyLock;

use regex::Regex;

use super::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Hard,
    Soft,
}

/// The words servers use for "this user does not exist". Not believed when the
/// server said them after DATA (see `NOT_AT_RCPT`): then they are often a
/// content filter's.
static NO_USER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        user\s+unknown | unknown\s+user | unknown\s+recipient | recipient\s+unknown
        | (user|recipient|mailbox|address|account)\s+(is\s+)?(not\s+found|not\s+known|unknown)
        | no\s+such\s+(user|recipient|mailbox|account|address|person|local\s+user)
        | (user|mailbox|recipient|address|account|addressee|e-?mail\s+address)('s)?\s+(\S+\s+)?(does\s+not|doesn't|did\s+not)\s+exist
        | (mailbox|account|address|user)\s+(name\s+)?(is\s+)?(invalid|not\s+valid)
        | invalid\s+(\w+\s+){0,3}(recipient|mailbox|address|user(id)?)\b
        | not\s+listed\s+in\s+(\S+\s+){0,5}(directory|address\s+book)
        | not\s+a\s+valid\s+(mailbox|user|recipient)
        | unknown\s+(local[\s-]part|address|mailbox|or\s+illegal\s+alias)
        | (is\s+not|isn't)\s+a\s+known\s+user
        | unrouteable\s+address | no\s+mailbox\s+here | not\s+our\s+customer
        | recipient\s+no\s+longer\s+on\s+server | no\s+longer\s+(available|valid|active|in\s+use)
        | (doesn't|does\s+not)\s+have\s+an?\s+\S+\s+account
        | mailbox\s+unavailable | mailbox\s+not\s+available | no\s+mailbox
        | addressee\s+unknown | bad\s+destination\s+mailbox | undeliverable\s+address
        | not\s+exist | no\s+valid\s+recipients? | has\s+moved | moved\s+(permanently|to\s+a\s+new)
        ",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// The words for "this domain does not exist": the sending MTA's own finding
/// (DNS), so no SMTP command is needed to believe them.
static NO_DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        host\s+unknown | unknown\s+host | host\s+not\s+found | domain\s+not\s+found
        | (host|domain)\s+(name\s+)?(does\s+not|doesn't)\s+exist | unknown\s+domain
        | no\s+such\s+domain | host\s+or\s+domain\s+name\s+not\s+found
        | (couldn't|could\s+not|cannot|can't)\s+find\s+(a\s+)?(mail\s+exchanger|mx)
        | unrouteable\s+mail\s+domain | illegal\s+host/domain | nxdomain | no\s+mx\b
        | domain\s+(is\s+)?not\s+(exist|registered|reachable)
        ",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// Words that say the failure is about something other than the address, even
/// when a server used an address code for it.
static NOT_THE_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        mailbox\s+(is\s+)?full | over\s*quota | quota\s+exceeded | exceed(ed|s)?\s+(the\s+)?(storage|quota)
        | insufficient\s+(system\s+)?storage | disk\s+full | out\s+of\s+storage
        | spam | blacklist | blocklist | block(ed)?\b | listed\s+(at|on)\s | reputation
        | policy | rate\s+limit | too\s+many | try\s+again\s+later | greylist
        | suspend | disabled | inactive | deactivated | temporarily
        | (message|mail)\s+(is\s+)?too\s+(big|large) | size\s+(limit|exceeds)
        | relay(ing)?\s+(access\s+)?(denied|not\s+permitted|prohibited)
        | timed?\s*out | expired | too\s+long\s+in\s+(the\s+)?queue
        | sender\s+address | domain\s+of\s+sender | sender\s+rejected | not\s+allowed\s+to\s+send | \bspf\b
        ",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// The reply came after the recipient was accepted (to DATA) or was about the
/// sender (to MAIL FROM): a "user unknown" there is a content filter's answer or
/// the sender's problem, not news that the reader's address is gone.
static NOT_AT_RCPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (in\s+reply\s+to|after|during)\s+(the\s+)?(end\s+of\s+)?(data|mail\s+from)\b
        | >>>\s*data\s+<<<\s*55[023] | did\s+not\s+like\s+our\s+(final\s+)?data
        ",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// A domain that publishes that it takes no mail (RFC 7505 null MX): gone.
static NULL_MX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"does\s+not\s+accept\s+(e-?)?mail|null\s+mx|no\s+smtp\s+service")
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// A security or policy code (x.7.x) anywhere in the words.
static POLICY_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[45]\.7\.\d{1,3}\b").unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// Hard or soft, from the status code and the server's words.
pub fn classify(status: Option<StatusCode>, diagnostic: &str) -> Severity {
    let text = diagnostic.to_lowercase();
    if NULL_MX.is_match(&text) {
        return Severity::Hard;
    }
    // x.7.x is security or policy: about the message or the sender.
    if status.is_some_and(|s| s.subject == 7)
        || POLICY_CODE.is_match(&text)
        || NOT_AT_RCPT.is_match(&text)
    {
        return Severity::Soft;
    }
    // x.2.0, "other mailbox status", is what filters answer with on some
    // networks (Japan's mobile carriers): their "user unknown" is a refusal.
    if status.is_some_and(|s| s.subject == 2 && s.detail == 0) && !text.contains("rcpt") {
        return Severity::Soft;
    }
    let other_reason = NOT_THE_ADDRESS.is_match(&text);
    let address_code =
        status.is_some_and(|s| s.subject == 1 && matches!(s.detail, 0 | 1 | 2 | 3 | 6 | 10));
    let gone = address_code || NO_DOMAIN.is_match(&text) || NO_USER.is_match(&text);
    if gone && !other_reason {
        Severity::Hard
    } else {
        Severity::Soft
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: &str, text: &str) -> Severity {
        classify(StatusCode::parse(status), text)
    }

    #[test]
    fn unknown_users_and_domains_are_hard() {
        assert_eq!(
            c(
                "5.1.1",
                "550 5.1.1 <a@b.c>: Recipient address rejected: User unknown"
            ),
            Severity::Hard
        );
        assert_eq!(c("5.0.0", "550 No such user here"), Severity::Hard);
        assert_eq!(
            c(
                "5.0.0",
                "550 No such user here (in reply to end of DATA command)"
            ),
            Severity::Soft
        );
        assert_eq!(c("5.1.2", "Host or domain name not found"), Severity::Hard);
        assert_eq!(
            c("5.1.10", "556 5.1.10 Domain does not accept mail"),
            Severity::Hard
        );
    }

    #[test]
    fn blocked_full_and_expired_are_soft() {
        assert_eq!(
            c("5.7.1", "554 5.7.1 Message rejected as spam"),
            Severity::Soft
        );
        assert_eq!(c("5.2.2", "552 5.2.2 Mailbox full"), Severity::Soft);
        assert_eq!(c("4.4.7", "Message expired in queue"), Severity::Soft);
        assert_eq!(c("5.1.1", "550 5.1.1 mailbox full"), Severity::Soft);
    }
}
