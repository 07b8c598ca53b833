//! Readers' choices: the page a preferences link opens (how often, which
//! topics) and saving it, which skips what no longer fits what waits for them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::Subscriptions;
use crate::domain::{topics_of, Frequency, IssueKind, Preferences, SubscriberStatus};
use crate::error::Error;
use crate::store::Subscriber;
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

impl Subscriptions {
    /// What a reader's own page shows, for a preferences link.
    pub async fn preferences(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<PreferencesPage, Error> {
        let id = self.verify(token, Purpose::Preferences, now)?;
        let Some(subscriber) = self.context.store.subscriber_by_id(id).await? else {
            return Err(TokenError::Invalid.into());
        };
        Ok(self.page_for(&subscriber, token, now))
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
    ) -> Result<SavedChoices, Error> {
        let id = self.verify(token, Purpose::Preferences, now)?;
        let c = &self.context;
        let default = c.config.schedule.mode;
        let offered = &c.config.posts.topics;
        // In the site's order, once each; none left is every post.
        prefs.topics = prefs
            .topics
            .map(|chosen| topics_of(offered, &chosen))
            .filter(|t| !t.is_empty());
        let Some(before) = c.store.subscriber_by_id(id).await? else {
            return Err(TokenError::Invalid.into());
        };
        if !c.store.set_preferences(id, &prefs, now).await? {
            return Err(TokenError::Invalid.into());
        }
        let letters = c.letters();
        let digest_from = letters.digest_from().await?;
        let mut misfits: BTreeMap<&str, Vec<i64>> = Default::default();
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
            letters.plan_catch_up(id, &owed, now).await?
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
        Ok(SavedChoices {
            page: self.page_for(&subscriber, token, now),
            skipped,
            caught_up,
        })
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
}

/// Why a waiting delivery no longer fits a reader's new choices, if it does not.
/// `carried` says whether the next digest holds all of its posts: a letter the
/// digest would not carry (its posts were planned before the last digest, and
/// it is still on its way, retrying) goes as it is when the reader chooses the
/// digest, or the reader would never get those posts.
fn misfit(
    kind: IssueKind,
    issue_frequency: Option<Frequency>,
    post_topics: &[Vec<String>],
    prefs: &Preferences,
    default: Frequency,
    carried: bool,
) -> Option<&'static str> {
    if kind == IssueKind::Welcome {
        return None;
    }
    let frequency = prefs.frequency_or(default);
    if issue_frequency.is_some_and(|f| f != frequency) {
        match frequency {
            Frequency::Digest if !carried => {}
            Frequency::Digest => return Some("preferences: the reader chose the digest"),
            Frequency::Each => return Some("preferences: the reader chose every essay"),
        }
    }
    if post_topics.iter().any(|t| !prefs.wants(t)) {
        return Some("preferences: not among the reader's topics");
    }
    None
}
