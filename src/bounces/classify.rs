//! Why a recipient's mail failed, and so whether it is hard or soft.
//!
//! Hard means the reader's address is dead: no such user, no such domain, a
//! domain that accepts no mail (null MX, RFC 7505), an address that has moved.
//! Everything else that fails is soft: a full mailbox, a message blocked as spam
//! or by policy, rate limits, size limits, a message that expired in a queue, a
//! server that is down. The reason comes from the enhanced status code first,
//! then from the server's words, which may override a vague code. The same
//! reading serves reports and the replies posthorn sees itself.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::shape::{Command, Speaker, Writer};
use super::{Reason, StatusCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Hard,
    Soft,
}

/// The words servers use for "this user does not exist". Believed as they stand
/// only when the moment and the speaker allow it (see `shape`): after DATA they
/// are often a content filter's.
static NO_USER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        user\s+unknown | unknown\s+user | unknown\s+recipient | recipient\s+unknown
        | (user|recipient|mailbox|address|account)\s+(name\s+)?(is\s+)?(not\s+found|not\s+known|not\s+recognized|unknown)
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
        | (^|[\s:])[a-z0-9-]+(\.[a-z0-9-]+)+\s+(does\s+not|doesn't)\s+exist
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

/// Families of words for the reasons that are not about the address, in the
/// order they are tried: the more specific first.
/// One set, so the words are scanned once for all the families; the lowest
/// index that matches wins.
static FAMILIES: LazyLock<(Vec<Reason>, RegexSet)> = LazyLock::new(|| {
    let family = |reason, pattern: &str| (reason, format!("(?x){pattern}"));
    let families: Vec<(Reason, String)> = vec![
        family(
            Reason::MailboxFull,
            r"mailbox\s+(is\s+)?full | over\s*quota | quota\s+(exceeded|full) | exceed(ed|s)?\s+(the\s+|its\s+|his\s+|her\s+)?(storage|quota)
            | insufficient\s+storage | out\s+of\s+storage | mailbox\s+size\s+limit | full\s+mailbox | mail\s*box\s+(has\s+)?exceeded",
        ),
        family(
            Reason::SystemFull,
            r"insufficient\s+system\s+storage | disk\s+full | no\s+space\s+left | system\s+(is\s+)?full",
        ),
        family(
            Reason::Suspend,
            r"suspend | disabled | inactive | deactivated | account\s+(is\s+)?(locked|frozen|expired)",
        ),
        family(
            Reason::MesgTooBig,
            r"(message|mail)\s+(is\s+)?too\s+(big|large) | size\s+(limit|exceeds) | exceeds?\s+(the\s+)?(maximum\s+)?(message\s+)?size",
        ),
        family(
            Reason::NoRelaying,
            r"relay(ing)?\s+(access\s+)?(denied|not\s+(permitted|allowed))|(unable|not\s+permitted|not\s+allowed)\s+to\s+relay|relaying\s+(is\s+)?prohibited",
        ),
        family(Reason::VirusDetected, r"virus | malware | infected"),
        family(Reason::SpamDetected, r"spam | unsolicited"),
        family(
            Reason::AuthFailure,
            r"\bspf\b | \bdkim\b | \bdmarc\b | sender\s+policy\s+framework",
        ),
        family(
            Reason::RequirePtr,
            r"\bptr\b | reverse\s+(dns|lookup) | \brdns\b | no\s+reverse | hostname\s+lookup",
        ),
        family(Reason::BadReputation, r"reputation"),
        family(
            Reason::Blocked,
            // A conversation that broke before any recipient (sendmail's "Remote
            // protocol error") refused the sending host, whatever the remote's
            // words: a "host unknown" there names us, not the reader's domain.
            r"blacklist | blocklist | block\s+list | block(ed)?\b | listed\s+(at|on)\s | banned | \bdnsbl\b | \brbl\b | spamhaus | client\s+host\s+rejected
            | remote\s+protocol\s+error",
        ),
        family(
            Reason::TooManyConn,
            r"too\s+many\s+(connections|concurrent|sessions|simultaneous)",
        ),
        family(
            Reason::Speeding,
            r"rate\s+limit | too\s+many\s+(messages|mails|emails) | sending\s+rate | rate\s+(exceeded|too\s+high)",
        ),
        family(
            Reason::SecurityError,
            r"\btls\b | starttls | encryption | certificate | authentication\s+required",
        ),
        family(
            Reason::Rejected,
            r"sender\s+address | domain\s+of\s+sender | sender\s+(rejected|verify|denied|unknown) | not\s+allowed\s+to\s+send | envelope\s+sender",
        ),
        family(Reason::PolicyViolation, r"policy | greylist | too\s+many"),
    ];
    let (reasons, patterns): (Vec<Reason>, Vec<String>) = families.into_iter().unzip();
    let set = RegexSet::new(patterns).unwrap_or_else(|e| unreachable!("fixed patterns: {e}"));
    (reasons, set)
});

/// Words that say the mail system gave up or is still trying, which a server
/// says beside the real reason: they give way to words about the address.
static EXPIRED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        timed?\s*out | expired | too\s+long\s+in\s+(the\s+)?queue | retry\s+(timeout\s+)?exceeded
        | try\s+again\s+later | temporarily",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// The reason an enhanced status code gives on its own (RFC 3463 and its
/// registry), or `None` when the code leaves it to the words.
fn from_code(status: StatusCode) -> Option<Reason> {
    use Reason::*;
    let reason = match (status.subject, status.detail) {
        (1, 1 | 3) => UserUnknown,
        (1, 2) => HostUnknown,
        (1, 6) => HasMoved,
        (1, 10) => NotAccept,
        (1, 7 | 8) => Rejected,
        (2, 1) => Suspend,
        (2, 2) => MailboxFull,
        (2, 3) | (3, 4) => MesgTooBig,
        (3, 1) => SystemFull,
        (3, 0 | 2 | 3 | 5) => SystemError,
        (4, 7) => Expired,
        (4, _) => NetworkError,
        (5, 3) => ExceedLimit,
        (5, _) => SyntaxError,
        (6, _) => ContentError,
        (7, 1) => Rejected,
        (7, 2 | 15) => PolicyViolation,
        (7, 13) => Suspend,
        (7, 16) => MesgTooBig,
        (7, 17 | 18) => HasMoved,
        (7, 20..=24 | 26 | 29) => AuthFailure,
        (7, 25) => RequirePtr,
        (7, 27) => Rejected,
        (7, 28) => Blocked,
        (7, _) => SecurityError,
        _ => return None,
    };
    Some(reason)
}

/// Why mail failed, from the status code and the server's words.
pub fn reason(status: Option<StatusCode>, diagnostic: &str, writer: Writer) -> Reason {
    let text = diagnostic.to_lowercase();
    if NULL_MX.is_match(&text) {
        return Reason::NotAccept;
    }
    let (reasons, set) = &*FAMILIES;
    let other = set.matches(&text).iter().next().map(|i| reasons[i]);
    if let Some(other) = other {
        return other;
    }
    let gone = if NO_DOMAIN.is_match(&text) {
        Some(Reason::HostUnknown)
    } else if NO_USER.is_match(&text) {
        Some(Reason::UserUnknown)
    } else {
        None
    };
    let code = status.and_then(from_code);
    let command = Command::find(&text);
    // x.2.0, "other mailbox status", is what filters answer with on some
    // networks (Japan's mobile carriers): their "user unknown" is a refusal.
    let filter_code =
        status.is_some_and(|s| s.subject == 2 && s.detail == 0) && command != Some(Command::RcptTo);
    let said = gone.or(code.filter(|r| r.address_gone()));
    if let Some(said) = said {
        // A reply to MAIL FROM is about the sender, not the reader.
        if command == Some(Command::MailFrom) {
            return Reason::Rejected;
        }
        // x.7.x is security or policy, about the message or the sender: a
        // "user unknown" with it, after DATA, or with x.2.0 is a filter's.
        let policy = status.is_some_and(|s| s.subject == 7) || POLICY_CODE.is_match(&text);
        if said == Reason::UserUnknown && (command == Some(Command::Data) || filter_code || policy)
        {
            return Reason::Filtered;
        }
        // A remote's "user unknown" under a status that says nothing (x.0.0),
        // at a moment the report does not give, may be a filter's refusal
        // after DATA: ambiguous, so not taken as the address's end.
        let vague = status.is_none_or(|s| s.subject == 0);
        if said == Reason::UserUnknown
            && vague
            && command.is_none()
            && Speaker::of(&text, writer) == Speaker::Remote
        {
            return Reason::Filtered;
        }
        if policy {
            return code
                .filter(|r| !r.address_gone())
                .unwrap_or(Reason::Rejected);
        }
        return said;
    }
    if EXPIRED.is_match(&text) {
        return Reason::Expired;
    }
    code.unwrap_or(Reason::Undefined)
}

/// Hard or soft, from the status code and the server's words.
pub fn classify(status: Option<StatusCode>, diagnostic: &str) -> Severity {
    if reason(status, diagnostic, Writer::Other).address_gone() {
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
        // A remote's words under a status that says nothing are believed when
        // the moment was RCPT TO; at an unknown moment they may be a filter's.
        assert_eq!(
            c(
                "5.0.0",
                "550 No such user here (in reply to RCPT TO command)"
            ),
            Severity::Hard
        );
        assert_eq!(c("5.0.0", "550 No such user here"), Severity::Soft);
        assert_eq!(
            reason(
                StatusCode::find("5.0.0"),
                "550 No such user here",
                Writer::Other
            ),
            Reason::Filtered
        );
        // The reporting system's own finding, with no remote reply in it.
        assert_eq!(
            c("5.0.0", "The recipient name is not recognized"),
            Severity::Hard
        );
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

    #[test]
    fn a_broken_conversation_refused_the_sender_not_the_reader() {
        let said =
            "554 <a@b.example>... Remote protocol error 550 b.example (smtp)... 550 Host unknown";
        assert_eq!(
            reason(StatusCode::find("5.0.0"), said, Writer::Other),
            Reason::Blocked
        );
        assert_eq!(c("5.0.0", said), Severity::Soft);
        // The sending MTA's own DNS finding is still the domain's end.
        assert_eq!(
            c(
                "5.0.0",
                "Host unknown (Name server: b.example: host not found)"
            ),
            Severity::Hard
        );
    }
}
