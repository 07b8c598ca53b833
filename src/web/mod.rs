//! The web server (axum): feeds, the archive, and the health check.

pub mod site;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::app::App;
use crate::error::Error;
use site::SiteCache;

/// What every handler can reach.
#[derive(Clone)]
pub struct WebState {
    pub app: App,
    pub site: Arc<SiteCache>,
}

/// A bound, not yet running, server. Binding to port 0 gives tests a free port.
pub struct Server {
    listener: TcpListener,
    router: Router,
    pub site: Arc<SiteCache>,
}

impl Server {
    pub async fn bind(app: App, addr: &str) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {addr} (server.bind): {e}")))?;
        let site = Arc::new(SiteCache::new(app.clone()).await?);
        let state = WebState {
            app,
            site: site.clone(),
        };
        Ok(Server {
            listener,
            router: router(state),
            site,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("listener", e))
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::io("web server", e))
    }
}

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(site::index))
        .route("/index.html", get(site::index))
        .route("/feed.xml", get(site::rss))
        .route("/atom.xml", get(site::atom))
        .route("/feed.json", get(site::json_feed))
        .route("/posts/{slug}", get(site::post))
        .route("/posts/{slug}/", get(site::post))
        .route("/posts/{slug}/index.html", get(site::post))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(site::not_found)
        .with_state(state)
}
