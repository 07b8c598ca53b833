//! The digest's clock: when the next digest is due and since when it collects
//! posts, kept in `meta`; and the catch-up of a reader who leaves the digest.

use chrono::{DateTime, Utc};

use super::{Letters, Planned};
use crate::domain::{Frequency, IssueOrigin};
use crate::error::Error;
use crate::store::{Planning, Readers};

/// The planning state kept in `meta`: when the next digest is due, for which
/// `[schedule] digest`, and since when the next digest collects posts.
const DIGEST_NEXT: &str = "digest:next_at";
const DIGEST_CRON: &str = "digest:schedule";
const DIGEST_FROM: &str = "digest:from";

impl Letters {
    /// At the digest time, every digest reader gets one letter with the posts
    /// planned since the last digest that they want and have not had.
    pub(super) async fn plan_digests(
        &self,
        planning: &mut Planning,
        now: DateTime<Utc>,
    ) -> Result<Vec<Planned>, Error> {
        let cron = &self.context.config.schedule.digest;
        let schedule = cron.as_str();
        let tz = self.context.config.site.timezone;
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

    /// Since when the next digest collects posts (none before the first tick).
    pub(in crate::app) async fn digest_from(&self) -> Result<Option<DateTime<Utc>>, Error> {
        self.context.store.meta_time(DIGEST_FROM).await
    }

    /// A digest reader who switched to every essay gets at once, in one letter,
    /// what their next digest would have held: the posts planned since the last
    /// digest and those of the digest letters just skipped for them (`owed`),
    /// less any they want no more or have had.
    pub(in crate::app) async fn plan_catch_up(
        &self,
        subscriber_id: i64,
        owed: &[i64],
        now: DateTime<Utc>,
    ) -> Result<usize, Error> {
        let mut planning = self.context.store.planning().await?;
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
}
