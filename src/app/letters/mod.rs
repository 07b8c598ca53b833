//! Who gets what, and when: the [`Letters`] service. Every issue is planned here
//! (a post for every-essay readers, one digest when a tick finds more than
//! `max_new_per_tick` new posts, each digest reader's letter at the `[schedule]
//! digest` time, a welcome) and then goes through the same delivery engine,
//! log, bounces and guarantees. The digest's own clock is in `digests.rs`.

mod digests;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Context;
use crate::domain::{topics_of, Frequency, IssueKind, IssueOrigin, Post};
use crate::error::Error;
use crate::store::{IssueQueued, Letter, LetterIssue, PlanPost, Planning, Readers};

/// An issue made by planning, named by its lead post (a digest's newest).
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub slug: String,
    pub kind: IssueKind,
    pub made: IssueQueued,
}

/// How many recent posts a welcome looks through for one the reader has not had.
const WELCOME_CANDIDATES: i64 = 20;

/// Letter planning: the services that plan (the tick, sending by hand, a
/// confirmation, a reader's new choices) ask it, over the shared context.
pub(super) struct Letters {
    context: Arc<Context>,
}

impl Letters {
    pub(super) fn new(context: Arc<Context>) -> Letters {
        Letters { context }
    }

    /// Plans what is due at `now`: posts published since the last tick for
    /// every-essay readers, and, when the digest time has come, the digest of
    /// every digest reader. One transaction; two processes never plan twice.
    pub(super) async fn plan_due(&self, now: DateTime<Utc>) -> Result<Vec<Planned>, Error> {
        let started = std::time::Instant::now();
        let mut planning = self.context.store.planning().await?;
        let posts = planning.unplanned_posts(now).await?;
        let mut made = Vec::new();
        if !posts.is_empty() {
            // A flood (a followed blog publishing its archive at once) is one
            // batch, so one letter per reader; otherwise each post is its own.
            let batches: Vec<&[Post]> =
                if posts.len() > self.context.config.schedule.max_new_per_tick {
                    vec![&posts]
                } else {
                    posts.chunks(1).collect()
                };
            for batch in batches {
                made.extend(
                    self.plan_for_each(&mut planning, batch, IssueOrigin::Schedule, now)
                        .await?,
                );
            }
            let ids: Vec<i64> = posts.iter().map(|p| p.id).collect();
            planning.mark_planned(&ids, now).await?;
        }
        let posts_planned = started.elapsed();
        made.extend(self.plan_digests(&mut planning, now).await?);
        let digests_planned = started.elapsed();
        planning.commit().await?;
        tracing::debug!(
            posts_ms = posts_planned.as_millis() as u64,
            digests_ms = (digests_planned - posts_planned).as_millis() as u64,
            commit_ms = (started.elapsed() - digests_planned).as_millis() as u64,
            "planning timing"
        );
        Ok(made)
    }

    /// The author sends `post` by hand: every-essay readers who want it and have
    /// not had it get it now; digest readers get it in their next digest.
    pub(super) async fn plan_by_hand(
        &self,
        post: &Post,
        now: DateTime<Utc>,
    ) -> Result<Option<IssueQueued>, Error> {
        let mut planning = self.context.store.planning().await?;
        let made = self
            .plan_for_each(
                &mut planning,
                std::slice::from_ref(post),
                IssueOrigin::Manual,
                now,
            )
            .await?
            .pop()
            .map(|p| p.made);
        planning.mark_planned(&[post.id], now).await?;
        planning.commit().await?;
        Ok(made)
    }

    /// How many every-essay readers would get `post` if it were sent by hand now.
    pub(super) async fn count_by_hand(&self, post: &Post) -> Result<i64, Error> {
        let mut planning = self.context.store.counting().await?;
        let letters = planning
            .letters(
                &self.plan_posts(std::slice::from_ref(post)),
                self.readers(Frequency::Each),
            )
            .await?;
        Ok(letters.iter().map(|l| l.count as i64).sum())
    }

    /// A reader who just confirmed gets a welcome with the newest essay they have
    /// not had. Nothing when there is no essay yet.
    pub(super) async fn plan_welcome(
        &self,
        subscriber_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<IssueQueued>, Error> {
        let mut planning = self.context.store.planning().await?;
        let mut made = None;
        for post in planning.newest_posts(now, WELCOME_CANDIDATES).await? {
            let one = std::slice::from_ref(&post);
            let letters = planning
                .letters(&self.plan_posts(one), Readers::One(subscriber_id))
                .await?;
            if let Some(letter) = letters.first() {
                let subject = self.context.templates.welcome_subject(&post)?;
                let issue = LetterIssue {
                    kind: IssueKind::Welcome,
                    origin: IssueOrigin::Schedule,
                    frequency: None,
                    subject: &subject,
                };
                made = Some(planning.write(letter, &issue, now).await?);
                break;
            }
        }
        planning.commit().await?;
        if made.is_none() {
            tracing::info!(
                subscriber = subscriber_id,
                "no essay to welcome a new reader with yet"
            );
        }
        Ok(made)
    }

    /// Plans `posts` for every-essay readers: one letter per distinct set of
    /// posts. A single post always gets its own issue, even when nobody is to get
    /// it now: the author's `status`, `send` and dashboard know the post by it.
    async fn plan_for_each(
        &self,
        planning: &mut Planning,
        posts: &[Post],
        origin: IssueOrigin,
        now: DateTime<Utc>,
    ) -> Result<Vec<Planned>, Error> {
        let mut letters = planning
            .letters(&self.plan_posts(posts), self.readers(Frequency::Each))
            .await?;
        if let ([post], true) = (posts, letters.is_empty()) {
            letters.push(Letter::empty(post.id));
        }
        let mut made = Vec::with_capacity(letters.len());
        for letter in &letters {
            made.push(
                self.write(planning, letter, posts, Frequency::Each, origin, now)
                    .await?,
            );
        }
        Ok(made)
    }

    fn readers(&self, frequency: Frequency) -> Readers {
        Readers::Frequency {
            frequency,
            default: self.context.config.schedule.mode,
        }
    }

    fn plan_posts(&self, posts: &[Post]) -> Vec<PlanPost> {
        posts
            .iter()
            .map(|p| PlanPost {
                id: p.id,
                topics: topics_of(&p.tags, &self.context.config.posts.topics),
            })
            .collect()
    }

    /// Writes a letter: a single post for every-essay readers goes into the
    /// post's own issue; anything else is a digest.
    async fn write(
        &self,
        planning: &mut Planning,
        letter: &Letter,
        posts: &[Post],
        frequency: Frequency,
        origin: IssueOrigin,
        now: DateTime<Utc>,
    ) -> Result<Planned, Error> {
        let chosen: Vec<Post> = posts
            .iter()
            .filter(|p| letter.posts.contains(&p.id))
            .cloned()
            .collect();
        let lead = chosen
            .last()
            .ok_or_else(|| Error::Internal("a letter without posts".into()))?;
        let (kind, subject) = match (frequency, chosen.as_slice()) {
            (Frequency::Each, [post]) => (IssueKind::Post, post.title.clone()),
            _ => (
                IssueKind::Digest,
                self.context.templates.digest_subject(&chosen)?,
            ),
        };
        let issue = LetterIssue {
            kind,
            origin,
            frequency: Some(frequency),
            subject: &subject,
        };
        let made = planning.write(letter, &issue, now).await?;
        tracing::info!(slug = %lead.slug, %kind, %frequency, posts = chosen.len(), queued = made.queued, "issue planned");
        Ok(Planned {
            slug: lead.slug.to_string(),
            kind,
            made,
        })
    }
}
