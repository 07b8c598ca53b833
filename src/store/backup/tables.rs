//! Which tables and columns a backup holds, and which it leaves out.

/// How a column's values are written in a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Integer,
    Text,
    /// Hex in the file: JSON has no bytes.
    Bytes,
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnKind,
}

/// A table a backup holds.
#[derive(Debug)]
pub struct BackupTable {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// The primary key: rows are written in its order.
    pub(super) order: &'static str,
    /// Rows left out: `meta`'s locks belong to the processes running now.
    pub(super) only: Option<&'static str>,
    /// Filled by the migrations themselves (`meta`, a count made when 0013
    /// ran): replaced by the backup's rows rather than checked to be empty.
    pub(super) seeded: bool,
}

impl BackupTable {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether the key is an `id`: read a page at a time, and drawn by
    /// PostgreSQL from a sequence.
    pub(super) fn keyed_by_id(&self) -> bool {
        self.order == "id"
    }
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnKind::Integer,
    }
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnKind::Text,
    }
}

const fn bytes(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnKind::Bytes,
    }
}

const fn table(name: &'static str, order: &'static str, columns: &'static [Column]) -> BackupTable {
    BackupTable {
        name,
        columns,
        order,
        only: None,
        seeded: false,
    }
}

/// Every table a backup holds, each after the tables it refers to.
///
/// Left out, and why: `admin_sessions` (sign-ins belong to the browsers of
/// the site that made them); `delivery_counts`, `report_counts` and their
/// PostgreSQL deltas (rebuilt by their triggers as the rows are loaded). A
/// test checks that every other table and column of the schema is here, so a
/// migration that adds one cannot be forgotten.
pub static BACKUP_TABLES: &[BackupTable] = &[
    BackupTable {
        name: "meta",
        columns: &[text("key"), text("value")],
        order: "key",
        only: Some("key NOT LIKE 'lock:%'"),
        seeded: true,
    },
    BackupTable {
        name: "forgotten_before_hashes",
        columns: &[int("n")],
        order: "n",
        only: None,
        seeded: true,
    },
    table("forgotten_addresses", "key_hash", &[text("key_hash")]),
    table(
        "subscribers",
        "id",
        &[
            int("id"),
            text("email"),
            text("email_key"),
            text("name"),
            text("status"),
            int("created_at"),
            int("updated_at"),
            int("confirmed_at"),
            int("unsubscribed_at"),
            int("hard_bounces"),
            int("confirm_sent_at"),
            text("status_reason"),
            text("frequency"),
            text("topics"),
        ],
    ),
    table(
        "subscriber_growth",
        "hour, series",
        &[int("hour"), text("series"), int("n")],
    ),
    table(
        "posts",
        "id",
        &[
            int("id"),
            text("uid"),
            text("slug"),
            text("source"),
            text("title"),
            text("summary"),
            text("content_html"),
            text("tags"),
            int("published_at"),
            int("updated_at"),
            int("draft"),
            int("email"),
            text("external_url"),
            text("content_hash"),
            int("announce"),
            int("first_seen_at"),
            int("synced_at"),
            int("removed_at"),
            int("planned_at"),
        ],
    ),
    table(
        "sources",
        "id",
        &[
            int("id"),
            text("url"),
            text("fetch_url"),
            text("etag"),
            text("last_modified"),
            int("first_fetched_at"),
            int("last_fetch_at"),
            text("last_status"),
            text("last_error"),
            int("created_at"),
        ],
    ),
    table(
        "source_entries",
        "id",
        &[
            int("id"),
            int("source_id"),
            text("entry_key"),
            text("link"),
            int("post_id"),
            int("first_seen_at"),
        ],
    ),
    table(
        "issues",
        "id",
        &[
            int("id"),
            int("post_id"),
            text("subject"),
            text("origin"),
            int("created_at"),
            text("kind"),
            text("frequency"),
        ],
    ),
    table(
        "issue_posts",
        "issue_id, post_id",
        &[int("issue_id"), int("post_id")],
    ),
    table(
        "deliveries",
        "id",
        &[
            int("id"),
            int("issue_id"),
            int("subscriber_id"),
            text("status"),
            int("attempts"),
            int("attempt_base"),
            text("last_error"),
            text("smtp_reply"),
            int("created_at"),
            int("updated_at"),
            int("next_attempt_at"),
            int("lease_until"),
            int("sent_at"),
            text("lease_owner"),
            text("relay"),
        ],
    ),
    table(
        "reports",
        "id",
        &[
            int("id"),
            text("fingerprint"),
            int("received_at"),
            text("source"),
            text("kind"),
            text("recipient"),
            text("status"),
            int("hard"),
            text("diagnostic"),
            text("feedback_type"),
            int("delivery_id"),
            text("matched_by"),
            text("effect"),
            text("reason"),
        ],
    ),
    table(
        "delivery_events",
        "id",
        &[
            int("id"),
            int("delivery_id"),
            int("at"),
            text("kind"),
            text("outcome"),
            text("detail"),
            int("report_id"),
            text("relay"),
        ],
    ),
    table(
        "issue_counts",
        "issue_id",
        &[
            int("issue_id"),
            int("clicks"),
            bytes("clickers"),
            int("opens"),
            bytes("openers"),
            int("machine_opens"),
        ],
    ),
    table(
        "link_counts",
        "issue_id, url_key",
        &[
            int("issue_id"),
            text("url_key"),
            text("url"),
            int("clicks"),
            bytes("clickers"),
        ],
    ),
    table(
        "post_views",
        "post_id, day",
        &[int("post_id"), text("day"), int("views")],
    ),
    table(
        "feed_followers",
        "feed, service",
        &[
            text("feed"),
            text("service"),
            int("followers"),
            int("seen_at"),
        ],
    ),
];

/// Tables of the schema a backup leaves out on purpose (see [`BACKUP_TABLES`]).
pub const NOT_BACKED_UP: &[&str] = &[
    "admin_sessions",
    "delivery_counts",
    "delivery_count_deltas",
    "report_counts",
    "report_count_deltas",
    "_sqlx_migrations",
];

pub fn backup_table(name: &str) -> Option<&'static BackupTable> {
    BACKUP_TABLES.iter().find(|t| t.name == name)
}
