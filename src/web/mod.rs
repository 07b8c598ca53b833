//! The web server (axum): feeds, the archive, and the health check.

pub mod admin;
pub mod limit;
pub mod pages;
pub mod site;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::app::App;
use crate::error::Error;
use limit::IpLimiter;
use site::SiteCache;

/// What every handler can reach.
#[derive(Clone)]
pub struct WebState {
    pub app: App,
    pub site: Arc<SiteCache>,
    pub limiter: Arc<IpLimiter>,
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
        Self::on(app, listener).await
    }

    /// A server on a listener bound elsewhere (tests bind first to learn the port).
    pub async fn on(app: App, listener: TcpListener) -> Result<Server, Error> {
        let site = Arc::new(SiteCache::new(app.clone()).await?);
        // Ten subscription requests at once per address, then one every six seconds.
        let limiter = Arc::new(IpLimiter::new(10, 10));
        let state = WebState {
            app,
            site: site.clone(),
            limiter,
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
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
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
        .route("/posts/{slug}/{*path}", get(site::asset))
        .route(
            "/subscribe",
            get(pages::subscribe_form).post(pages::subscribe),
        )
        .route("/confirm/{token}", get(pages::confirm))
        .route(
            "/unsubscribe/{token}",
            get(pages::unsubscribe_page).post(pages::unsubscribe),
        )
        .route("/api/posts/{slug}/send", post(admin::send))
        .route("/api/posts/{slug}/deliveries", get(admin::deliveries))
        .route("/api/subscribers", get(admin::subscribers))
        .route("/api/status", get(admin::status))
        .route("/healthz", get(|| async { "ok" }))
        // Forms and one-click posts are tiny; anything big is not for us.
        .layer(DefaultBodyLimit::max(16 * 1024))
        .fallback(site::not_found)
        .with_state(state)
}
