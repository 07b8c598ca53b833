use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;

use super::Output;
use crate::app::App;
use crate::error::Error;
use crate::web::Server;

/// The web server until SIGINT or SIGTERM.
pub async fn run(app: &App, _out: &Output) -> Result<ExitCode, Error> {
    let sync = app.sync_posts(Utc::now()).await?;
    for error in &sync.errors {
        tracing::warn!("{error}");
    }
    let server = Server::bind(app.clone(), &app.config.server.bind).await?;
    let addr = server.local_addr()?;
    tracing::info!("serving http://{addr}/");
    println!("listening on http://{addr}/");

    // Pick up posts changed by other processes (or reaching their date) within a second.
    let site = server.site.clone();
    let refresher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = site.refresh().await {
                tracing::warn!(error = %e, "refreshing the site");
            }
        }
    });
    server.run(shutdown_signal()).await?;
    refresher.abort();
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
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
