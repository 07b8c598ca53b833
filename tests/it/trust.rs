//! The trust boundary: secrets that cannot be empty or short, and a worker and
//! scheduler whose stopping `/healthz` tells.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use posthorn::delivery::Stop;
use posthorn::domain::SubscriberStatus;
use posthorn::schedule::{self, Running, Ticker};
use posthorn::tokens::{Purpose, Tokens};
use serde_json::Value;

use crate::support::{free_port, get_text, TestSite};

/// `posthorn serve` with extra environment, killed when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(site: &TestSite, env: &[(&str, &str)]) -> Serve {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_posthorn"))
            .args(["--config", site.config_path().to_str().unwrap(), "serve"])
            .env("RUST_LOG", "warn")
            .env("POSTHORN_SERVER__BIND", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run posthorn serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("serve listens within 30 s");
        Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_secret_stops_the_start_and_an_empty_one_is_unset() {
    let site = TestSite::new(None);
    // Too short: an error at start that names the key.
    for (variable, key) in [
        ("POSTHORN_SERVER__SECRET", "secret"),
        ("POSTHORN_SERVER__ADMIN_TOKEN", "admin_token"),
        ("POSTHORN_BOUNCES__WEBHOOK_SECRET", "webhook_secret"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_posthorn"))
            .args(["--config", site.config_path().to_str().unwrap(), "status"])
            .env(variable, "hunter2")
            .output()
            .expect("run posthorn");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{variable}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(key) && stderr.contains("16"),
            "{variable}: {stderr}"
        );
    }

    // Empty, as an unset variable in a compose file gives: the API and the
    // dashboard are off, and links are signed with the stored secret, never an
    // empty key.
    let app = site.app().await;
    site.add_subscribers(&app, &["reader@example.org"]).await;
    let reader = site.subscriber(&app, "reader@example.org").await.unwrap();
    app.close().await;
    let serve = Serve::start(
        &site,
        &[
            ("POSTHORN_SERVER__ADMIN_TOKEN", ""),
            ("POSTHORN_SERVER__SECRET", ""),
        ],
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for auth in [None, Some("Bearer "), Some("Bearer")] {
        let mut request = client.get(format!("{}/api/subscribers", serve.base));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let r = request.send().await.unwrap();
        assert!(
            r.status().is_client_error(),
            "{auth:?}: {} {}",
            r.status(),
            r.text().await.unwrap()
        );
    }
    let admin = get_text(&client, &format!("{}/admin", serve.base)).await;
    assert!(admin.contains("POSTHORN_SERVER__ADMIN_TOKEN"), "{admin}");

    let forged = Tokens::new(b"").sign(Purpose::Unsubscribe, reader.id, None);
    let r = client
        .post(format!("{}/unsubscribe/{forged}", serve.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    drop(serve);
    let app = site.app().await;
    assert_eq!(
        site.status_of(&app, "reader@example.org").await,
        Some(SubscriberStatus::Active)
    );
}

async fn health(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_says_503_once_the_worker_or_the_scheduler_stops() {
    let site = TestSite::new(None);
    let app = site.app().await;
    let ticker = std::sync::Arc::new(Ticker::new(app.tick().clone(), Stop::default()));
    let wakes = tokio::spawn(ticker.clone().serve_wakes());
    // Midnight only: the scheduler is late once a midnight has passed unfired.
    let mut scheduler = schedule::start(
        ticker.clone(),
        &"0 0 0 * * *".parse().unwrap(),
        &"0 0 8 * * *".parse().unwrap(),
        chrono_tz::Asia::Seoul,
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = posthorn::web::Server::on(app.clone(), listener)
        .await
        .unwrap()
        .with_worker(ticker.clone());
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let (status, body) = health(&client, &base).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["worker"], "yes");
    assert_eq!(body["scheduler"], "yes");
    assert_eq!(body["database"], "ok");

    // A scheduler whose job has not fired for a day has stopped.
    let later = ticker.health(Utc::now() + chrono::Duration::days(2));
    assert_eq!(later.scheduler, Running::No);
    assert!(!later.ok());
    scheduler.shutdown().await.unwrap();

    // The worker stops: the health check says so, with a reason.
    ticker.stop().await;
    wakes.await.unwrap();
    // The loop has returned, so its flag is down already.
    let (status, body) = health(&client, &base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["worker"], "no");
    assert!(body["problems"].to_string().contains("worker"), "{body}");
    let _ = stop_server.send(());
    app.close().await;
}
