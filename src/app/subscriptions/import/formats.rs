//! Other services' subscriber exports, told apart by their columns: where each
//! keeps the address, the name, the times and, above all, the status.

use chrono::{DateTime, Utc};

use super::cells::{from_cell, parse_time, shown, shown_columns, split_tags};
use super::services::ExportFormat;
use super::standing::{standing, status_of, MailchimpList};
use crate::domain::SubscriberStatus;

impl ExportFormat {
    /// The columns that tell this format apart, as the error for an unknown
    /// file lists them.
    const SIGNS: [(ExportFormat, &'static str); 7] = [
        (
            ExportFormat::Mailchimp,
            "`Email Address` with `OPTIN_TIME`, `MEMBER_RATING` or `LEID`",
        ),
        (ExportFormat::Substack, "`email`, `email_disabled`"),
        (ExportFormat::Ghost, "`email`, `subscribed_to_emails`"),
        (
            ExportFormat::Listmonk,
            "`uuid`, `email`, `status`, `attributes`",
        ),
        (
            ExportFormat::Buttondown,
            "`email` or `email_address`, `subscriber_type` or `type`",
        ),
        (ExportFormat::Kit, "`email_address` or `email`, `state`"),
        (ExportFormat::Posthorn, "`email` or `Email Address`"),
    ];

    pub(super) fn service(self) -> &'static str {
        match self {
            ExportFormat::Posthorn => "posthorn",
            ExportFormat::Mailchimp => "Mailchimp",
            ExportFormat::Substack => "Substack",
            ExportFormat::Ghost => "Ghost",
            ExportFormat::Listmonk => "listmonk",
            ExportFormat::Buttondown => "Buttondown",
            ExportFormat::Kit => "Kit",
        }
    }

    /// The formats and their columns, for an error.
    pub fn known() -> String {
        Self::SIGNS
            .iter()
            .map(|(f, columns)| format!("{f} ({columns})"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Columns only Mailchimp's export writes: `Email Address` alone is any
/// spreadsheet's.
const MAILCHIMP_SIGNS: [&str; 6] = [
    "member_rating",
    "optin_time",
    "confirm_time",
    "last_changed",
    "leid",
    "euid",
];

/// Words that make a column look like a status: one a format does not read
/// would be a reader's leaving ignored, so such a file is refused.
fn looks_like_status(column: &str) -> bool {
    matches!(
        column,
        "status" | "state" | "type" | "subscribed" | "active" | "opted_out" | "optout"
    ) || [
        "unsub",
        "bounce",
        "cleaned",
        "blocklist",
        "blacklist",
        "suppress",
        "complain",
        "opt_out",
        "disabled",
        "deleted",
    ]
    .iter()
    .any(|word| column.contains(word))
}

/// What a row of any export says, read.
#[derive(Debug)]
pub(super) struct Fields<'r> {
    pub email: &'r str,
    pub name: String,
    pub status: SubscriberStatus,
    pub reason: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub left_at: Option<DateTime<Utc>>,
    /// The service's tags or labels, or posthorn's `topics` cell.
    pub tags: Vec<&'r str>,
    pub frequency: &'r str,
}

/// A file's header read: its format and where each thing is.
#[derive(Debug)]
pub(super) struct Shape {
    pub format: ExportFormat,
    email: usize,
    /// Joined with a space: Mailchimp's first and last names.
    name: Vec<usize>,
    status: Option<usize>,
    mailchimp: Option<MailchimpList>,
    /// The first of these that is set.
    created: Vec<usize>,
    confirmed: Option<usize>,
    left: Option<usize>,
    tags: Option<usize>,
    frequency: Option<usize>,
    /// Substack's `email_disabled`, Ghost's `subscribed_to_emails`.
    flag: Option<usize>,
    /// Ghost's `deleted_at`.
    deleted: Option<usize>,
}

impl Shape {
    /// Reads a header row. `from` names the format, or `None` tells it by the
    /// columns. `file` names the file (a Mailchimp list is in its name).
    pub fn new(
        header: &csv::StringRecord,
        from: Option<ExportFormat>,
        file: &str,
    ) -> Result<Shape, String> {
        let names: Vec<String> = header
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_lowercase())
            .collect();
        let at = |name: &str| names.iter().position(|n| n == name);
        let any = |candidates: &[&str]| candidates.iter().find_map(|c| at(c));
        let has = |name: &str| at(name).is_some();
        let format = match from {
            Some(f) => f,
            None if has("email address") && MAILCHIMP_SIGNS.iter().any(|c| has(c)) => {
                ExportFormat::Mailchimp
            }
            None if has("email_disabled") => ExportFormat::Substack,
            None if has("subscribed_to_emails") => ExportFormat::Ghost,
            None if has("uuid") && has("status") && has("attributes") => ExportFormat::Listmonk,
            None if has("subscriber_type")
                || (has("type") && (has("email_address") || has("creation_date"))) =>
            {
                ExportFormat::Buttondown
            }
            None if has("state") && (has("email_address") || has("email")) => ExportFormat::Kit,
            None if has("email") || has("email address") => ExportFormat::Posthorn,
            None => {
                return Err(format!(
                    "not an export posthorn knows: the columns are {}; known formats: {}",
                    shown_columns(&names),
                    ExportFormat::known()
                ))
            }
        };
        let email = match format {
            ExportFormat::Mailchimp => any(&["email address", "email"]),
            _ => any(&["email", "email_address", "email address"]),
        }
        .ok_or_else(|| {
            format!(
                "a {format} export has an address column ({}); the columns are {}",
                ExportFormat::SIGNS
                    .iter()
                    .find(|(f, _)| *f == format)
                    .map_or("", |(_, c)| c),
                shown_columns(&names)
            )
        })?;
        let needs = |column: Option<usize>, name: &str| {
            column.ok_or_else(|| {
                format!(
                    "a {format} export has a `{name}` column; the columns are {}",
                    shown_columns(&names)
                )
            })
        };
        let mut shape = Shape {
            format,
            email,
            name: Vec::new(),
            status: None,
            mailchimp: None,
            created: Vec::new(),
            confirmed: None,
            left: None,
            tags: None,
            frequency: None,
            flag: None,
            deleted: None,
        };
        match format {
            ExportFormat::Posthorn => {
                shape.name = at("name").into_iter().collect();
                shape.status = at("status");
                shape.created = at("created_at").into_iter().collect();
                shape.tags = at("topics");
                shape.frequency = at("frequency");
            }
            ExportFormat::Mailchimp => {
                needs(any(&MAILCHIMP_SIGNS), "OPTIN_TIME")?;
                shape.name = match at("name") {
                    Some(n) => vec![n],
                    None => [at("first name"), at("last name")]
                        .into_iter()
                        .flatten()
                        .collect(),
                };
                shape.mailchimp = Some(MailchimpList::of(file, has));
                shape.created = [at("optin_time"), at("confirm_time")]
                    .into_iter()
                    .flatten()
                    .collect();
                shape.confirmed = at("confirm_time");
                shape.left = any(&["clean_time", "unsub_time"]);
                shape.tags = at("tags");
            }
            ExportFormat::Substack => {
                shape.name = at("name").into_iter().collect();
                shape.flag = Some(needs(at("email_disabled"), "email_disabled")?);
                shape.created = at("created_at").into_iter().collect();
            }
            ExportFormat::Ghost => {
                shape.name = at("name").into_iter().collect();
                shape.flag = Some(needs(at("subscribed_to_emails"), "subscribed_to_emails")?);
                shape.deleted = at("deleted_at");
                shape.left = at("deleted_at");
                shape.created = at("created_at").into_iter().collect();
                shape.tags = at("labels");
            }
            ExportFormat::Listmonk => {
                shape.name = at("name").into_iter().collect();
                shape.status = Some(needs(at("status"), "status")?);
                shape.created = at("created_at").into_iter().collect();
                shape.left = at("updated_at");
            }
            ExportFormat::Buttondown => {
                shape.status = Some(needs(any(&["subscriber_type", "type"]), "subscriber_type")?);
                shape.created = any(&["creation_date", "created_at"]).into_iter().collect();
                shape.left = any(&["unsubscription_date", "churn_date"]);
                shape.tags = at("tags");
            }
            ExportFormat::Kit => {
                shape.name = [at("first_name"), at("last_name")]
                    .into_iter()
                    .flatten()
                    .collect();
                shape.status = Some(needs(any(&["state", "status"]), "state")?);
                shape.created = at("created_at").into_iter().collect();
                shape.left = any(&["canceled_at", "cancelled_at"]);
                shape.tags = at("tags");
            }
        }
        shape.refuse_unread_statuses(&names)?;
        Ok(shape)
    }

    /// The columns this shape reads.
    fn read_columns(&self) -> Vec<usize> {
        let mut read = vec![self.email];
        read.extend(&self.name);
        read.extend(&self.created);
        read.extend(
            [
                self.status,
                self.confirmed,
                self.left,
                self.tags,
                self.frequency,
                self.flag,
                self.deleted,
            ]
            .into_iter()
            .flatten(),
        );
        read
    }

    /// A column that looks like a status and that this format does not read
    /// (`Status` beside `Email Address`, `unsubscribed` in a plain list) would
    /// make someone who left active: the file is refused instead.
    fn refuse_unread_statuses(&self, names: &[String]) -> Result<(), String> {
        let read = self.read_columns();
        let own = |name: &str| match self.format {
            // Mailchimp's unsubscribed and cleaned files describe the leaving.
            ExportFormat::Mailchimp => name.starts_with("unsub_") || name.starts_with("clean_"),
            // Substack's paid subscription, not the email's.
            ExportFormat::Substack => name == "active_subscription",
            _ => false,
        };
        let unread = names
            .iter()
            .enumerate()
            .find(|(i, name)| !read.contains(i) && looks_like_status(name) && !own(name));
        match unread {
            Some((_, name)) => Err(format!(
                "the column `{}` looks like a status, and a {} export has none by that name, so \
                 posthorn cannot tell who left; name the format with --from if another fits \
                 (known formats: {}), or keep only the subscribed rows and remove the column",
                shown(name),
                self.format,
                ExportFormat::known()
            )),
            None => Ok(()),
        }
    }

    /// Reads a row. An error is the reason the row is rejected.
    pub fn read<'r>(&self, record: &'r csv::StringRecord) -> Result<Fields<'r>, String> {
        let cell = |i: usize| from_cell(record.get(i).unwrap_or("").trim());
        let maybe = |i: Option<usize>| i.map_or("", cell);
        // A time that is not one is unknown: the row still says who the
        // reader is and whether they left, which matters more.
        let time = |i: Option<usize>| parse_time(maybe(i));
        let standing = standing(
            self.format,
            self.mailchimp,
            maybe(self.status),
            maybe(self.flag),
            maybe(self.deleted),
        )?;
        let (status, reason) = status_of(self.format, standing);
        let created_at = self.created.iter().find_map(|&column| time(Some(column)));
        let name = self
            .name
            .iter()
            .map(|&i| cell(i))
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Fields {
            email: cell(self.email),
            name,
            status,
            reason,
            created_at,
            confirmed_at: time(self.confirmed),
            left_at: if status == SubscriberStatus::Active {
                None
            } else {
                time(self.left)
            },
            tags: split_tags(maybe(self.tags), self.format),
            frequency: maybe(self.frequency),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(header: &str, file: &str) -> Result<Shape, String> {
        let record = csv::StringRecord::from(header.split(',').collect::<Vec<_>>());
        Shape::new(&record, None, file)
    }

    #[test]
    fn each_export_is_told_by_its_columns() {
        let cases = [
            ("Email Address,First Name,Last Name,OPTIN_TIME,TAGS", ExportFormat::Mailchimp),
            ("email,active_subscription,expiry,email_disabled,created_at", ExportFormat::Substack),
            (
                "id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,created_at,deleted_at,labels,tiers",
                ExportFormat::Ghost,
            ),
            ("uuid,email,name,attributes,status,created_at,updated_at", ExportFormat::Listmonk),
            ("email,creation_date,subscriber_type,tags,notes", ExportFormat::Buttondown),
            ("first_name,email_address,state,created_at,tags", ExportFormat::Kit),
            ("\u{feff}email,name,status,created_at,frequency,topics", ExportFormat::Posthorn),
        ];
        for (header, format) in cases {
            assert_eq!(shape(header, "x.csv").unwrap().format, format, "{header}");
        }
        let unknown = shape("address,full name", "x.csv").unwrap_err();
        assert!(unknown.contains("`address`, `full name`"), "{unknown}");
        assert!(
            unknown.contains("mailchimp (`Email Address` with"),
            "{unknown}"
        );
    }

    #[test]
    fn a_status_the_format_does_not_read_refuses_the_file() {
        for (header, column) in [
            ("email,unsubscribed,bounced", "unsubscribed"),
            ("Email Address,First name,Opt_Out", "opt_out"),
            ("email,name,is_deleted", "is_deleted"),
        ] {
            let err = shape(header, "x.csv").unwrap_err();
            assert!(
                err.contains(&format!("`{column}` looks like a status")),
                "{err}"
            );
        }
        let record = csv::StringRecord::from(vec!["email", "name", "status"]);
        let err = Shape::new(&record, Some(ExportFormat::Mailchimp), "x.csv").unwrap_err();
        assert!(err.contains("OPTIN_TIME"), "{err}");
        assert_eq!(
            shape("Email Address,Name", "x.csv").unwrap().format,
            ExportFormat::Posthorn
        );
    }

    #[test]
    fn a_mailchimp_list_is_named_by_its_file_or_its_columns() {
        let file = |name: &str, header: &str| shape(header, name).unwrap().mailchimp;
        let plain = "Email Address,First Name,LEID";
        assert_eq!(
            file("x/unsubscribed_members_export_1.csv", plain),
            Some(MailchimpList::Unsubscribed)
        );
        assert_eq!(
            file("subscribed_members_export_1.csv", plain),
            Some(MailchimpList::Subscribed)
        );
        assert_eq!(file("cleaned_1.csv", plain), Some(MailchimpList::Cleaned));
        assert_eq!(
            file("audience.csv", "Email Address,CLEAN_TIME,LEID"),
            Some(MailchimpList::Cleaned)
        );
        assert_eq!(
            file("audience.csv", "Email Address,UNSUB_TIME,LEID"),
            Some(MailchimpList::Unsubscribed)
        );
    }
}
