//! Publishing and sending by hand: queue a post for every subscriber, deliver it
//! with progress, preview it, send a test copy, retry what failed.
//!
//! [`Publishing::queue`] is the one way a post is queued by hand: the command
//! line calls it and then delivers in-process; the admin API and the dashboard
//! call it and leave the delivering to the worker it wakes.

use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::issues::Issues;
use super::Context;
use crate::delivery::{
    Addressee, BodyEncoding, DeliverySummary, Observer, Outgoing, Run, Stop, Transport,
};
use crate::domain::{EmailAddress, IssueKind, Post, SubscriberStatus, Unsendable};
use crate::error::Error;
use crate::render::email::ReaderFields;
use crate::store::IssueRecord;

/// What sending a post now would do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    /// Active subscribers who do not have the post yet.
    pub new_recipients: i64,
    pub active_subscribers: i64,
}

/// A post queued by hand.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enqueued {
    pub issue_id: i64,
    /// Deliveries added now (0 when everyone has it already).
    pub queued: u64,
}

/// Who delivers what [`Publishing::queue`] queued. The scheduler's worker
/// lives above this layer, so it comes in as this trait.
pub trait Worker: Send + Sync {
    /// Asks for what is due to be delivered soon.
    fn wake(&self);
}

/// With no worker in this process, the next tick of any worker delivers.
impl<W: Worker + ?Sized> Worker for Option<Arc<W>> {
    fn wake(&self) {
        if let Some(worker) = self {
            worker.wake();
        }
    }
}

/// Nobody to wake: the caller delivers in this process, as `posthorn send` does.
pub struct InProcess;

impl Worker for InProcess {
    fn wake(&self) {}
}

crate::domain::string_enum!(
    /// The formats of `posthorn preview`.
    PreviewFormat {
        Html => "html",
        Text => "text",
        Eml => "eml",
    }
);

#[derive(Clone)]
pub struct Publishing {
    context: Arc<Context>,
}

impl Publishing {
    pub(super) fn new(context: Arc<Context>) -> Publishing {
        Publishing { context }
    }

    /// The post with this slug, after reading `posts/` (so the author may send or
    /// preview a post they just wrote, before any scheduler tick).
    pub async fn find(&self, slug: &str, now: DateTime<Utc>) -> Result<Post, Error> {
        self.context.sync_posts(now).await?;
        self.post(slug).await
    }

    /// The post with this slug, as stored.
    pub async fn post(&self, slug: &str) -> Result<Post, Error> {
        self.context.post(slug).await
    }

    /// The issue the post with this slug went out in.
    pub async fn issue_of(&self, slug: &str) -> Result<IssueRecord, Error> {
        self.context.issue_of(slug).await
    }

    /// Who would get `post` if it were sent now.
    pub async fn plan(&self, post: &Post, now: DateTime<Utc>) -> Result<Plan, Error> {
        self.check_sendable(post, now)?;
        let store = &self.context.store;
        Ok(Plan {
            new_recipients: self.context.letters().count_by_hand(post).await?,
            active_subscribers: store.count_subscribers(SubscriberStatus::Active).await?,
        })
    }

    /// Queues the post with this slug as `posthorn send SLUG --yes` does: reads
    /// `posts/`, checks the post may be mailed, queues it (see [`Publishing::enqueue`])
    /// and wakes `worker` to deliver it.
    pub async fn queue(
        &self,
        slug: &str,
        now: DateTime<Utc>,
        worker: &dyn Worker,
    ) -> Result<Enqueued, Error> {
        let post = self.find(slug, now).await?;
        let enqueued = self.enqueue(&post, now).await?;
        worker.wake();
        Ok(enqueued)
    }

    /// Queues `post` in its own issue for every every-essay reader who wants it and
    /// has not had it; digest readers get it in their next digest.
    pub async fn enqueue(&self, post: &Post, now: DateTime<Utc>) -> Result<Enqueued, Error> {
        self.check_sendable(post, now)?;
        let made = self
            .context
            .letters()
            .plan_by_hand(post, now)
            .await?
            .ok_or_else(|| Error::Internal("sending by hand made no issue".into()))?;
        Ok(Enqueued {
            issue_id: made.issue.id,
            queued: made.queued,
        })
    }

    /// Delivers one issue's due deliveries in this process, watched by `observer`.
    pub async fn deliver(
        &self,
        issue_id: i64,
        now: DateTime<Utc>,
        observer: Arc<dyn Observer>,
        stop: Stop,
    ) -> Result<DeliverySummary, Error> {
        let run = Run::due_at(now)
            .only(issue_id)
            .observed_by(observer)
            .stopped_by(stop);
        self.context.deliver(run).await
    }

    /// Queues an issue's failed deliveries again, with a fresh attempt budget.
    pub async fn retry_failed(&self, slug: &str, now: DateTime<Utc>) -> Result<u64, Error> {
        let issue = self.issue_of(slug).await?;
        self.context.store.retry_failed(issue.id, now).await
    }

    /// Sends one copy of `post` to `to`, outside the log. Returns the server's reply.
    pub async fn send_test_copy(&self, post: &Post, to: &EmailAddress) -> Result<String, Error> {
        let message = self.compose(post, to, true).await?;
        self.context
            .transport
            .send_one(&message)
            .await
            .map_err(|e| Error::Send {
                context: format!("the test copy to {to} was not sent"),
                source: e.into(),
            })
    }

    /// The rendered email of the post with this slug, for a sample subscriber.
    pub async fn preview(&self, slug: &str, format: PreviewFormat) -> Result<String, Error> {
        let post = self.post(slug).await?;
        let sample = EmailAddress::parse("subscriber@example.com").map_err(Error::Internal)?;
        if format == PreviewFormat::Eml {
            let message = self.compose(&post, &sample, false).await?;
            return Ok(message.text);
        }
        let bodies =
            Issues::new(&self.context).bodies(0, IssueKind::Post, std::slice::from_ref(&post))?;
        let unsubscribe_url = self.context.links.unsubscribe(0);
        // A working tag for issue 0: the links go where the readers' go, and count nowhere.
        let tag = self.context.links.email_tag(0);
        let preferences_url = self.context.links.preferences(0);
        let recipient = ReaderFields {
            email: sample.as_str(),
            name: "",
            unsubscribe_url: &unsubscribe_url,
            preferences_url: &preferences_url,
            tag: &tag,
        };
        Ok(match format {
            PreviewFormat::Text => bodies.text.fill(&recipient, false),
            _ => bodies.html.fill(&recipient, true),
        })
    }

    /// The email of `post` as `to` would get it, as issue 0 (see [`Issues::prepared`]).
    async fn compose(
        &self,
        post: &Post,
        to: &EmailAddress,
        test_copy: bool,
    ) -> Result<Outgoing, Error> {
        let store = &self.context.store;
        let subject = match store.issue_for_post(post.id).await? {
            Some(issue) => issue.subject,
            None => post.title.clone(),
        };
        let issues = Issues::new(&self.context);
        let bodies = issues.bodies(0, IssueKind::Post, std::slice::from_ref(post))?;
        let issue = issues.prepared(0, &subject, bodies).await?;
        let (subscriber_id, name) = match store.subscriber_by_email(to).await? {
            Some(s) => (s.id, s.name),
            None => (0, String::new()),
        };
        let to = Addressee {
            subscriber_id,
            email: to,
            name: &name,
        };
        if test_copy {
            issue.test_copy_for(&to, SystemTime::now())
        } else {
            // What a send to this reader would carry, 8bit where the server takes it.
            issue.message_for(&to, SystemTime::now(), BodyEncoding::EightBit)
        }
    }

    /// Checks that a post may be mailed by hand now.
    fn check_sendable(&self, post: &Post, now: DateTime<Utc>) -> Result<(), Error> {
        let why = match post.unsendable(now) {
            None => return Ok(()),
            Some(Unsendable::Removed) => "no longer has a file in posts/".to_string(),
            Some(Unsendable::Draft) => "is a draft; set `draft = false` first".to_string(),
            Some(Unsendable::FeedsOnly) => {
                "has `email = false`: it is for the feeds and the archive only".to_string()
            }
            Some(Unsendable::Scheduled(at)) => {
                let at = at.with_timezone(&self.context.config.site.timezone);
                format!("is scheduled for {}; it will be sent then", at.to_rfc3339())
            }
        };
        Err(Error::Conflict(format!("post `{}` {why}", post.slug)))
    }
}
