//! One scheduler tick: sync `posts/`, follow the upstream feed, create an issue
//! for every newly published post, deliver everything that is due.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Bounces, Context, MailboxPoll};
use crate::config::ScheduleMode;
use crate::delivery::{DeliveryReport, Run, Stop};
use crate::domain::{FetchStatus, IssueKind, IssueOrigin};
use crate::error::Error;
use crate::posts::{self, PostError};
use crate::store::{EntriesReport, SyncReport};

/// What syncing `posts/` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct PostSync {
    #[serde(flatten)]
    pub report: SyncReport,
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
    pub issue_id: i64,
    pub queued: u64,
}

/// What following the upstream feed did in one tick.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpstreamSync {
    pub url: String,
    pub status: FetchStatus,
    pub error: Option<String>,
    pub entries: Option<EntriesReport>,
}

/// What one scheduler tick did.
#[derive(Debug, Default, serde::Serialize)]
pub struct TickReport {
    pub posts: PostSync,
    /// Present when `[posts] feed` is set.
    pub upstream: Option<UpstreamSync>,
    pub issues: Vec<NewIssue>,
    pub deliveries: DeliveryReport,
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
    pub async fn run_once(&self, now: DateTime<Utc>, stop: Stop) -> Result<TickReport, Error> {
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
        tracing::debug!(
            posts_ms = synced.as_millis() as u64,
            upstream_ms = (fetched - synced).as_millis() as u64,
            issues_ms = (queued - fetched).as_millis() as u64,
            delivery_ms = (delivered - queued).as_millis() as u64,
            bounces_ms = (started.elapsed() - delivered).as_millis() as u64,
            "tick timing"
        );
        Ok(TickReport {
            posts,
            upstream,
            issues,
            deliveries,
            bounces,
        })
    }

    /// Delivers what is due at `now` (the clock runs on from there), nothing else.
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<DeliveryReport, Error> {
        self.context.deliver(Run::due_at(now)).await
    }

    /// Reads `posts/` into the database. Broken files are reported, never fatal.
    pub async fn sync_posts(&self, now: DateTime<Utc>) -> Result<PostSync, Error> {
        self.context.sync_posts(now).await
    }

    /// Creates an issue for every newly published post that should be mailed.
    pub async fn create_due_issues(&self, now: DateTime<Utc>) -> Result<Vec<NewIssue>, Error> {
        let c = &self.context;
        let posts = c.store.posts_awaiting_issue(now).await?;
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let (batch, kind) = match c.config.schedule.mode {
            ScheduleMode::Each => (
                posts
                    .iter()
                    .map(|p| (vec![p.id], p.title.clone()))
                    .collect(),
                IssueKind::Post,
            ),
            ScheduleMode::Digest => (
                vec![(
                    posts.iter().map(|p| p.id).collect(),
                    c.templates.digest_subject(&posts)?,
                )],
                IssueKind::Digest,
            ),
        };
        let made = c
            .store
            .create_issues(&batch, kind, IssueOrigin::Schedule, now)
            .await?;
        let mut created = Vec::new();
        for ((post_ids, _), made) in batch.iter().zip(made) {
            // Another process may have been quicker; then it is theirs to report.
            if !made.created {
                continue;
            }
            // An issue is named by its lead post: the post itself, or a digest's newest.
            let lead = post_ids
                .last()
                .and_then(|id| posts.iter().find(|p| p.id == *id))
                .map(|p| p.slug.to_string())
                .unwrap_or_default();
            tracing::info!(slug = %lead, %kind, posts = post_ids.len(), queued = made.queued, "new issue");
            created.push(NewIssue {
                slug: lead,
                issue_id: made.issue.id,
                queued: made.queued,
            });
        }
        Ok(created)
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
