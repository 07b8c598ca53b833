//! The services whose exports an import reads, by name (`--from`).

use crate::domain::string_enum;

string_enum!(
    /// Whose export a subscriber file is.
    ExportFormat {
        // posthorn's own `subscribers export`, or any CSV with an `email` column.
        Posthorn => "posthorn",
        Mailchimp => "mailchimp",
        Substack => "substack",
        Ghost => "ghost",
        Listmonk => "listmonk",
        Buttondown => "buttondown",
        Kit => "kit",
    }
);
