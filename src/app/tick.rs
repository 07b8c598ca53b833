//! One scheduler tick: sync `posts/`, follow the upstream feed, create an issue
//! for every newly published post, deliver everything that is due.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Bounces, Context, MailboxPoll};
use crate::delivery::{DeliverySummary, Run, Stop};
use crate::domain::{FetchStatus, IssueKind};
use crate::error::Error;
use crate::posts::{self, PostError};
use crate::store::{EntriesSummary, SyncSummary};

/// What syncing `posts/` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct PostSync {
    #[serde(flatten)]
    pub report: SyncSummary,
    #[serde(serialize_with = "errors_as_text")]
    pub errors: Vec<PostError>,
}

fn errors_as_text<S: serde::Serializer>(errors: &[PostError], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(errors.iter().map(|e| e.to_string()))
}

/// An issue created by a tick.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewIssue {
    pub slug: String,
    pub kind: IssueKind,
    pub issue_id: i64,
    pub queued: u64,
}

/// What following the upstream feed did in one tick.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpstreamSync {
    pub url: String,
    pub status: FetchStatus,
    pub error: Option<String>,
    pub entries: Option<EntriesSummary>,
}

/// What one scheduler tick did.
#[derive(Debug, Default, serde::Serialize)]
pub struct TickSummary {
    pub posts: PostSync,
    /// Present when `[posts] feed` is set.
    pub upstream: Option<UpstreamSync>,
    pub issues: Vec<NewIssue>,
    pub deliveries: DeliverySummary,
    /// Present when `[bounces] imap_url` is set.
    pub bounces: Option<MailboxPoll>,
}

/// The scheduler's step: `posthorn check`, each cron tick of `serve`, and tests.
#[derive(Clone)]
pub struct Tick {
    pub(super) context: Arc<Context>,
    /// The App's bounce intake, for the mailbox poll of each tick.
    bounces: Bounces,
}

impl Tick {
    pub(super) fn new(context: Arc<Context>, bounces: Bounces) -> Tick {
        Tick { context, bounces }
    }

    /// One tick at `now`. With `stop` set, it claims nothing more and returns once
    /// the sends in flight are recorded.
    pub async fn run_once(&self, now: DateTime<Utc>, stop: Stop) -> Result<TickSummary, Error> {
        let started = std::time::Instant::now();
        let posts = self.sync_posts(now).await?;
        let synced = started.elapsed();
        let upstream = self.sync_upstream(now).await?;
        let fetched = started.elapsed();
        let issues = self.create_due_issues(now).await?;
        let queued = started.elapsed();
        // The clock has moved while we synced: deliveries queued meanwhile (by this
        // process or another) are due by now.
        let elapsed = chrono::Duration::from_std(queued).unwrap_or_default();
        let run = Run::due_at(now + elapsed).stopped_by(stop);
        let deliveries = self.context.deliver(run).await?;
        let delivered = started.elapsed();
        let bounces = self.bounces.poll_mailbox().await?;
        // The deltas of a tick's statements, into the counts /metrics reads.
        self.context.store.fold_counts().await?;
        tracing::debug!(
            posts_ms = synced.as_millis() as u64,
            upstream_ms = (fetched - synced).as_millis() as u64,
            issues_ms = (queued - fetched).as_millis() as u64,
            delivery_ms = (delivered - queued).as_millis() as u64,
            bounces_ms = (started.elapsed() - delivered).as_millis() as u64,
            "tick timing"
        );
        Ok(TickSummary {
            posts,
            upstream,
            issues,
            deliveries,
            bounces,
        })
    }

    /// Delivers what is due at `now` (the clock runs on from there), nothing else.
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<DeliverySummary, Error> {
        self.context.deliver(Run::due_at(now)).await
    }

    /// Reads `posts/` into the database. Broken files are reported, never fatal.
    pub async fn sync_posts(&self, now: DateTime<Utc>) -> Result<PostSync, Error> {
        self.context.sync_posts(now).await
    }

    /// Plans every letter due at `now`: new posts, and digests when their time has come.
    pub async fn create_due_issues(&self, now: DateTime<Utc>) -> Result<Vec<NewIssue>, Error> {
        Ok(self
            .context
            .letters()
            .plan_due(now)
            .await?
            .into_iter()
            // Adding readers to an issue made earlier (by hand, say) is not a new issue.
            .filter(|p| p.made.created)
            .map(|p| NewIssue {
                slug: p.slug,
                kind: p.kind,
                issue_id: p.made.issue.id,
                queued: p.made.queued,
            })
            .collect())
    }
}

impl Context {
    /// Reads `posts/` into the database. Broken files are reported, never fatal.
    pub(super) async fn sync_posts(&self, now: DateTime<Utc>) -> Result<PostSync, Error> {
        let c = self;
        let loaded = posts::load_dir(&c.config, &c.links)?;
        for error in &loaded.errors {
            tracing::warn!("{error}");
        }
        let report = c
            .store
            .sync_posts(
                &loaded.posts,
                &loaded.unreadable(),
                &c.config.site_host(),
                now,
            )
            .await?;
        for conflict in &report.conflicts {
            tracing::warn!("{conflict}");
        }
        Ok(PostSync {
            report,
            errors: loaded.errors,
        })
    }
}
