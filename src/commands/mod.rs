//! The command line: parse, open the app, call the library, print.

mod bounces;
mod build;
mod check;
mod deliveries;
mod init;
mod preview;
mod retry;
mod send;
mod serve;
mod sources;
mod status;
mod subscribers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::app::{App, PreviewFormat};
use crate::config::Config;
use crate::domain::{DeliveryStatus, SubscriberStatus};
use crate::error::Error;

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
    /// Bounces and complaints that come back after the relay said 250.
    #[command(subcommand)]
    Bounces(BouncesCommand),
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
    /// Import a CSV file with an `email` column (and optionally `name`,
    /// `frequency` and `topics`).
    Import { file: PathBuf },
    /// Erase a person: address, name and choices are gone from every table; their
    /// deliveries stay in the counts, linked to nobody.
    Forget { email: String },
    /// Write every subscriber as CSV to standard output.
    Export,
}

fn parse_delivery_status(s: &str) -> Result<DeliveryStatus, String> {
    s.parse()
}

fn parse_subscriber_status(s: &str) -> Result<SubscriberStatus, String> {
    s.parse()
}

fn parse_preview_format(s: &str) -> Result<PreviewFormat, String> {
    s.parse()
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,posthorn=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads them, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let out = Output { json: cli.json };
    if let Command::Init { dir } = &cli.command {
        return init::run(dir, &out);
    }
    if let Command::Bounces(BouncesCommand::Parse { files }) = &cli.command {
        return bounces::parse(&cli.config, files, &out);
    }
    if let Command::Bounces(BouncesCommand::Ingest { file }) = &cli.command {
        // An MTA's pipe: a database that is down means "keep it and try again".
        let config = Config::load(&cli.config)?;
        let raw = bounces::read_input(file.as_deref())?;
        let app = match App::open(config).await {
            Ok(app) => app,
            Err(e) => return Ok(bounces::tempfail(&e)),
        };
        let code = bounces::ingest(&app, &out, &raw).await;
        app.close().await;
        return Ok(code);
    }
    let app = App::open(Config::load(&cli.config)?).await?;
    let result = match cli.command {
        Command::Init { .. } => unreachable!("handled above"),
        Command::Check => check::run(&app, &out).await,
        Command::Build { out: dir } => build::run(&app, &out, dir).await,
        Command::Serve { worker_only } => serve::run(&app, &out, worker_only).await,
        Command::Send {
            slug,
            to,
            dry_run,
            yes,
        } => send::run(&app, &out, &slug, to.as_deref(), dry_run, yes).await,
        Command::Preview { slug, format } => preview::run(&app, &slug, format).await,
        Command::Subscribers(cmd) => subscribers::run(&app, &out, cmd).await,
        Command::Status { slug } => status::run(&app, &out, slug.as_deref()).await,
        Command::Deliveries {
            slug,
            status,
            history,
        } => match history {
            Some(email) => deliveries::history(&app, &out, &slug, &email).await,
            None => deliveries::run(&app, &out, &slug, status).await,
        },
        Command::Retry { slug } => retry::run(&app, &out, &slug).await,
        Command::Sources => sources::run(&app, &out).await,
        Command::Bounces(BouncesCommand::List) => bounces::list(&app, &out).await,
        Command::Bounces(_) => unreachable!("handled above"),
    };
    app.close().await;
    result
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}

/// Where command results go: text for people, or JSON with `--json`.
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON when asked, otherwise the text from `human`.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("error: cannot write JSON: {e}"),
            }
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }
}

/// Left-aligned columns, for the text output of list commands.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.width());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            s.push_str(cell);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i] - cell.width() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}
