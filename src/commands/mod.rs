//! The command line: parse, open the app, call the library, print.

mod backup;
mod bounces;
mod build;
mod check;
mod cli;
mod deliveries;
mod init;
mod logging;
mod output;
mod posts;
mod preview;
mod retry;
mod send;
mod serve;
mod signal;
mod sources;
mod stats;
mod status;
mod subscribers;

use std::process::ExitCode;

use clap::Parser;

use crate::app::App;
use crate::config::{Config, LogFormat};
use crate::error::Error;

pub use cli::{BouncesCommand, Cli, Command, PostsCommand, SubscribersCommand};
pub use output::{line, table, write, Output};
pub use signal::shutdown_signal;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Loaded once, before logging starts: the format is the config's. A config
    // that does not load logs as text, and the command then says what is wrong.
    let config = Config::load(&cli.config);
    let format = config
        .as_ref()
        .map(|c| c.server.log_format)
        .unwrap_or_default();
    logging::init(format);
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
    match runtime.block_on(run(cli, config)) {
        Ok(code) => code,
        // A JSON log stays one object a line, masked, even for the last words.
        Err(e) if format == LogFormat::Json => {
            tracing::error!(error = %crate::error::chain(&e), "posthorn stopped");
            ExitCode::FAILURE
        }
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

/// Runs a command; `config` is `cli.config` as loaded (`init` and the bounce
/// commands that read a message alone do not need it).
pub async fn run(cli: Cli, config: Result<Config, Error>) -> Result<ExitCode, Error> {
    let out = Output { json: cli.json };
    if let Command::Init { dir } = &cli.command {
        return init::run(dir, &out);
    }
    if let Command::Bounces(BouncesCommand::Parse { files }) = &cli.command {
        return bounces::parse(&cli.config, files, &out);
    }
    if let Command::Bounces(BouncesCommand::Ingest { file }) = &cli.command {
        return bounces::ingest(&cli.config, file.as_deref(), &out).await;
    }
    // A damaged or newer backup is refused before the database is opened,
    // let alone created.
    if let Command::Restore { file } = &cli.command {
        crate::app::backup::verify(file)?;
    }
    let app = App::open(config?).await?;
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
        Command::Posts(cmd) => posts::run(&app, &out, cmd).await,
        Command::Status { slug } => status::run(&app, &out, slug.as_deref()).await,
        Command::Stats { slug } => stats::run(&app, &out, slug.as_deref()).await,
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
        Command::Backup { file } => backup::backup(&app, &out, &file).await,
        Command::Restore { file } => backup::restore(&app, &out, &file).await,
    };
    app.close().await;
    result
}
