//! The web face (axum). The server: HTTP/1.1 with a bound on each request's
//! head, time and body, the security headers on every answer, and a stop that
//! lets requests in flight finish. Its routes: the archive and the feeds
//! (`site`), counted links and the open pixel (`analytics`), the readers'
//! forms (`forms`), the author's dashboard
//! (`dashboard`), the admin API (`admin`), the providers' webhooks
//! (`webhooks`) and the health check.

pub mod admin;
pub mod analytics;
pub mod dashboard;
pub mod forms;
pub mod headers;
pub mod limit;
mod metrics;
pub mod site;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;
use crate::error::Error;
use crate::schedule::Ticker;
use headers::Policies;
use limit::IpLimiter;
use site::SiteCache;

/// A request's head must arrive within this long, and so must the next one's on
/// a connection kept alive: a half-sent request holds a connection no longer.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Every request is answered within this long, its body read and its work done
/// (`408` otherwise). A stream's body (the live progress) is not bounded by it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The author's requests that take the whole list (the import, up to 16 MiB,
/// and the export) or wait on the mail server (a test copy) get longer.
pub const LONG_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// What every handler can reach.
#[derive(Clone)]
pub struct WebState {
    /// Behind one `Arc`: every handler's `State` is a clone of all this, and
    /// the services hold many `Arc`s of their own.
    app: Arc<App>,
    site: Arc<SiteCache>,
    limiter: Arc<IpLimiter>,
    /// Failed sign-ins per address, the dashboard's and the admin API's alike:
    /// the token cannot be guessed at speed through either.
    sign_in_limiter: Arc<IpLimiter>,
    /// Webhook bodies being read now (see [`webhooks::WEBHOOK_BODIES_AT_ONCE`]).
    webhook_bodies: Arc<tokio::sync::Semaphore>,
    /// The worker of this process, woken when the admin API queues a send. Without
    /// one (a web-only process), the next tick of any worker sends it.
    worker: Option<Arc<Ticker>>,
    /// Requests answered, for `/metrics`.
    http: metrics::HttpMeters,
}

/// A bound, not yet running, server. Binding to port 0 gives tests a free port.
pub struct Server {
    listener: TcpListener,
    state: WebState,
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
        let site = Arc::new(SiteCache::new(app.site().clone()).await?);
        // Ten subscription requests at once per address, then one every six seconds.
        let limiter = Arc::new(IpLimiter::new(10, 10));
        let state = WebState {
            app: Arc::new(app),
            site,
            limiter,
            // Five failures at once per address, then one every ten seconds.
            sign_in_limiter: Arc::new(IpLimiter::new(5, 6)),
            webhook_bodies: Arc::new(tokio::sync::Semaphore::new(
                webhooks::WEBHOOK_BODIES_AT_ONCE,
            )),
            worker: None,
            http: metrics::HttpMeters::default(),
        };
        Ok(Server { listener, state })
    }

    /// Wakes `worker` whenever the admin API queues a send.
    pub fn with_worker(mut self, worker: Arc<Ticker>) -> Server {
        self.state.worker = Some(worker);
        self
    }

    /// The in-memory site, to refresh it when the posts change.
    pub fn site(&self) -> Arc<SiteCache> {
        self.state.site.clone()
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("listener", e))
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight
    /// and the confirmation emails they handed off.
    ///
    /// HTTP/1.1 only (what reverse proxies speak to their backends): hyper's
    /// HTTP/1 connection bounds the time to read a request's head, while a
    /// connection that could still turn out to be HTTP/2 has no such bound.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let subscriptions = self.state.app.subscriptions().clone();
        let (stop_counts, counts_stopped) = tokio::sync::watch::channel(false);
        let counts = tokio::spawn(write_counts(
            self.state.app.analytics().clone(),
            counts_stopped,
        ));
        let router = router(self.state);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let connections = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let router = router.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            });
            let connection =
                connections.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, %peer, "connection ended");
                }
            });
        }
        drop(self.listener);
        connections.shutdown().await;
        subscriptions.settled().await;
        // The writer finishes the write it is in, then writes the last counts.
        let _ = stop_counts.send(true);
        let _ = counts.await;
        Ok(())
    }
}

/// Counts are written this often: what a crash can lose of them.
pub const COUNTS_EVERY: Duration = Duration::from_secs(2);

/// Writes the clicks, opens and views counted in memory, every [`COUNTS_EVERY`]
/// and once more when `stopped` turns true.
async fn write_counts(
    analytics: crate::app::Analytics,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(COUNTS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = every.tick() => false,
            _ = stopped.changed() => true,
        };
        if let Err(e) = analytics.flush().await {
            tracing::warn!(error = %crate::error::chain(&e), "writing counts; kept for the next try");
        }
        if last {
            return;
        }
    }
}

/// A request as counting sees it: who asked, and whether anyone has read
/// anything yet (not a `HEAD`, not a browser's prefetch).
fn visit<'a>(
    method: &axum::http::Method,
    headers: &'a axum::http::HeaderMap,
    peer: SocketAddr,
) -> crate::app::Visit<'a> {
    let prefetch = ["purpose", "sec-purpose", "x-purpose", "x-moz"]
        .iter()
        .filter_map(|name| headers.get(*name))
        .any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("prefetch"))
        });
    crate::app::Visit {
        peer: peer.ip(),
        agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        counts: method == axum::http::Method::GET && !prefetch,
        now: chrono::Utc::now(),
    }
}

/// An accept that failed: a connection gone before it was taken is nothing;
/// anything else (out of file descriptors) is logged, and the loop pauses
/// rather than spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn router(state: WebState) -> Router {
    let policies = Arc::new(Policies::new(state.app.links().home()));
    let http = state.http.clone();
    let site = Router::new()
        .route("/", get(site::index))
        .route("/index.html", get(site::index))
        .route("/feed.xml", get(site::rss))
        .route("/atom.xml", get(site::atom))
        .route("/feed.json", get(site::json_feed))
        .route("/posts/{slug}", get(site::post))
        .route("/posts/{slug}/", get(site::post))
        .route("/posts/{slug}/{*path}", get(site::asset))
        .merge(forms::router(&state))
        .route("/api/posts/{slug}/send", post(admin::send))
        .route("/api/posts/{slug}/deliveries", get(admin::deliveries))
        .route("/api/posts/{slug}/stats", get(admin::stats))
        .route("/api/subscribers", get(admin::subscribers))
        .route("/api/subscribers/forget", post(admin::forget))
        .route("/api/status", get(admin::status))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics::metrics))
        // Bodies are read by the handler, once the provider is known to be set
        // up, a few at a time and up to their own limit.
        .route("/webhooks/{provider}", post(webhooks::receive))
        .route_layer(timeout(REQUEST_TIMEOUT))
        // A click and a pixel wait on nothing (no body, no database): no
        // timer per request on the hottest routes.
        .route("/c/{token}", get(analytics::click))
        .route("/o/{token}", get(analytics::open));
    site.merge(dashboard::router(&state))
        .route_layer(axum::middleware::from_fn(metrics::keep_route))
        // Forms and one-click posts are tiny; anything big is not for us.
        .layer(DefaultBodyLimit::max(16 * 1024))
        .fallback(site::not_found)
        // Outermost, so every answer has them: 404s, 408s and 413s too.
        .layer(axum::middleware::from_fn_with_state(policies, headers::add))
        .layer(axum::middleware::from_fn_with_state(http, metrics::count))
        .with_state(state)
}

/// How long the health check waits for the database.
const HEALTH_DATABASE_WAIT: Duration = Duration::from_secs(2);

/// `GET /healthz`: 200 while the database answers and this process's worker
/// and scheduler run; 503 otherwise. Both with a JSON body saying which.
async fn health(
    axum::extract::State(state): axum::extract::State<WebState>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    use crate::schedule::{Health, Running};
    // A database that hangs is as down as one that refuses: the check stays
    // quick enough to poll every second.
    let database =
        tokio::time::timeout(HEALTH_DATABASE_WAIT, state.app.ledger().database_answers())
            .await
            .unwrap_or_else(|_| {
                Err(Error::Internal(format!(
                    "no answer within {HEALTH_DATABASE_WAIT:?}"
                )))
            });
    let health = state.worker.as_ref().map_or(
        Health {
            worker: Running::NotHere,
            scheduler: Running::NotHere,
            ticking: Running::NotHere,
            ticks: crate::schedule::TickCounts::default(),
            panics: crate::error::caught_panics(),
        },
        |w| w.health(chrono::Utc::now()),
    );
    let ok = database.is_ok() && health.ok();
    let mut problems = Vec::new();
    if let Err(e) = &database {
        tracing::warn!(error = %crate::error::chain(e), "health check: the database does not answer");
        problems.push("the database does not answer".to_string());
    }
    if health.worker == Running::No {
        problems.push("the worker has stopped".to_string());
    }
    if health.scheduler == Running::No {
        problems.push("the scheduler has stopped".to_string());
    }
    if health.ticking == Running::No {
        problems.push(match health.ticks.last_success {
            Some(t) => format!("no tick has succeeded since {}", t.to_rfc3339()),
            None => "no tick has succeeded since the start".to_string(),
        });
    }
    let relays = state.app.relays();
    let relays_down = !relays.is_empty()
        && relays
            .iter()
            .all(|r| r.state == crate::delivery::RelayState::SetAside);
    if relays_down {
        problems.push("every relay is set aside: mail waits until one answers".to_string());
    }
    let ok = ok && !relays_down;
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unhealthy" },
        "problems": problems,
        "database": if database.is_ok() { "ok" } else { "down" },
        "worker": health.worker,
        "scheduler": health.scheduler,
        "ticking": health.ticking,
        "ticks": health.ticks,
        "panics": health.panics,
        "relays": relays,
    });
    let status = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

/// Answers `408` to a request not done within `limit`.
fn timeout(limit: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limit)
}

/// `Retry-After` in whole seconds, at least one.
fn retry_after(wait: Duration) -> (HeaderName, HeaderValue) {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    (header::RETRY_AFTER, HeaderValue::from(seconds))
}

/// The answer's status for an error: the request's fault is a 4xx, ours a 5xx
/// (logged with its whole cause chain).
/// A status filter from the query string, parsed: empty is "all", and a wrong
/// one is the request's fault.
pub fn parse_status<S: std::str::FromStr<Err = String>>(
    given: Option<&str>,
) -> Result<Option<S>, Error> {
    given
        .filter(|s| !s.is_empty())
        .map(str::parse::<S>)
        .transpose()
        .map_err(Error::Invalid)
}

fn error_status(e: &Error) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    match e {
        Error::PostNotFound(_) | Error::IssueNotFound(_) | Error::NotFound(_) => {
            StatusCode::NOT_FOUND
        }
        Error::Invalid(_) | Error::Token(_) => StatusCode::BAD_REQUEST,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Send { .. } => {
            tracing::warn!(error = %crate::error::chain(e), "request failed");
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => {
            tracing::error!(error = %crate::error::chain(e), "request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}
