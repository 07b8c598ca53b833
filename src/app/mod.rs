//! The application services: what the command line, the scheduler and the web
//! server call. Each service is named after what it does and holds the same
//! private context (configuration, store, templates, links, signer, transport),
//! opened once.
//!
//! - [`Tick`]: one scheduler tick (`run_once`): sync posts, follow the upstream
//!   feed, create issues, deliver what is due.
//! - `Letters`: who gets what and when (a post's issue, digests, welcomes);
//!   `Issues`: an issue rendered once for the delivery engine. Both are inside
//!   the other services.
//! - [`Publishing`]: queue a post, send by hand, preview, test copies, retries.
//! - [`Subscriptions`]: subscribe, confirm, unsubscribe; readers' choices; the
//!   author's own list and its CSV.
//! - [`Ledger`]: what the log says: statuses, deliveries, sources, subscribers.
//! - [`Bounces`]: reports that come back later: bounces, complaints, delays.
//! - [`Dashboard`]: the dashboard's sessions and what its pages show.
//! - [`Analytics`]: clicks, opens, views and feed followers, counted without
//!   recording anyone.
//! - [`Archives`]: an old archive (WordPress, Ghost, Substack, a feed) brought
//!   into `posts/`.
//! - [`Backups`]: the whole database as one file, and back.

mod analytics;
mod archive;
pub mod backup;
mod bounces;
mod dashboard;
mod issues;
mod ledger;
mod letters;
mod publishing;
mod subscriptions;
mod tick;
mod upstream;
mod webhooks;

use std::sync::Arc;

pub use analytics::{last_days, Analytics, DayViews, Followers, Opens, PostStats, Stats, Visit};
pub use archive::{ArchiveReport, ArchiveSource, Archives, FailedImage};
pub use backup::{BackupReport, Backups, RestoreReport, TableRows, Verified};
pub use bounces::{Bounces, Ingested, MailboxPoll};
pub use bounces::{Claim, Reader, Reading};
pub use dashboard::{Dashboard, IssueCounts, NewSession, Overview, GROWTH_DAYS, SESSION_IDLE};
pub use ledger::Ledger;
pub use publishing::Publishing;
pub use publishing::{Enqueued, Plan, PreviewFormat};
pub use publishing::{InProcess, Worker};
pub use subscriptions::{
    Added, ExportFormat, ImportSummary, PreferencesPage, Rejected, SavedChoices, Subscriptions,
    TopicChoice,
};
pub use tick::{NewIssue, PostSync, Tick, TickSummary, UpstreamSync};
pub use webhooks::{WebhookFailure, WebhookReply};

use crate::bounces::webhooks::SendgridKey;
use crate::config::Config;
use crate::delivery::dkim::Signer;
use crate::delivery::{self, ConfiguredTransport, DeliverySummary, RelayView, Run, Settings};
use crate::domain::{hex, Post};
use crate::error::Error;
use crate::links::Links;
use crate::render::Templates;
use crate::site::Site;
use crate::store::{issue_id_in_key, IssueRecord, Store};
use crate::tokens::Tokens;
use issues::Issues;
use letters::Letters;

/// What every service reads, opened once.
struct Context {
    config: Arc<Config>,
    store: Store,
    templates: Arc<Templates>,
    links: Links,
    /// Set when `[dkim]` is configured: every outgoing message is signed.
    signer: Option<Arc<Signer>>,
    transport: ConfiguredTransport,
}

impl Context {
    /// The post with this slug, as stored.
    async fn post(&self, slug: &str) -> Result<Post, Error> {
        self.store
            .post_by_slug(slug)
            .await?
            .ok_or_else(|| Error::PostNotFound(slug.to_string()))
    }

    /// The issue the post with this slug went out in.
    async fn issue_of(&self, slug: &str) -> Result<IssueRecord, Error> {
        Ok(self.post_and_issue(slug).await?.1)
    }

    /// The issue named by `key` (a post's slug: its own issue; `~ID`: any issue)
    /// and its lead post.
    async fn post_and_issue(&self, key: &str) -> Result<(Post, IssueRecord), Error> {
        if let Some(id) = issue_id_in_key(key) {
            let issue = self
                .store
                .issue_by_id(id)
                .await?
                .ok_or_else(|| Error::IssueNotFound(key.to_string()))?;
            let post = self
                .store
                .post_by_id(issue.post_id)
                .await?
                .ok_or_else(|| Error::IssueNotFound(key.to_string()))?;
            return Ok((post, issue));
        }
        let slug = key;
        let post = self.post(slug).await?;
        let issue = self
            .store
            .issue_for_post(post.id)
            .await?
            .ok_or_else(|| Error::IssueNotFound(slug.to_string()))?;
        Ok((post, issue))
    }

    /// How posthorn names itself when it fetches (a feed, an image).
    fn user_agent(&self) -> String {
        format!(
            "posthorn/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            self.links.home()
        )
    }

    /// Letter planning over this context.
    fn letters(self: &Arc<Self>) -> Letters {
        Letters::new(self.clone())
    }

    /// Delivers what `run` asks for over the configured transport.
    async fn deliver(&self, run: Run) -> Result<DeliverySummary, Error> {
        let issues = Issues::new(self);
        let mut settings = Settings::new(&self.config.smtp, &self.config.bounces);
        if let Some(sessions) = self.transport.concurrency() {
            // Each relay keeps its own concurrency and rate.
            settings.concurrency = sessions;
            settings.rate_per_second = 0;
        }
        delivery::deliver_due(&self.store, issues, &self.transport, &settings, run).await
    }
}

/// The services over one site, cheap to clone.
#[derive(Clone)]
pub struct App {
    context: Arc<Context>,
    tick: Tick,
    archives: Archives,
    backups: Backups,
    publishing: Publishing,
    subscriptions: Subscriptions,
    ledger: Ledger,
    bounces: Bounces,
    dashboard: Dashboard,
    analytics: Analytics,
    site: Site,
}

impl App {
    pub async fn open(config: Config) -> Result<App, Error> {
        // A bad key is a start-up error, not a surprise at the first send.
        let signer = match &config.dkim {
            Some(dkim) => Some(Arc::new(Signer::load(
                dkim,
                &config.path(&dkim.private_key_file),
                dkim.second_private_key_file
                    .as_deref()
                    .map(|p| config.path(p))
                    .as_deref(),
            )?)),
            None => None,
        };
        let sendgrid_key = match &config.bounces.sendgrid_public_key {
            Some(key) => Some(SendgridKey::parse(key).map_err(Error::Config)?),
            None => None,
        };
        let store = Store::open(&config.database.url, &config.base_dir).await?;
        let key = match &config.server.secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            // Generated once and kept in the database, so links in sent emails keep working.
            None => {
                tracing::info!("server.secret is unset or empty: links are signed with the secret stored in the database");
                store
                    .meta_get_or_insert("secret", &hex(&rand::random::<[u8; 32]>()))
                    .await?
                    .into_bytes()
            }
        };
        if config.server.admin_token.is_none() {
            tracing::info!(
                "server.admin_token is unset or empty: the admin API and the dashboard are off"
            );
        }
        let links = Links::new(&config, Tokens::new(&key));
        let templates = Arc::new(Templates::load(&config, &links)?);
        let config = Arc::new(config);
        let context = Arc::new(Context {
            transport: ConfiguredTransport::new(&config),
            config: config.clone(),
            store: store.clone(),
            templates: templates.clone(),
            links: links.clone(),
            signer,
        });
        let bounces = Bounces::new(context.clone()).with_sendgrid_key(sendgrid_key);
        Ok(App {
            tick: Tick::new(context.clone(), bounces.clone()),
            publishing: Publishing::new(context.clone()),
            archives: Archives::new(context.clone()),
            backups: Backups::new(context.clone()),
            subscriptions: Subscriptions::new(context.clone()),
            ledger: Ledger::new(context.clone()),
            bounces,
            dashboard: Dashboard::new(context.clone()),
            analytics: Analytics::new(context.clone()),
            site: Site::new(store, config, templates, links),
            context,
        })
    }

    pub fn config(&self) -> &Config {
        &self.context.config
    }

    pub fn links(&self) -> &Links {
        &self.context.links
    }

    /// The site's templates, for the pages the web server renders.
    pub fn templates(&self) -> &Templates {
        &self.context.templates
    }

    pub fn tick(&self) -> &Tick {
        &self.tick
    }

    pub fn archives(&self) -> &Archives {
        &self.archives
    }

    pub fn backups(&self) -> &Backups {
        &self.backups
    }

    pub fn publishing(&self) -> &Publishing {
        &self.publishing
    }

    pub fn subscriptions(&self) -> &Subscriptions {
        &self.subscriptions
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn bounces(&self) -> &Bounces {
        &self.bounces
    }

    pub fn dashboard(&self) -> &Dashboard {
        &self.dashboard
    }

    pub fn analytics(&self) -> &Analytics {
        &self.analytics
    }

    /// What this process's relays did since start.
    pub fn smtp_meters(&self) -> Option<delivery::SmtpMeters> {
        self.context.transport.smtp_meters()
    }

    /// Each relay and whether it is taking mail, as this process has found them.
    pub fn relays(&self) -> Vec<RelayView> {
        self.context.transport.relays()
    }

    /// Each relay, tried now.
    pub async fn probe_relays(&self) -> Vec<RelayView> {
        self.context.transport.probe_relays().await;
        self.relays()
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    /// Closes the database connections.
    pub async fn close(&self) {
        self.context.store.close().await;
    }
}
