//! Subscriptions: the double opt-in of the web form, confirming, leaving, and the
//! author's own hand on the list (`posthorn subscribers add|remove|import`).

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::task::TaskTracker;

use super::letters::misfit;
use super::Context;
use crate::delivery::message::transactional;
use crate::delivery::{FileTransport, Transport};
use crate::domain::{topics_of, EmailAddress, Frequency, Preferences, SubscriberStatus};
use crate::error::Error;
use crate::store::{AddOutcome, Forgotten, NewSubscriber, Subscriber};
use crate::tokens::{Purpose, TokenError};

/// What a reader's own page shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreferencesPage {
    pub email: String,
    pub active: bool,
    pub frequency: Frequency,
    /// When the next digest goes out, in the site's time zone.
    pub next_digest: Option<String>,
    pub all_topics: bool,
    pub topics: Vec<TopicChoice>,
    /// Where the form posts.
    pub action: String,
    pub unsubscribe_action: String,
}

/// What saving a reader's choices did.
#[derive(Debug, Clone)]
pub struct SavedChoices {
    pub page: PreferencesPage,
    /// Waiting deliveries that no longer fit, now `skipped`.
    pub skipped: u64,
    /// Posts that were waiting for the reader's digest and are now on their
    /// way in one letter (a switch from the digest to every essay).
    pub caught_up: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TopicChoice {
    pub name: String,
    pub chosen: bool,
}

/// What adding one address by hand did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    AlreadyActive,
    /// It was pending or bounced; the author's word makes it active.
    Reactivated,
}

#[derive(Clone)]
pub struct Subscriptions {
    context: Arc<Context>,
    /// Subscription requests handed off by [`Subscriptions::subscribe`].
    requests: TaskTracker,
}

impl Subscriptions {
    pub(super) fn new(context: Arc<Context>) -> Subscriptions {
        Subscriptions {
            context,
            requests: TaskTracker::new(),
        }
    }

    /// A subscription request from the web form: double opt-in. It returns at
    /// once and the work (recording the address, mailing the confirmation)
    /// goes on in the background, so the caller answers the same way at the
    /// same speed whatever the address's state: nobody can probe who
    /// subscribes. A failure is logged; a confirmation that could not be sent
    /// gives its claim back, so the reader can ask again.
    pub fn subscribe(&self, email: EmailAddress, name: String, now: DateTime<Utc>) {
        let this = self.clone();
        self.requests.spawn(async move {
            if let Err(e) = this.request_confirmation(&email, &name, now).await {
                tracing::warn!(error = %crate::error::chain(&e), "a subscription request failed");
            }
        });
    }

    /// Waits for the subscription requests handed off so far (a server
    /// stopping; tests).
    pub async fn settled(&self) {
        self.requests.close();
        self.requests.wait().await;
        self.requests.reopen();
    }

    async fn request_confirmation(
        &self,
        email: &EmailAddress,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let store = &self.context.store;
        let outcome = store
            .add_subscribers(
                &[(email.clone(), name.to_string())],
                SubscriberStatus::Pending,
                now,
            )
            .await?;
        let id = match outcome.first() {
            Some(AddOutcome::Added(id))
            | Some(AddOutcome::Exists(id, SubscriberStatus::Pending)) => *id,
            Some(AddOutcome::Exists(
                id,
                SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced,
            )) => {
                store.make_pending(*id, now).await?;
                *id
            }
            // Already active: nothing to do, and nothing to tell a stranger. (A
            // forgotten row has no address, so no address finds it.)
            Some(AddOutcome::Exists(_, SubscriberStatus::Active | SubscriberStatus::Forgotten))
            | None => return Ok(()),
        };
        // At most one confirmation email per address every ten minutes.
        if !store
            .claim_confirmation(id, now, chrono::Duration::minutes(10))
            .await?
        {
            return Ok(());
        }
        let result = self.send_confirmation(id, email, now).await;
        if result.is_err() {
            store.release_confirmation(id).await?;
        }
        result
    }

    async fn send_confirmation(
        &self,
        id: i64,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let c = &self.context;
        let confirm_url = c.links.confirm(id, now + chrono::Duration::days(7));
        let body = c.templates.confirmation(&confirm_url)?;
        let message = transactional(
            &c.config,
            c.signer.as_deref(),
            email,
            &body.subject,
            body.text,
            body.html,
        )?;
        let reply = c
            .transport
            .send_one(&message)
            .await
            .map_err(|e| Error::Send {
                context: format!("the confirmation to {email} was not sent"),
                source: e.into(),
            })?;
        tracing::info!(subscriber = id, reply, "confirmation sent");
        Ok(())
    }

    /// `GET /confirm/{token}`.
    pub async fn confirm(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), TokenError>, Error> {
        let id = match self.verify(token, Purpose::Confirm, now) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match self.context.store.confirm(id, now).await? {
            Some((SubscriberStatus::Active, confirmed_now)) => {
                // A welcome once per confirmation: a second click confirms nothing.
                if confirmed_now {
                    self.context.plan_welcome(id, now).await?;
                }
                Ok(())
            }
            // Unsubscribed or bounced since the link was sent: the old link is void.
            _ => Err(TokenError::Invalid),
        })
    }

    /// Where the one button of `GET /unsubscribe/{token}` posts to. Checking the
    /// token changes nothing, so a link scanner unsubscribes no one.
    pub fn unsubscribe_action(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<String, TokenError> {
        self.verify(token, Purpose::Unsubscribe, now)?;
        Ok(self.context.links.with_token("unsubscribe", token))
    }

    /// `POST /unsubscribe/{token}` (and `List-Unsubscribe-Post`). Idempotent.
    pub async fn unsubscribe_by_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), TokenError>, Error> {
        let id = match self.verify(token, Purpose::Unsubscribe, now) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        self.context.store.unsubscribe(id, now).await?;
        Ok(Ok(()))
    }

    fn verify(&self, token: &str, purpose: Purpose, now: DateTime<Utc>) -> Result<i64, TokenError> {
        self.context.links.tokens().verify(token, purpose, now)
    }

    /// Adds an address as active: the author vouches for it.
    pub async fn add(
        &self,
        email: &EmailAddress,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Added, Error> {
        let store = &self.context.store;
        let outcome = store
            .add_subscribers(
                &[(email.clone(), name.to_string())],
                SubscriberStatus::Active,
                now,
            )
            .await?;
        match outcome.first() {
            Some(AddOutcome::Added(_)) => Ok(Added::New),
            Some(AddOutcome::Exists(_, SubscriberStatus::Active)) => Ok(Added::AlreadyActive),
            Some(AddOutcome::Exists(id, SubscriberStatus::Pending | SubscriberStatus::Bounced)) => {
                store.activate(*id, now).await?;
                Ok(Added::Reactivated)
            }
            Some(AddOutcome::Exists(
                _,
                SubscriberStatus::Unsubscribed | SubscriberStatus::Forgotten,
            ))
            | None => Err(Error::Conflict(format!(
                "{email} unsubscribed; posthorn does not re-add people who left. \
                 They can subscribe again on the site's /subscribe page"
            ))),
        }
    }

    /// Adds many addresses as active in one transaction; returns how many were new
    /// and how many were there already (those are left unchanged).
    pub async fn import(
        &self,
        rows: &[(EmailAddress, String)],
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), Error> {
        let rows: Vec<NewSubscriber> = rows
            .iter()
            .map(|(email, name)| NewSubscriber {
                email: email.clone(),
                name: name.clone(),
                preferences: Preferences::default(),
            })
            .collect();
        self.import_rows(&rows, now).await
    }

    async fn import_rows(
        &self,
        rows: &[NewSubscriber],
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), Error> {
        let added = self
            .context
            .store
            .insert_subscribers(rows, SubscriberStatus::Active, now)
            .await?;
        Ok((added, rows.len() as u64 - added))
    }

    /// Unsubscribes an address at once; its waiting deliveries are skipped.
    pub async fn remove(&self, email: &EmailAddress, now: DateTime<Utc>) -> Result<(), Error> {
        let subscriber = self
            .subscriber(email)
            .await?
            .ok_or_else(|| Error::Invalid(format!("{email} is not a subscriber")))?;
        self.unsubscribe_id(subscriber.id, now).await
    }

    /// Unsubscribes by id (the dashboard's button).
    pub async fn unsubscribe_id(&self, id: i64, now: DateTime<Utc>) -> Result<(), Error> {
        self.context.store.unsubscribe(id, now).await?;
        Ok(())
    }

    /// Erases a person (see [`crate::store::Store::forget`]).
    pub async fn forget(
        &self,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<Forgotten, Error> {
        let not_there = || Error::Invalid(format!("{email} is not a subscriber"));
        let store = &self.context.store;
        store
            .subscriber_by_email(email)
            .await?
            .ok_or_else(not_there)?;
        // The outbox first (whatever the transport is now: a site that began on
        // files keeps them), so that if either step fails, running `forget`
        // again finishes the job.
        let files = FileTransport::new(&self.context.config)
            .remove_addressed_to(email)
            .await?;
        let mut forgotten = store.forget(email, now).await?.ok_or_else(not_there)?;
        forgotten.outbox_files_removed = files;
        tracing::info!(
            deliveries_kept = forgotten.deliveries_kept,
            outbox_files_removed = forgotten.outbox_files_removed,
            "a person was forgotten"
        );
        Ok(forgotten)
    }

    /// [`Subscriptions::forget`] by id (the dashboard's button).
    pub async fn forget_id(&self, id: i64, now: DateTime<Utc>) -> Result<Forgotten, Error> {
        let subscriber = self
            .context
            .store
            .subscriber_by_id(id)
            .await?
            .ok_or_else(|| Error::Invalid(format!("no subscriber {id}")))?;
        self.forget(&subscriber.email, now).await
    }

    /// What a reader's own page shows, for a preferences link.
    pub async fn preferences(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<PreferencesPage, TokenError>, Error> {
        let id = match self.verify(token, Purpose::Preferences, now) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        let Some(subscriber) = self.context.store.subscriber_by_id(id).await? else {
            return Ok(Err(TokenError::Invalid));
        };
        Ok(Ok(self.page_for(&subscriber, token, now)))
    }

    /// Saves what a reader chose on their page. Deliveries queued for them that no
    /// longer fit become `skipped`, with the reason. Topics the site does not
    /// offer are dropped. A reader who leaves the digest for every essay gets
    /// what their digest would have held at once, so a switch loses no post.
    pub async fn save_preferences(
        &self,
        token: &str,
        mut prefs: Preferences,
        now: DateTime<Utc>,
    ) -> Result<Result<SavedChoices, TokenError>, Error> {
        let id = match self.verify(token, Purpose::Preferences, now) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        let c = &self.context;
        let default = c.config.schedule.mode;
        let offered = &c.config.posts.topics;
        // In the site's order, once each; none left is every post.
        prefs.topics = prefs
            .topics
            .map(|chosen| topics_of(offered, &chosen))
            .filter(|t| !t.is_empty());
        let Some(before) = c.store.subscriber_by_id(id).await? else {
            return Ok(Err(TokenError::Invalid));
        };
        if !c.store.set_preferences(id, &prefs, now).await? {
            return Ok(Err(TokenError::Invalid));
        }
        let digest_from = c.digest_from().await?;
        let mut misfits: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
        let mut owed = Vec::new();
        for waiting in c.store.waiting_deliveries(id).await? {
            let topics: Vec<Vec<String>> = waiting
                .post_tags
                .iter()
                .map(|tags| topics_of(tags, offered))
                .collect();
            let carried = waiting
                .first_planned
                .zip(digest_from)
                .is_some_and(|(planned, from)| planned > from);
            let why = misfit(
                waiting.kind,
                waiting.frequency,
                &topics,
                &prefs,
                default,
                carried,
            );
            if let Some(why) = why {
                misfits.entry(why).or_default().push(waiting.id);
                owed.extend(&waiting.posts);
            }
        }
        let mut skipped = 0;
        for (why, ids) in &misfits {
            skipped += c.store.skip_deliveries(ids, why, now).await?;
        }
        let switched_to_each = before.preferences.frequency_or(default) == Frequency::Digest
            && prefs.frequency_or(default) == Frequency::Each;
        let caught_up = if switched_to_each && before.status == SubscriberStatus::Active {
            c.plan_catch_up(id, &owed, now).await?
        } else {
            0
        };
        let subscriber = Subscriber {
            preferences: prefs,
            ..before
        };
        tracing::info!(
            subscriber = id,
            skipped,
            caught_up,
            "a reader saved their choices"
        );
        Ok(Ok(SavedChoices {
            page: self.page_for(&subscriber, token, now),
            skipped,
            caught_up,
        }))
    }

    fn page_for(&self, s: &Subscriber, token: &str, now: DateTime<Utc>) -> PreferencesPage {
        let c = &self.context;
        let schedule = &c.config.schedule;
        let tz = c.config.site.timezone;
        let chosen = s.preferences.topics.as_deref();
        PreferencesPage {
            email: s.email.to_string(),
            active: s.status == SubscriberStatus::Active,
            frequency: s.preferences.frequency_or(schedule.mode),
            next_digest: crate::config::next_time(&schedule.digest, tz, now)
                .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()),
            all_topics: chosen.is_none(),
            topics: c
                .config
                .posts
                .topics
                .iter()
                .map(|t| TopicChoice {
                    name: t.clone(),
                    chosen: chosen.is_some_and(|c| c.contains(t)),
                })
                .collect(),
            action: c.links.with_token("preferences", token),
            unsubscribe_action: c.links.unsubscribe(s.id),
        }
    }

    pub async fn subscriber(&self, email: &EmailAddress) -> Result<Option<Subscriber>, Error> {
        self.context.store.subscriber_by_email(email).await
    }
}

/// Rows per transaction of an import: big enough that commits are rare, small
/// enough that memory stays flat.
const IMPORT_BATCH: usize = 10_000;

/// Several topics in one CSV cell.
const TOPIC_SEPARATOR: &str = ";";

/// A value as a CSV cell a spreadsheet will show as text: one that starts like
/// a formula (`=`, `+`, `-`, `@`, a tab or a carriage return; the form's
/// `=HYPERLINK(…)`) gets a `'` in front. So does one that starts with `'`
/// already, so that [`from_cell`] takes exactly one off again: an export
/// imported gives back the same addresses and names.
fn to_cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// An imported cell's value: a leading `'` (a spreadsheet's mark for text,
/// and [`to_cell`]'s) comes off.
fn from_cell(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// An import's `frequency` and `topics` cells: empty is the site's default.
fn read_choices(frequency: &str, topics: &str, offered: &[String]) -> Result<Preferences, String> {
    let frequency = match frequency.trim() {
        "" => None,
        f => Some(
            f.parse::<Frequency>()
                .map_err(|_| format!("frequency `{f}`: use `each` or `digest`"))?,
        ),
    };
    let topics: Vec<String> = topics
        .split(TOPIC_SEPARATOR)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(unknown) = topics.iter().find(|t| !offered.contains(t)) {
        return Err(format!(
            "topic `{unknown}` is not in posts.topics ({})",
            offered.join(", ")
        ));
    }
    Ok(Preferences {
        frequency,
        topics: (!topics.is_empty()).then_some(topics),
    })
}

/// A row of an imported CSV that was not taken, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    /// As a spreadsheet numbers it: the header is row 1.
    pub row: usize,
    pub value: String,
    pub reason: String,
}

/// What importing a CSV did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    pub added: u64,
    pub already_present: u64,
    pub rejected: Vec<Rejected>,
}

impl Subscriptions {
    /// Imports a CSV with an `email` column (and optionally `name`) as active
    /// subscribers, 1,000 rows a transaction. Bad rows are reported, not fatal.
    pub async fn import_csv(
        &self,
        input: impl std::io::Read,
        now: DateTime<Utc>,
    ) -> Result<ImportReport, Error> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers = reader
            .headers()
            .map_err(|e| Error::Invalid(format!("the header row: {e}")))?
            .clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
        };
        let email_col = column("email")
            .ok_or_else(|| Error::Invalid("no `email` column in the header row".into()))?;
        let name_col = column("name");
        let frequency_col = column("frequency");
        let topics_col = column("topics");
        let offered = &self.context.config.posts.topics;
        let mut report = ImportReport::default();
        let hasher = std::collections::hash_map::RandomState::new();
        // Keys by a 64-bit hash: a million rows cost megabytes, not the addresses.
        let mut seen: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        let mut batch: Vec<NewSubscriber> = Vec::new();
        // Row 1 is the header, so the first record is row 2.
        for (i, record) in reader.records().enumerate() {
            let row = i + 2;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    report.rejected.push(Rejected {
                        row,
                        value: String::new(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let raw = from_cell(record.get(email_col).unwrap_or("")).to_string();
            let email = match EmailAddress::parse(&raw) {
                Ok(e) => e,
                Err(reason) => {
                    report.rejected.push(Rejected {
                        row,
                        value: raw,
                        reason: format!("invalid address: {reason}"),
                    });
                    continue;
                }
            };
            let field =
                |col: Option<usize>| from_cell(col.and_then(|c| record.get(c)).unwrap_or(""));
            let preferences = match read_choices(field(frequency_col), field(topics_col), offered) {
                Ok(p) => p,
                Err(reason) => {
                    report.rejected.push(Rejected {
                        row,
                        value: raw,
                        reason,
                    });
                    continue;
                }
            };
            let hash = {
                use std::hash::{BuildHasher, Hasher};
                let mut h = hasher.build_hasher();
                h.write(email.key().as_bytes());
                h.finish()
            };
            if let Some(first) = seen.get(&hash) {
                report.rejected.push(Rejected {
                    row,
                    value: raw,
                    reason: format!("duplicate of row {first}"),
                });
                continue;
            }
            seen.insert(hash, row);
            let name = crate::domain::one_line(field(name_col));
            batch.push(NewSubscriber {
                email,
                name,
                preferences,
            });
            if batch.len() == IMPORT_BATCH {
                let (a, e) = self.import_rows(&batch, now).await?;
                batch.clear();
                report.added += a;
                report.already_present += e;
            }
        }
        let (a, e) = self.import_rows(&batch, now).await?;
        report.added += a;
        report.already_present += e;
        Ok(report)
    }

    /// Writes every subscriber as CSV (`email,name,status,created_at,frequency,topics`;
    /// an empty frequency follows the site, empty topics are every post, several
    /// topics are separated by `;`), 1,000 at a time: the one export, for the
    /// dashboard and the command line. No cell reads as a formula ([`to_cell`]).
    pub async fn export_csv(&self, output: impl std::io::Write) -> Result<(), Error> {
        let mut writer = csv::Writer::from_writer(output);
        let csv_err = |e: csv::Error| Error::Invalid(format!("writing CSV: {e}"));
        writer
            .write_record([
                "email",
                "name",
                "status",
                "created_at",
                "frequency",
                "topics",
            ])
            .map_err(csv_err)?;
        let mut after = 0;
        loop {
            let page = self
                .context
                .store
                .subscribers_page(None, after, 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for s in &page {
                let row = [
                    s.email.as_str(),
                    &s.name,
                    s.status.as_str(),
                    &s.created_at.to_rfc3339(),
                    s.preferences.frequency.map(|f| f.as_str()).unwrap_or(""),
                    &s.preferences
                        .topics
                        .as_deref()
                        .unwrap_or_default()
                        .join(TOPIC_SEPARATOR),
                ];
                writer
                    .write_record(row.map(to_cell).iter().map(|c| c.as_bytes()))
                    .map_err(csv_err)?;
            }
        }
        writer.flush().map_err(|e| Error::io("CSV output", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_like_formulas_are_text_and_come_back_unchanged() {
        for value in [
            "=HYPERLINK(\"https://evil.example\",\"click\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'=already",
            "'",
        ] {
            let cell = to_cell(value);
            assert!(cell.starts_with('\''), "{value:?} -> {cell:?}");
            assert_eq!(from_cell(&cell), value);
        }
        for value in ["reader@example.com", "김독자", "", "a=b", "1-2"] {
            assert_eq!(to_cell(value), value);
            assert_eq!(from_cell(value), value);
        }
    }
}
