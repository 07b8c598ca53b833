//! The application: configuration, store, templates and keys, opened once and
//! shared by the commands, the scheduler and the web server.

use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crate::config::{Config, ScheduleMode};
use crate::delivery::dkim::Signer;
use crate::delivery::message::{transactional, Addressee, Outgoing, PreparedIssue};
use crate::delivery::{self, DeliverOptions, DeliveryReport};
use crate::domain::{EmailAddress, SubscriberStatus};
use crate::error::Error;
use crate::posts::upstream::{self, Fetch};
use crate::posts::{self, PostError};
use crate::render::email::render_issue;
use crate::render::Templates;
use crate::store::{AddOutcome, EntriesReport, IssueRecord, PostRecord, Store, SyncReport};
use crate::tokens::{Purpose, TokenError, Tokens};

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub templates: Arc<Templates>,
    pub tokens: Tokens,
    /// Set when `[dkim]` is configured: every outgoing message is signed.
    pub signer: Option<Arc<Signer>>,
}

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
    /// `200 OK`, `304 Not Modified`, or `error`.
    pub status: String,
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
}

/// The formats of `posthorn preview`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PreviewFormat {
    Html,
    Text,
    Eml,
}

impl App {
    pub async fn open(config: Config) -> Result<App, Error> {
        // A bad key is a start-up error, not a surprise at the first send.
        let signer = match &config.dkim {
            Some(dkim) => Some(Arc::new(Signer::load(
                dkim,
                &config.path(&dkim.private_key_file),
            )?)),
            None => None,
        };
        let store = Store::open(&config.database.url, &config.base_dir).await?;
        let templates = Templates::load(&config)?;
        let key = match &config.server.secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            // Generated once and kept in the database, so links in sent emails keep working.
            None => {
                let generated = posts::hex(&rand::random::<[u8; 32]>());
                store
                    .meta_get_or_insert("secret", &generated)
                    .await?
                    .into_bytes()
            }
        };
        Ok(App {
            config: Arc::new(config),
            store,
            templates: Arc::new(templates),
            tokens: Tokens::new(&key),
            signer,
        })
    }

    /// Reads `posts/` into the database. Broken files are reported, never fatal.
    pub async fn sync_posts(&self, now: DateTime<Utc>) -> Result<PostSync, Error> {
        let loaded = posts::load_dir(&self.config)?;
        for error in &loaded.errors {
            tracing::warn!("{error}");
        }
        let report = self
            .store
            .sync_posts(&loaded.posts, &loaded.errors, &self.config.site_host(), now)
            .await?;
        for conflict in &report.conflicts {
            tracing::warn!("{conflict}");
        }
        Ok(PostSync {
            report,
            errors: loaded.errors,
        })
    }

    /// Creates an issue for every newly published post that should be mailed.
    pub async fn create_due_issues(&self, now: DateTime<Utc>) -> Result<Vec<NewIssue>, Error> {
        let mut created = Vec::new();
        let posts = self.store.posts_awaiting_issue(now).await?;
        if posts.is_empty() {
            return Ok(created);
        }
        match self.config.schedule.mode {
            ScheduleMode::Each => {
                let batch: Vec<(Vec<i64>, String)> = posts
                    .iter()
                    .map(|p| (vec![p.id], p.title.clone()))
                    .collect();
                let made = self
                    .store
                    .create_issues(&batch, "post", "schedule", now)
                    .await?;
                for (post, made) in posts.iter().zip(made) {
                    // Another process may have been quicker; then it is theirs to report.
                    if made.created {
                        tracing::info!(slug = %post.slug, queued = made.queued, "new issue");
                        created.push(NewIssue {
                            slug: post.slug.to_string(),
                            issue_id: made.issue.id,
                            queued: made.queued,
                        });
                    }
                }
            }
            ScheduleMode::Digest => {
                let subject =
                    crate::render::email::digest_subject(&self.config, &self.templates, &posts)?;
                let ids: Vec<i64> = posts.iter().map(|p| p.id).collect();
                let made = self
                    .store
                    .create_issue(&ids, &subject, "digest", "schedule", now)
                    .await?;
                if made.created {
                    let lead = posts.last().map(|p| p.slug.to_string()).unwrap_or_default();
                    tracing::info!(slug = %lead, posts = posts.len(), queued = made.queued, "new digest");
                    created.push(NewIssue {
                        slug: lead,
                        issue_id: made.issue.id,
                        queued: made.queued,
                    });
                }
            }
        }
        Ok(created)
    }

    /// One scheduler tick: sync posts, create issues, deliver everything due.
    pub async fn run_once(
        &self,
        now: DateTime<Utc>,
        options: DeliverOptions,
    ) -> Result<TickReport, Error> {
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
        let deliveries = delivery::deliver_due(self, now + elapsed, options).await?;
        tracing::debug!(
            posts_ms = synced.as_millis() as u64,
            upstream_ms = (fetched - synced).as_millis() as u64,
            issues_ms = (queued - fetched).as_millis() as u64,
            delivery_ms = (started.elapsed() - queued).as_millis() as u64,
            "tick timing"
        );
        Ok(TickReport {
            posts,
            upstream,
            issues,
            deliveries,
        })
    }

    /// Fetches the upstream feed (`[posts] feed`) and stores its entries as posts.
    /// A failed fetch (4xx/5xx, timeout, broken XML) is logged and recorded and
    /// changes nothing else; it never stops the tick.
    pub async fn sync_upstream(&self, now: DateTime<Utc>) -> Result<Option<UpstreamSync>, Error> {
        let Some(url) = &self.config.posts.feed else {
            return Ok(None);
        };
        let source = self.store.source(url.as_str(), now).await?;
        let fetch_url = url::Url::parse(&source.fetch_url).unwrap_or_else(|_| url.clone());
        let user_agent = format!(
            "posthorn/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            self.config.base_url()
        );
        let timeout = std::time::Duration::from_secs(self.config.posts.fetch_timeout_seconds);
        let fetched = upstream::fetch(
            &fetch_url,
            source.etag.as_deref(),
            source.last_modified.as_deref(),
            timeout,
            &user_agent,
        )
        .await;
        let result = |status: &str, error: Option<String>, entries| UpstreamSync {
            url: url.to_string(),
            status: status.to_string(),
            error,
            entries,
        };
        let (bytes, charset, etag, last_modified, moved_to) = match fetched {
            Ok(Fetch::NotModified) => {
                self.store
                    .record_fetch(source.id, "304 Not Modified", None, now)
                    .await?;
                return Ok(Some(result("304 Not Modified", None, None)));
            }
            Ok(Fetch::Body {
                bytes,
                charset,
                etag,
                last_modified,
                moved_to,
            }) => (bytes, charset, etag, last_modified, moved_to),
            Err(e) => {
                tracing::warn!(url = %fetch_url, error = %e, "fetching the upstream feed failed; nothing changed");
                self.store
                    .record_fetch(source.id, "error", Some(&e), now)
                    .await?;
                return Ok(Some(result("error", Some(e), None)));
            }
        };
        let entries = upstream::decode(&bytes, charset.as_deref())
            .and_then(|text| upstream::parse(&text, &fetch_url));
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(url = %fetch_url, error = %e, "the upstream feed could not be read; nothing changed");
                self.store
                    .record_fetch(source.id, "error", Some(&e), now)
                    .await?;
                return Ok(Some(result("error", Some(e), None)));
            }
        };
        if let Some(to) = &moved_to {
            tracing::info!(from = %fetch_url, to = %to, "the upstream feed moved permanently");
        }
        let new_url = moved_to.unwrap_or(fetch_url);
        let report = self
            .store
            .store_fetch(
                source.id,
                &entries,
                etag.as_deref(),
                last_modified.as_deref(),
                new_url.as_str(),
                &self.config.site_host(),
                self.config.site.timezone,
                now,
            )
            .await?;
        Ok(Some(result("200 OK", None, Some(report))))
    }

    pub async fn post(&self, slug: &str) -> Result<PostRecord, Error> {
        self.store
            .post_by_slug(slug)
            .await?
            .ok_or_else(|| Error::PostNotFound(slug.to_string()))
    }

    /// The issue of the post with this slug.
    pub async fn issue_of(&self, slug: &str) -> Result<IssueRecord, Error> {
        let post = self.post(slug).await?;
        self.store
            .issue_for_post(post.id)
            .await?
            .ok_or_else(|| Error::IssueNotFound(slug.to_string()))
    }

    /// Checks that a post may be mailed by hand now.
    pub fn check_sendable(&self, post: &PostRecord, now: DateTime<Utc>) -> Result<(), Error> {
        if post.removed {
            return Err(Error::Invalid(format!(
                "post `{}` no longer has a file in posts/",
                post.slug
            )));
        }
        if post.draft {
            return Err(Error::Invalid(format!(
                "post `{}` is a draft; set `draft = false` first",
                post.slug
            )));
        }
        if !post.email {
            return Err(Error::Invalid(format!(
                "post `{}` has `email = false`: it is for the feeds and the archive only",
                post.slug
            )));
        }
        if post.published_at > now {
            return Err(Error::Invalid(format!(
                "post `{}` is scheduled for {}; it will be sent then",
                post.slug,
                post.published_at
                    .with_timezone(&self.config.site.timezone)
                    .to_rfc3339()
            )));
        }
        Ok(())
    }

    /// Creates the issue of a post if needed and queues it for every active
    /// subscriber who has no delivery of it yet. Returns the issue and how many
    /// deliveries were added.
    pub async fn queue_post(
        &self,
        post: &PostRecord,
        now: DateTime<Utc>,
    ) -> Result<(IssueRecord, u64), Error> {
        self.check_sendable(post, now)?;
        match self.store.issue_for_post(post.id).await? {
            Some(issue) => {
                let queued = self.store.enqueue_issue(issue.id, now).await?;
                Ok((issue, queued))
            }
            None => {
                let made = self
                    .store
                    .create_issue(&[post.id], &post.title, "post", "manual", now)
                    .await?;
                Ok((made.issue, made.queued))
            }
        }
    }

    pub fn unsubscribe_url(&self, subscriber_id: i64) -> String {
        let token = self.tokens.sign(Purpose::Unsubscribe, subscriber_id, None);
        self.token_url("unsubscribe", &token)
    }

    /// The absolute link of a token route: `https://site/unsubscribe/TOKEN`.
    pub fn token_url(&self, route: &str, token: &str) -> String {
        self.config
            .site_url(&format!("{route}/{token}"))
            .to_string()
    }

    /// The email of `post` as `to` would get it. Test copies and previews use
    /// issue id 0, so their Message-IDs never collide with a real delivery's.
    pub async fn compose(
        &self,
        post: &PostRecord,
        to: &EmailAddress,
        test_copy: bool,
    ) -> Result<Outgoing, Error> {
        let subject = match self.store.issue_for_post(post.id).await? {
            Some(issue) => issue.subject,
            None => post.title.clone(),
        };
        let bodies = render_issue(&self.config, &self.templates, post)?;
        let instance = self.store.instance().await?;
        let issue = PreparedIssue::new(
            &self.config,
            0,
            &subject,
            &instance,
            bodies,
            self.signer.clone(),
        )?;
        let (subscriber_id, name) = match self.store.subscriber_by_email(to).await? {
            Some(s) => (s.id, s.name),
            None => (0, String::new()),
        };
        let unsubscribe_url = self.unsubscribe_url(subscriber_id);
        // A test copy gets a fresh Message-ID so that mail clients do not fold copies together.
        let id_part = if test_copy {
            rand::random::<u32>() as i64
        } else {
            subscriber_id
        };
        issue.message_for(
            &Addressee {
                subscriber_id: id_part,
                email: to,
                name: &name,
                unsubscribe_url: &unsubscribe_url,
            },
            SystemTime::now(),
        )
    }

    /// A subscription request from the web form: double opt-in. The caller shows the
    /// same answer whatever the address's state, so nobody can probe who subscribes.
    pub async fn subscribe(
        &self,
        email: &EmailAddress,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let outcome = self
            .store
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
                self.store.make_pending(*id, now).await?;
                *id
            }
            // Already active: nothing to do, and nothing to tell a stranger.
            Some(AddOutcome::Exists(_, SubscriberStatus::Active)) | None => return Ok(()),
        };
        // At most one confirmation email per address every ten minutes.
        if !self
            .store
            .claim_confirmation(id, now, chrono::Duration::minutes(10))
            .await?
        {
            return Ok(());
        }
        let result = self.send_confirmation(id, email, name, now).await;
        if result.is_err() {
            self.store.release_confirmation(id).await?;
        }
        result
    }

    async fn send_confirmation(
        &self,
        id: i64,
        email: &EmailAddress,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let token = self
            .tokens
            .sign(Purpose::Confirm, id, Some(now + chrono::Duration::days(7)));
        let confirm_url = self.token_url("confirm", &token);
        let data = serde_json::json!({
            "site": crate::render::site_context(&self.config),
            "name": name,
            "confirm_url": confirm_url,
        });
        let subject = self.templates.render("confirm.subject.txt", &data)?;
        let text = self.templates.render("confirm.txt", &data)?;
        let html =
            crate::render::email::inline_css(&self.templates.render("confirm.html", &data)?)?;
        let message = transactional(
            &self.config,
            self.signer.as_deref(),
            email,
            subject.trim(),
            text,
            html,
        )?;
        let reply = delivery::send_single(self, &message)
            .await
            .map_err(|e| Error::Email(format!("confirmation to {email} not sent: {e:?}")))?;
        tracing::info!(subscriber = id, reply, "confirmation sent");
        Ok(())
    }

    /// `GET /confirm/{token}`.
    pub async fn confirm(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), TokenError>, Error> {
        let id = match self.tokens.verify(token, Purpose::Confirm, now) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match self.store.confirm(id, now).await? {
            Some(SubscriberStatus::Active) => Ok(()),
            // Unsubscribed or bounced since the link was sent: the old link is void.
            _ => Err(TokenError::Invalid),
        })
    }

    /// `POST /unsubscribe/{token}` (and `List-Unsubscribe-Post`). Idempotent.
    pub async fn unsubscribe_by_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), TokenError>, Error> {
        let id = match self.tokens.verify(token, Purpose::Unsubscribe, now) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        self.store.unsubscribe(id, now).await?;
        Ok(Ok(()))
    }

    /// `posthorn preview`: the rendered email for a sample subscriber.
    pub async fn preview(&self, slug: &str, format: PreviewFormat) -> Result<String, Error> {
        let post = self.post(slug).await?;
        let sample = EmailAddress::parse("subscriber@example.com").map_err(Error::Invalid)?;
        let html = match format {
            PreviewFormat::Eml => {
                let message = self.compose(&post, &sample, false).await?;
                return Ok(String::from_utf8_lossy(&message.bytes).into_owned());
            }
            PreviewFormat::Html => true,
            PreviewFormat::Text => false,
        };
        let bodies = render_issue(&self.config, &self.templates, &post)?;
        let unsubscribe_url = self.unsubscribe_url(0);
        let recipient = crate::render::email::Recipient {
            email: sample.as_str(),
            name: "",
            unsubscribe_url: &unsubscribe_url,
        };
        let body = if html { &bodies.html } else { &bodies.text };
        Ok(body.fill(&recipient, html))
    }
}
