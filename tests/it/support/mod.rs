//! Shared test helpers: a site in a temp folder, the real binary, a real SMTP server.

#![allow(dead_code)]

pub mod browser;
pub mod postgres;
pub mod smtp;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use posthorn::domain::{EmailAddress, SubscriberStatus};
use posthorn::store::{DeliveryLogRow, Subscriber};
use posthorn::{App, Config};
use tempfile::TempDir;

#[allow(unused_imports)]
pub use smtp::{Action, Received, SmtpServer};

pub struct TestSite {
    _tmp: TempDir,
    root: PathBuf,
    /// The PostgreSQL database made for this site, dropped with it.
    postgres: Option<postgres::TestDatabase>,
}

pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl TestSite {
    /// A site with the sample config, sending over SMTP to `smtp_port`, or writing
    /// files to `outbox/` when `None`.
    pub fn new(smtp_port: Option<u16>) -> TestSite {
        let dir = tempfile::tempdir().expect("temp dir");
        let transport = match smtp_port {
            Some(port) => format!(
                "transport = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
                 concurrency = 4\nrate_per_second = 0\ntimeout_seconds = 5\nretry_backoff_seconds = 60\nmax_attempts = 3\n"
            ),
            None => "transport = \"file\"\noutbox_dir = \"outbox\"\n".to_string(),
        };
        // The same suite runs on PostgreSQL when TEST_DATABASE_URL names a server:
        // each site then gets a database of its own, dropped afterwards.
        let postgres = postgres::TestDatabase::create();
        let database_url = postgres
            .as_ref()
            .map(|db| db.url.clone())
            .unwrap_or_else(|| "sqlite://subscribers/posthorn.db".into());
        let config = format!(
            r#"[site]
title = "느린 편지"
base_url = "https://essays.example.com"
author = "Jerry"
language = "ko"
timezone = "Asia/Seoul"

[database]
url = "{database_url}"

[email]
from = "Jerry <essays@example.com>"
{transport}"#
        );
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        std::fs::create_dir_all(dir.path().join("posts")).expect("posts dir");
        let root = dir.path().to_path_buf();
        TestSite {
            _tmp: dir,
            root,
            postgres,
        }
    }

    /// A site that already exists at `root`, inside `tmp` (removed with it).
    pub fn at(tmp: TempDir, root: PathBuf) -> TestSite {
        TestSite {
            _tmp: tmp,
            root,
            postgres: None,
        }
    }

    /// The database the site uses (a PostgreSQL URL, or the SQLite file's).
    pub fn database_url(&self) -> String {
        match &self.postgres {
            Some(db) => db.url.clone(),
            None => format!(
                "sqlite://{}",
                self.path().join("subscribers/posthorn.db").display()
            ),
        }
    }

    /// Whether this site's database is PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    pub fn write_post(&self, relative: &str, text: &str) {
        let path = self.path().join("posts").join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write post");
    }

    /// Overrides a built-in template with a file in the site's `templates/`.
    pub fn write_template(&self, name: &str, text: &str) {
        let dir = self.path().join("templates");
        std::fs::create_dir_all(&dir).expect("mkdir templates");
        std::fs::write(dir.join(name), text).expect("write template");
    }

    pub fn remove_post(&self, relative: &str) {
        std::fs::remove_file(self.path().join("posts").join(relative)).expect("remove post");
    }

    pub fn rename_post(&self, from: &str, to: &str) {
        let posts = self.path().join("posts");
        std::fs::rename(posts.join(from), posts.join(to)).expect("rename post");
    }

    /// Adds TOML to the end of config.toml (a new section, or keys of the last one).
    pub fn append_config(&self, toml: &str) {
        let config = std::fs::read_to_string(self.config_path()).expect("read config");
        std::fs::write(self.config_path(), format!("{config}\n{toml}\n")).expect("write config");
    }

    pub fn set_config(&self, from: &str, to: &str) {
        let config = std::fs::read_to_string(self.config_path()).expect("read config");
        assert!(config.contains(from), "config has no `{from}`");
        std::fs::write(self.config_path(), config.replace(from, to)).expect("write config");
    }

    pub async fn app(&self) -> App {
        let config = Config::load(&self.config_path()).expect("config");
        App::open(config).await.expect("open app")
    }

    /// Runs the real binary against this site.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let mut all = vec![
            "--config".to_string(),
            self.config_path().display().to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        Self::run_bin(&all.iter().map(String::as_str).collect::<Vec<_>>()).await
    }

    /// Runs the real binary against this site with `input` on standard input.
    pub async fn cli_with_input(&self, args: &[&str], input: &[u8]) -> CliOutput {
        let config = self.config_path().display().to_string();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        Self::run_bin_with_input(&all, input).await
    }

    /// Runs the real binary with these arguments and `input` on standard input.
    pub async fn run_bin_with_input(args: &[&str], input: &[u8]) -> CliOutput {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_posthorn"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run posthorn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).await.expect("write stdin");
        drop(stdin);
        let out = child.wait_with_output().await.expect("posthorn ends");
        CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs the real binary with exactly these arguments.
    pub async fn run_bin(args: &[&str]) -> CliOutput {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_posthorn"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run posthorn");
        CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Writes `file`, dated one second after the database was made (so it is a new
    /// post, not archive), and returns a clock reading when it is due: a minute on.
    pub async fn new_post(&self, app: &App, file: &str, title: &str) -> DateTime<Utc> {
        let created = app.ledger().created_at().await.expect("created_at");
        self.write_post(
            file,
            &post(title, created + chrono::Duration::seconds(1), "본문"),
        );
        created + chrono::Duration::minutes(1)
    }

    /// Adds active subscribers, as `posthorn subscribers import` does.
    pub async fn add_subscribers(&self, app: &App, emails: &[&str]) {
        let rows: Vec<_> = emails
            .iter()
            .map(|e| (EmailAddress::parse(e).expect("valid"), String::new()))
            .collect();
        app.subscriptions()
            .import(&rows, Utc::now())
            .await
            .expect("add subscribers");
    }

    pub async fn subscriber(&self, app: &App, email: &str) -> Option<Subscriber> {
        let email = EmailAddress::parse(email).expect("valid");
        app.subscriptions()
            .subscriber(&email)
            .await
            .expect("look up a subscriber")
    }

    pub async fn status_of(&self, app: &App, email: &str) -> Option<SubscriberStatus> {
        self.subscriber(app, email).await.map(|s| s.status)
    }

    /// The delivery log of the issue of `slug`, in row order.
    pub async fn log(&self, app: &App, slug: &str) -> Vec<DeliveryLogRow> {
        app.ledger()
            .delivery_log(slug, None)
            .await
            .expect("delivery log")
    }

    /// The delivery log of the issue of `slug`, by address.
    pub async fn log_by_email(&self, app: &App, slug: &str) -> HashMap<String, DeliveryLogRow> {
        self.log(app, slug)
            .await
            .into_iter()
            .map(|r| (r.email.clone(), r))
            .collect()
    }

    /// Writes a `meta` value behind posthorn's back, as a damaged database would hold it.
    pub async fn set_meta(&self, key: &str, value: &str) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.database_url())
            .await
            .expect("connect");
        sqlx::query("UPDATE meta SET value = $1 WHERE key = $2")
            .bind(value)
            .bind(key)
            .execute(&pool)
            .await
            .expect("set meta");
    }

    /// Runs one statement on the site's database behind posthorn's back (to
    /// move a stored time into the past, say); the rows it changed.
    pub async fn execute(&self, statement: &str) -> u64 {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.database_url())
            .await
            .expect("connect");
        let done = sqlx::query(statement)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        pool.close().await;
        done.rows_affected()
    }

    /// The messages the file transport wrote to `outbox/`, by file name.
    pub fn outbox(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = self.path().join("outbox");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("outbox entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).expect("read .eml");
                (p, bytes)
            })
            .collect()
    }
}

/// Parses a message as a mail client would.
pub fn parse_message(bytes: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(bytes)
        .expect("a parsable message")
}

/// A post file with TOML front matter.
pub fn post(title: &str, date: DateTime<Utc>, body: &str) -> String {
    format!(
        "+++\ntitle = {}\ndate = \"{}\"\n+++\n\n{body}\n",
        toml_string(title),
        date.to_rfc3339()
    )
}

pub fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a JSON string is a TOML basic string")
}

/// The real web server on a free loopback port, with its own address as the
/// site's base URL (so the links in emails can be followed), stopped on drop.
pub struct RunningServer {
    pub base: String,
    pub app: App,
    pub site: std::sync::Arc<posthorn::web::site::SiteCache>,
    pub client: reqwest::Client,
    /// The worker woken by the admin API, when started with one.
    worker: Option<std::sync::Arc<posthorn::schedule::Ticker>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl RunningServer {
    pub async fn start(site: &TestSite, rebase: bool) -> RunningServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        if rebase {
            site.set_config("https://essays.example.com", &base);
        }
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        if rebase {
            site.set_config("https://essays.example.com", &base);
        }
        let app = site.app().await;
        let worker = std::sync::Arc::new(posthorn::schedule::Ticker::new(
            app.tick().clone(),
            posthorn::delivery::Stop::default(),
        ));
        tokio::spawn(worker.clone().serve_wakes());
        let server = posthorn::web::Server::on(app.clone(), listener)
            .await
            .expect("server")
            .with_worker(worker.clone());
        let mut running = Self::run(server, base, app);
        running.worker = Some(worker);
        running
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
        let client = reqwest::Client::builder()
            .no_gzip()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        RunningServer {
            base,
            app,
            site: cache,
            client,
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
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether a test that runs a system daemon (`program`, as root) can run here.
/// Without it the test says loudly that it skipped; with `require` set in the
/// environment (as CI does), a missing daemon is a failure.
pub fn system_daemon(program: &str, require: &str, what: &str) -> bool {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let ok = std::path::Path::new(program).exists() && root;
    if !ok {
        assert!(
            std::env::var_os(require).is_none(),
            "{require} is set but {what} needs {program} and root"
        );
        eprintln!("\n!!! SKIPPED: {what} needs {program} and root !!!\n");
    }
    ok
}

/// Runs `openssl ARGS` in `dir` with `input` on standard input; its output.
pub fn openssl(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl output");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
