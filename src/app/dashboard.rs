//! The author's dashboard: sessions signed in with the admin token, and what
//! its pages show. Every count here is read from an index (migration 0007).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Context;
use crate::domain::{constant_time_eq, hex, DeliveryStatus, IssueKind, SubscriberStatus};
use crate::error::Error;
use crate::store::{
    DayCounts, DeliveryLogRow, EventRow, LogFilter, PostRow, Source, Subscriber,
    SubscriberDelivery, COMPLAINT_RATE_LIMIT,
};

/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::hours(12);
/// A session ends this long after its sign-in, however busy.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);
/// Days of growth the overview draws.
pub const GROWTH_DAYS: usize = 90;
/// Issues the overview shows.
const OVERVIEW_ISSUES: i64 = 8;

/// A session just started: the cookie's value, and its CSRF token.
pub struct NewSession {
    pub cookie: String,
    pub csrf: String,
}

/// One issue's deliveries by status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssueCounts {
    pub issue_id: i64,
    pub slug: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub counts: BTreeMap<DeliveryStatus, i64>,
    pub total: i64,
}

impl IssueCounts {
    pub fn count(&self, status: DeliveryStatus) -> i64 {
        self.counts.get(&status).copied().unwrap_or(0)
    }

    /// Deliveries still to go: queued, sending, retrying.
    pub fn waiting(&self) -> i64 {
        self.counts
            .iter()
            .filter(|(s, _)| s.is_waiting() || **s == DeliveryStatus::Sending)
            .map(|(_, n)| n)
            .sum()
    }

    /// Deliveries the relay took: sent, and those reported later.
    pub fn accepted(&self) -> i64 {
        self.count(DeliveryStatus::Sent)
            + self.count(DeliveryStatus::Bounced)
            + self.count(DeliveryStatus::Complained)
    }
}

/// Everything the overview shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overview {
    pub subscribers: BTreeMap<SubscriberStatus, i64>,
    /// The first day of `growth`, a local midnight.
    pub growth_from: DateTime<Utc>,
    pub growth: Vec<DayCounts>,
    pub issues: Vec<IssueCounts>,
    /// Bounced and complained as shares of what the relay took, over `issues`.
    pub bounce_rate: f64,
    pub complaint_rate: f64,
    pub complaint_limit: f64,
    pub sources: Vec<Source>,
}

#[derive(Clone)]
pub struct Dashboard {
    context: Arc<Context>,
}

impl Dashboard {
    pub(super) fn new(context: Arc<Context>) -> Dashboard {
        Dashboard { context }
    }

    /// The dashboard exists only while an admin token is set.
    pub fn enabled(&self) -> bool {
        self.context.config.server.admin_token.is_some()
    }

    /// Starts a session when `token` is the admin token.
    pub async fn login(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<NewSession>, Error> {
        let Some(expected) = &self.context.config.server.admin_token else {
            return Ok(None);
        };
        if !constant_time_eq(token.trim().as_bytes(), expected.expose().as_bytes()) {
            return Ok(None);
        }
        let cookie = hex(&rand::random::<[u8; 32]>());
        let csrf = hex(&rand::random::<[u8; 16]>());
        let Some(key) = self.session_key(&cookie) else {
            return Ok(None);
        };
        self.context
            .store
            .create_session(&key.0, &csrf, now, SESSION_IDLE, SESSION_LIFETIME)
            .await?;
        Ok(Some(NewSession { cookie, csrf }))
    }

    /// The CSRF token of the live session `cookie` names, kept alive.
    pub async fn session(&self, cookie: &str, now: DateTime<Utc>) -> Result<Option<String>, Error> {
        let Some(key) = self.session_key(cookie).filter(|_| !cookie.is_empty()) else {
            return Ok(None);
        };
        self.context
            .store
            .touch_session(&key.0, now, SESSION_IDLE, SESSION_LIFETIME)
            .await
    }

    pub async fn logout(&self, cookie: &str) -> Result<(), Error> {
        match self.session_key(cookie) {
            Some(key) => self.context.store.end_session(&key.0).await,
            None => Ok(()),
        }
    }

    /// The key of the session `cookie` names, while an admin token is set.
    fn session_key(&self, cookie: &str) -> Option<SessionKey> {
        let token = self.context.config.server.admin_token.as_ref()?;
        Some(SessionKey::of(cookie, token.expose()))
    }

    pub async fn overview(&self, now: DateTime<Utc>) -> Result<Overview, Error> {
        let store = &self.context.store;
        let subscribers = store.subscriber_counts().await?.into_iter().collect();
        let growth_from = local_midnight(now, self.context.config.site.timezone)
            - Duration::days(GROWTH_DAYS as i64 - 1);
        let growth = store.growth(growth_from, GROWTH_DAYS).await?;
        let mut issues = Vec::new();
        for (issue_id, slug, title, created_at) in store.latest_issues(OVERVIEW_ISSUES).await? {
            issues.push(self.counts(issue_id, slug, title, created_at).await?);
        }
        let accepted: i64 = issues.iter().map(IssueCounts::accepted).sum();
        let share = |status| {
            let n: i64 = issues.iter().map(|i| i.count(status)).sum();
            if accepted == 0 {
                0.0
            } else {
                n as f64 * 100.0 / accepted as f64
            }
        };
        Ok(Overview {
            subscribers,
            growth_from,
            growth,
            bounce_rate: share(DeliveryStatus::Bounced),
            complaint_rate: share(DeliveryStatus::Complained),
            complaint_limit: COMPLAINT_RATE_LIMIT,
            issues,
            sources: store.sources().await?,
        })
    }

    async fn counts(
        &self,
        issue_id: i64,
        slug: String,
        title: String,
        created_at: DateTime<Utc>,
    ) -> Result<IssueCounts, Error> {
        let counts: BTreeMap<_, _> = self
            .context
            .store
            .issue_counts(issue_id)
            .await?
            .into_iter()
            .collect();
        let total = counts.values().sum();
        Ok(IssueCounts {
            issue_id,
            slug,
            title,
            created_at,
            counts,
            total,
        })
    }

    /// Every post as stored: `posts/` is read at each scheduler tick and before a
    /// send, not on every page view (that would parse every file per request).
    pub async fn posts(&self) -> Result<Vec<PostRow>, Error> {
        self.context.store.post_rows().await
    }

    /// The issue named by `key` (a post's slug, or `~ID` for a digest or a
    /// welcome), counted: a post's issue under the post's title, others under
    /// their subject.
    pub async fn issue(&self, key: &str) -> Result<IssueCounts, Error> {
        let (post, issue) = self.context.post_and_issue(key).await?;
        let title = match issue.kind {
            IssueKind::Post => post.title,
            _ => issue.subject,
        };
        self.counts(issue.id, key.to_string(), title, issue.created_at)
            .await
    }

    /// One page of the issue's log, `limit` rows after `after_id`.
    pub async fn log(
        &self,
        slug: &str,
        filter: &LogFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryLogRow>, Error> {
        let issue = self.context.issue_of(slug).await?;
        self.context
            .store
            .log_page(issue.id, filter, after_id, limit)
            .await
    }

    /// One delivery with its history.
    pub async fn delivery(&self, id: i64) -> Result<(DeliveryLogRow, Vec<EventRow>), Error> {
        let (_, row) = self
            .context
            .store
            .log_row_by_id(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no delivery {id}")))?;
        let history = self.context.store.delivery_history(id).await?;
        Ok((row, history))
    }

    pub async fn subscriber(
        &self,
        id: i64,
    ) -> Result<Option<(Subscriber, Vec<SubscriberDelivery>)>, Error> {
        let Some(subscriber) = self.context.store.subscriber_by_id(id).await? else {
            return Ok(None);
        };
        let deliveries = self.context.store.deliveries_to(id).await?;
        Ok(Some((subscriber, deliveries)))
    }
}

/// A session's key in the database: HMAC-SHA256 of the cookie under the admin
/// token. A stolen copy of the table opens nothing, and a new admin token finds
/// none of the sessions signed in with the old one.
struct SessionKey(String);

impl SessionKey {
    fn of(cookie: &str, admin_token: &str) -> SessionKey {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(admin_token.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(cookie.as_bytes());
        SessionKey(hex(&mac.finalize().into_bytes()))
    }
}

/// The start of `now`'s day in `tz`.
fn local_midnight(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let local = now.with_timezone(&tz).date_naive();
    local
        .and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}
