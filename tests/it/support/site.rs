//! A site in a temp folder: its config, posts and templates, its database (a
//! SQLite file, or a PostgreSQL database of its own), and what it wrote.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use posthorn::domain::{EmailAddress, SubscriberStatus};
use posthorn::store::{DeliveryLogRow, Subscriber};
use posthorn::{App, Config};
use tempfile::TempDir;

use super::postgres;

pub struct TestSite {
    _tmp: TempDir,
    root: PathBuf,
    /// The PostgreSQL database made for this site, dropped with it.
    postgres: Option<postgres::TestDatabase>,
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
        let pool = self.pool().await;
        sqlx::query("UPDATE meta SET value = $1 WHERE key = $2")
            .bind(value)
            .bind(key)
            .execute(&pool)
            .await
            .expect("set meta");
        pool.close().await;
    }

    /// Runs one statement on the site's database behind posthorn's back (to
    /// move a stored time into the past, say); the rows it changed.
    pub async fn execute(&self, statement: &str) -> u64 {
        let pool = self.pool().await;
        let done = sqlx::query(statement)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        pool.close().await;
        done.rows_affected()
    }

    /// The one text column of each row `query` gives, read behind posthorn's back.
    pub async fn texts(&self, query: &str) -> Vec<String> {
        let pool = self.pool().await;
        let rows: Vec<String> = sqlx::query_scalar(query)
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        pool.close().await;
        rows
    }

    /// A connection to the site's database of the test's own, not posthorn's.
    async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url())
            .await
            .expect("connect")
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
