//! Issues as the delivery engine needs them: rendered once per run, with every
//! field that is the same for all recipients prepared.

use std::sync::Arc;

use super::Context;
use crate::config::Config;
use crate::delivery::dkim::Signer;
use crate::delivery::{IssueSource, PreparedIssue};
use crate::domain::{IssueKind, Post};
use crate::error::Error;
use crate::links::Links;
use crate::render::email::{Counting, EmailBodies};
use crate::render::Templates;
use crate::store::Store;

pub(super) struct Issues {
    store: Store,
    config: Arc<Config>,
    templates: Arc<Templates>,
    links: Links,
    signer: Option<Arc<Signer>>,
}

impl Issues {
    pub(super) fn new(context: &Context) -> Issues {
        Issues {
            store: context.store.clone(),
            config: context.config.clone(),
            templates: context.templates.clone(),
            links: context.links.clone(),
            signer: context.signer.clone(),
        }
    }

    /// `bodies` addressed as issue `issue_id` (0 for previews and test copies,
    /// so their Message-IDs never collide with a real delivery's).
    pub(super) async fn prepared(
        &self,
        issue_id: i64,
        subject: &str,
        bodies: EmailBodies,
    ) -> Result<PreparedIssue, Error> {
        Ok(PreparedIssue::new(
            &self.config,
            &self.links,
            issue_id,
            subject,
            bodies,
            self.signer.clone(),
        ))
    }

    /// The bodies of issue `issue_id` (0 for previews and test copies: their
    /// links go through `/c/` as the readers' do, and count for no issue).
    pub(super) fn bodies(
        &self,
        issue_id: i64,
        kind: IssueKind,
        posts: &[Post],
    ) -> Result<EmailBodies, Error> {
        let analytics = &self.config.analytics;
        let counting = Some(Counting {
            links: &self.links,
            issue_id,
            clicks: analytics.clicks,
            opens: analytics.opens,
        });
        match (kind, posts) {
            (_, []) => Err(Error::Internal("an issue without posts".into())),
            (IssueKind::Digest, posts) => self.templates.digest(posts, counting),
            (IssueKind::Post, [post, ..]) => self.templates.issue(post, counting),
            (IssueKind::Welcome, [post, ..]) => self.templates.welcome(post),
        }
    }
}

impl IssueSource for Issues {
    async fn prepare(&self, issue_id: i64) -> Result<PreparedIssue, Error> {
        let issue = self
            .store
            .issue_by_id(issue_id)
            .await?
            .ok_or_else(|| Error::Internal(format!("issue {issue_id} does not exist")))?;
        let mut posts = Vec::new();
        for post_id in self.store.issue_post_ids(issue.id).await? {
            if let Some(post) = self.store.post_by_id(post_id).await? {
                posts.push(post);
            }
        }
        let bodies = self.bodies(issue.id, issue.kind, &posts)?;
        self.prepared(issue.id, &issue.subject, bodies).await
    }
}
