//! The real web server on a free loopback port, and an HTTP client to talk to it.

use std::sync::Arc;

use chrono::Utc;
use posthorn::App;

use super::TestSite;

/// The real web server on a free loopback port, with its own address as the
/// site's base URL (so the links in emails can be followed), stopped on drop.
pub struct RunningServer {
    pub base: String,
    pub app: App,
    pub site: Arc<posthorn::web::site::SiteCache>,
    pub client: reqwest::Client,
    /// The worker woken by the admin API, when started with one.
    worker: Option<Arc<posthorn::schedule::Ticker>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A listener on a free loopback port and its base URL; with `rebase`, the
/// site's base URL becomes that address.
async fn bind(site: &TestSite, rebase: bool) -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    if rebase {
        site.set_config("https://essays.example.com", &base);
    }
    (listener, base)
}

impl RunningServer {
    pub async fn start(site: &TestSite, rebase: bool) -> RunningServer {
        let (listener, base) = bind(site, rebase).await;
        let app = site.app().await;
        app.tick().sync_posts(Utc::now()).await.expect("sync");
        let server = posthorn::web::Server::on(app.clone(), listener)
            .await
            .expect("server");
        Self::run(server, base, app)
    }

    /// The server with this process's worker attached, as `posthorn serve` runs it:
    /// a send queued through the admin API wakes the worker, which delivers it.
    pub async fn start_with_worker(site: &TestSite) -> RunningServer {
        Self::start_with_worker_at(site, false).await
    }

    /// As `start_with_worker`; with `rebase`, the site's base URL becomes the
    /// server's own address (so a browser can follow every link).
    pub async fn start_with_worker_at(site: &TestSite, rebase: bool) -> RunningServer {
        Self::with_worker(site, rebase, true).await
    }

    /// The server with a worker whose wake loop does not run: a test drives
    /// its step (`ticker().tick()`) itself, and waits on nothing.
    pub async fn start_with_idle_worker(site: &TestSite) -> RunningServer {
        Self::with_worker(site, false, false).await
    }

    async fn with_worker(site: &TestSite, rebase: bool, wakes: bool) -> RunningServer {
        let (listener, base) = bind(site, rebase).await;
        let app = site.app().await;
        let worker = Arc::new(posthorn::schedule::Ticker::new(
            app.tick().clone(),
            posthorn::delivery::Stop::default(),
        ));
        if wakes {
            tokio::spawn(worker.clone().serve_wakes());
        }
        let server = posthorn::web::Server::on(app.clone(), listener)
            .await
            .expect("server")
            .with_worker(worker.clone());
        let mut running = Self::run(server, base, app);
        running.worker = Some(worker);
        running
    }

    /// The worker, to run its step (a tick) as its loop would.
    pub fn ticker(&self) -> &Arc<posthorn::schedule::Ticker> {
        self.worker.as_ref().expect("started with a worker")
    }

    /// Stops the worker as `serve` does on SIGTERM: returns once a running tick has
    /// finished and recorded every send.
    pub async fn stop_worker(&self) {
        self.worker
            .as_ref()
            .expect("started with a worker")
            .stop()
            .await;
    }

    fn run(server: posthorn::web::Server, base: String, app: App) -> RunningServer {
        let cache = server.site();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        RunningServer {
            base,
            app,
            site: cache,
            client: client(),
            worker: None,
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The body of `GET url` (an absolute URL: links in emails are), which must answer 200.
    pub async fn page(&self, url: &str) -> String {
        let r = self.client.get(url).send().await.expect("GET");
        assert_eq!(r.status(), 200, "GET {url}");
        r.text().await.expect("a text body")
    }

    /// `GET path` on this server with a bearer token, whatever the status.
    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    /// The body of `GET path` on this server, whatever the status.
    pub async fn text(&self, path: &str) -> String {
        get_text(&self.client, &self.url(path)).await
    }
}

/// A client as the tests want it: bodies as sent (no gzip), redirects not followed.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The body of `GET url`, whatever the status.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("a text body")
}
