//! Who gets what, and when. Every issue is planned here (a post for every-essay
//! readers, one digest when a tick finds more than `max_new_per_tick` new posts,
//! each digest reader's letter at the `[schedule] digest` time, a welcome) and
//! then goes through the same delivery engine, log, bounces and guarantees.

use chrono::{DateTime, Utc};

use super::Context;
use crate::domain::{topics_of, Frequency, IssueKind, IssueOrigin, Post, Preferences};
use crate::error::Error;
use crate::store::{IssueQueued, Letter, LetterIssue, PlanPost, Planning, Readers};

/// An issue made by planning, named by its lead post (a digest's newest).
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub slug: String,
    pub kind: IssueKind,
    pub made: IssueQueued,
}

/// The planning state kept in `meta`: when the next digest is due, for which
/// `[schedule] digest`, and since when the next digest collects posts.
const DIGEST_NEXT: &str = "digest:next_at";
const DIGEST_CRON: &str = "digest:schedule";
const DIGEST_FROM: &str = "digest:from";

/// How many recent posts a welcome looks through for one the reader has not had.
const WELCOME_CANDIDATES: i64 = 20;

impl Context {
    /// Plans what is due at `now`: posts published since the last tick for
    /// every-essay readers, and, when the digest time has come, the digest of
    /// every digest reader. One transaction; two processes never plan twice.
    pub(super) async fn plan_due(&self, now: DateTime<Utc>) -> Result<Vec<Planned>, Error> {
        let started = std::time::Instant::now();
        let mut planning = self.store.planning().await?;
        let posts = planning.unplanned_posts(now).await?;
        let mut made = Vec::new();
        if !posts.is_empty() {
            // A flood (a followed blog publishing its archive at once) is one
            // batch, so one letter per reader; otherwise each post is its own.
            let batches: Vec<&[Post]> = if posts.len() > self.config.schedule.max_new_per_tick {
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

    /// At the digest time, every digest reader gets one letter with the posts
    /// planned since the last digest that they want and have not had.
    async fn plan_digests(
        &self,
        planning: &mut Planning,
        now: DateTime<Utc>,
    ) -> Result<Vec<Planned>, Error> {
        let cron = &self.config.schedule.digest;
        let schedule = cron.as_str();
        let tz = self.config.site.timezone;
        let next = planning.meta_time(DIGEST_NEXT).await?;
        let same_schedule = planning.meta(DIGEST_CRON).await?.as_deref() == Some(schedule);
        let from = planning.meta_time(DIGEST_FROM).await?;
        let due = match (next, from) {
            (Some(next), Some(from)) if same_schedule => (now >= next).then_some(from),
            // First run, or a new schedule: the next digest collects from now on.
            _ => {
                if from.is_none() {
                    // Posts planned in this very tick belong to the first digest.
                    let before = now - chrono::Duration::milliseconds(1);
                    planning.set_meta_time(DIGEST_FROM, before).await?;
                }
                None
            }
        };
        let mut made = Vec::new();
        if let Some(from) = due {
            let posts = planning.planned_between(from, Some(now)).await?;
            let letters = planning
                .letters(&self.plan_posts(&posts), self.readers(Frequency::Digest))
                .await?;
            for letter in &letters {
                made.push(
                    self.write(
                        planning,
                        letter,
                        &posts,
                        Frequency::Digest,
                        IssueOrigin::Schedule,
                        now,
                    )
                    .await?,
                );
            }
            planning.set_meta_time(DIGEST_FROM, now).await?;
            tracing::info!(
                posts = posts.len(),
                letters = letters.len(),
                "digest planned"
            );
        }
        if due.is_some() || next.is_none() || !same_schedule {
            let next = crate::config::next_time(cron, tz, now).ok_or_else(|| {
                Error::Config(format!("schedule.digest `{schedule}` never fires"))
            })?;
            planning.set_meta_time(DIGEST_NEXT, next).await?;
            planning.set_meta(DIGEST_CRON, schedule).await?;
        }
        Ok(made)
    }

    /// The author sends `post` by hand: every-essay readers who want it and have
    /// not had it get it now; digest readers get it in their next digest.
    pub(super) async fn plan_by_hand(
        &self,
        post: &Post,
        now: DateTime<Utc>,
    ) -> Result<Option<IssueQueued>, Error> {
        let mut planning = self.store.planning().await?;
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
        let mut planning = self.store.counting().await?;
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
        let mut planning = self.store.planning().await?;
        let mut made = None;
        for post in planning.newest_posts(now, WELCOME_CANDIDATES).await? {
            let one = std::slice::from_ref(&post);
            let letters = planning
                .letters(&self.plan_posts(one), Readers::One(subscriber_id))
                .await?;
            if let Some(letter) = letters.first() {
                let subject = self.templates.welcome_subject(&post)?;
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

    /// Since when the next digest collects posts (none before the first tick).
    pub(super) async fn digest_from(&self) -> Result<Option<DateTime<Utc>>, Error> {
        self.store.meta_time(DIGEST_FROM).await
    }

    /// A digest reader who switched to every essay gets at once, in one letter,
    /// what their next digest would have held: the posts planned since the last
    /// digest and those of the digest letters just skipped for them (`owed`),
    /// less any they want no more or have had.
    pub(super) async fn plan_catch_up(
        &self,
        subscriber_id: i64,
        owed: &[i64],
        now: DateTime<Utc>,
    ) -> Result<usize, Error> {
        let mut planning = self.store.planning().await?;
        let mut posts = planning.posts_by_id(owed).await?;
        if let Some(from) = planning.meta_time(DIGEST_FROM).await? {
            posts.extend(planning.planned_between(from, None).await?);
        }
        posts.sort_by_key(|p| (p.published_at, p.id));
        posts.dedup_by_key(|p| p.id);
        let letters = planning
            .letters(&self.plan_posts(&posts), Readers::One(subscriber_id))
            .await?;
        let mut caught_up = 0;
        if let Some(letter) = letters.first() {
            self.write(
                &mut planning,
                letter,
                &posts,
                Frequency::Each,
                IssueOrigin::Schedule,
                now,
            )
            .await?;
            caught_up = letter.posts.len();
        }
        planning.commit().await?;
        Ok(caught_up)
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
            default: self.config.schedule.mode,
        }
    }

    fn plan_posts(&self, posts: &[Post]) -> Vec<PlanPost> {
        posts
            .iter()
            .map(|p| PlanPost {
                id: p.id,
                topics: topics_of(&p.tags, &self.config.posts.topics),
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
            _ => (IssueKind::Digest, self.templates.digest_subject(&chosen)?),
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

/// Why a waiting delivery no longer fits a reader's new choices, if it does not.
/// `carried` says whether the next digest holds all of its posts: a letter the
/// digest would not carry (its posts were planned before the last digest, and
/// it is still on its way, retrying) goes as it is when the reader chooses the
/// digest, or the reader would never get those posts.
pub(super) fn misfit(
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
