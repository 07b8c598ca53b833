//! Why a recipient's mail failed, in the words bounce readers share: a
//! taxonomy of the reasons mail systems give, each mapped to what a sender
//! must do. Only a reason that says the address itself is gone is hard.

crate::domain::string_enum!(
    /// Why mail to one recipient failed (or what else the report says of it).
    Reason {
        /// No such user or mailbox at the domain.
        UserUnknown => "userunknown",
        /// No such domain, or it has no mail server.
        HostUnknown => "hostunknown",
        /// The domain accepts no mail at all (null MX, RFC 7505).
        NotAccept => "notaccept",
        /// The address has moved and forwards nowhere.
        HasMoved => "hasmoved",
        MailboxFull => "mailboxfull",
        /// The account exists but is disabled or suspended.
        Suspend => "suspend",
        /// Refused by a filter for this recipient (a gateway or a rule).
        Filtered => "filtered",
        /// Refused for the sender or the envelope.
        Rejected => "rejected",
        /// Refused for the sending host: its IP, a block list, its reputation.
        Blocked => "blocked",
        BadReputation => "badreputation",
        RequirePtr => "requireptr",
        SpamDetected => "spamdetected",
        VirusDetected => "virusdetected",
        PolicyViolation => "policyviolation",
        /// SPF, DKIM or DMARC failed.
        AuthFailure => "authfailure",
        /// TLS or other security requirements were not met.
        SecurityError => "securityerror",
        NoRelaying => "norelaying",
        /// Too many connections or messages at once.
        TooManyConn => "toomanyconn",
        Speeding => "speeding",
        ExceedLimit => "exceedlimit",
        MesgTooBig => "mesgtoobig",
        ContentError => "contenterror",
        SyntaxError => "syntaxerror",
        /// The message stayed in a queue until it expired.
        Expired => "expired",
        NetworkError => "networkerror",
        SystemError => "systemerror",
        SystemFull => "systemfull",
        /// A complaint (a feedback report).
        Feedback => "feedback",
        /// Nothing in the report says why.
        Undefined => "undefined",
    }
);

impl Reason {
    /// Whether the address itself is gone: the only reasons to stop mailing it
    /// at once. Everything else may work next time.
    pub fn address_gone(self) -> bool {
        matches!(
            self,
            Reason::UserUnknown | Reason::HostUnknown | Reason::NotAccept | Reason::HasMoved
        )
    }
}
