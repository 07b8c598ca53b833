//! The command line as clap reads it: every command, argument and flag.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::{ExportFormat, PreviewFormat};
use crate::domain::{DeliveryStatus, SubscriberStatus};
use crate::links::WebUrl;
use crate::posts::archive::ArchiveFormat;

#[derive(Debug, Parser)]
#[command(
    name = "posthorn",
    version,
    about = "Essays to subscribers' inboxes and feed readers"
)]
pub struct Cli {
    /// The site's configuration file.
    #[arg(
        long,
        global = true,
        default_value = "config.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working site: config.toml, templates/, posts/ with a sample essay, subscribers/.
    Init {
        /// Folder to create the site in.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// One scheduler tick: sync posts, create issues for new posts, deliver what is due.
    Check,
    /// Write the feeds and the archive as static files.
    Build {
        /// Output folder (default `public/` beside config.toml); replaced whole.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run the web server and the scheduler until SIGINT or SIGTERM.
    Serve {
        /// Only send (the scheduler), without the web server.
        #[arg(long)]
        worker_only: bool,
    },
    /// Send a post by hand. Running it again reaches only subscribers who lack it.
    Send {
        slug: String,
        /// Send one test copy to this address instead (not logged as a delivery).
        #[arg(long, value_name = "EMAIL")]
        to: Option<String>,
        /// Show how many subscribers would receive it; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Print the rendered email of a post.
    Preview {
        slug: String,
        /// html, text or eml.
        #[arg(long, default_value = "html", value_parser = parse_preview_format)]
        format: PreviewFormat,
    },
    /// Manage subscribers.
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
    /// Bring an old archive into posts/.
    #[command(subcommand)]
    Posts(PostsCommand),
    /// Delivery counts by status for each issue.
    Status { slug: Option<String> },
    /// The delivery log of one issue.
    Deliveries {
        slug: String,
        #[arg(long, value_parser = parse_delivery_status)]
        status: Option<DeliveryStatus>,
        /// The history of the delivery to this address: every attempt and report.
        #[arg(long, value_name = "EMAIL")]
        history: Option<String>,
    },
    /// Queue an issue's failed deliveries again.
    Retry { slug: String },
    /// Each upstream feed with its last fetch, status, ETag and entry count.
    Sources,
    /// What happened after the send: delivered, clicks, opens, archive views,
    /// and feed followers; counted without recording anyone.
    Stats { slug: Option<String> },
    /// Bounces and complaints that come back after the relay said 250.
    #[command(subcommand)]
    Bounces(BouncesCommand),
    /// Write the whole database to FILE (gzip-compressed JSON lines), from one
    /// snapshot, while `serve` runs and sends. The file holds every address:
    /// keep it as safe as the database.
    Backup { file: PathBuf },
    /// Load a backup into the configured database, SQLite or PostgreSQL, which
    /// must be empty. The file is checked whole before anything is written.
    Restore { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Read one message from FILE or standard input (an MTA's pipe) and record it.
    /// Exit 0: recorded or safely ignored; 75: not recorded now, try again.
    Ingest { file: Option<PathBuf> },
    /// What a message says, without touching the database.
    Parse {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Bounce and complaint events, newest first.
    List,
}

#[derive(Debug, Subcommand)]
pub enum PostsCommand {
    /// Import an old archive as Markdown bundles in posts/: a WordPress WXR
    /// file, a Ghost JSON export, a Substack export (ZIP or folder), or an RSS
    /// or Atom feed (file or URL). Images are downloaded into each bundle.
    /// Imported posts go to the feeds and the archive, never by email; a slug
    /// that exists is never overwritten.
    Import {
        source: String,
        /// `auto` (from the file), `wordpress`, `ghost`, `substack` or `feed`.
        // Spelled out so that clap takes `auto` as a value (`None`).
        #[arg(long, default_value = "auto", value_parser = parse_archive_format)]
        from: std::option::Option<ArchiveFormat>,
        /// The old site's address, for links the export writes relative to
        /// it (Ghost's `__GHOST_URL__`).
        #[arg(long, value_name = "URL", value_parser = parse_web_url)]
        base: Option<WebUrl>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add an active subscriber (you vouch for their consent).
    Add {
        email: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Unsubscribe an address (its row stays: it is part of the delivery log).
    Remove { email: String },
    /// List subscribers.
    List {
        #[arg(long, value_parser = parse_subscriber_status)]
        status: Option<SubscriberStatus>,
    },
    /// Import subscribers: posthorn's export or any CSV with an `email` column
    /// (and optionally `name`, `status`, `created_at`, `frequency`, `topics`),
    /// or another service's export (CSV or ZIP). Statuses are kept.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `auto` (by the columns), `posthorn`, `mailchimp`, `substack`,
        /// `ghost`, `listmonk`, `buttondown` or `kit`.
        // Spelled out so that clap takes `auto` as a value (`None`), not as
        // a missing flag.
        #[arg(long, default_value = "auto", value_parser = parse_export_format)]
        from: std::option::Option<ExportFormat>,
    },
    /// Erase a person: address, name and choices are gone from every table; their
    /// deliveries stay in the counts, linked to nobody.
    Forget { email: String },
    /// Write every subscriber as CSV to standard output.
    Export,
}

fn parse_delivery_status(s: &str) -> Result<DeliveryStatus, String> {
    s.parse()
}

fn parse_archive_format(s: &str) -> Result<Option<ArchiveFormat>, String> {
    match s {
        "auto" => Ok(None),
        s => s.parse().map(Some),
    }
}

fn parse_web_url(s: &str) -> Result<WebUrl, String> {
    WebUrl::parse(s).map_err(|e| e.to_string())
}

fn parse_export_format(s: &str) -> Result<Option<ExportFormat>, String> {
    match s {
        "auto" => Ok(None),
        s => s.parse().map(Some),
    }
}

fn parse_subscriber_status(s: &str) -> Result<SubscriberStatus, String> {
    s.parse()
}

fn parse_preview_format(s: &str) -> Result<PreviewFormat, String> {
    s.parse()
}
