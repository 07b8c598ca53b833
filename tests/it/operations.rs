//! Running posthorn for years: its logs, read as a log collector reads them.

use crate::support::TestSite;

/// A bounce for a reader, quoting the address in the body, the report and the
/// relay's reply.
const BOUNCE: &str = "From: MAILER-DAEMON@mx.example.org\r
To: bounces@essays.example.com\r
Subject: Undelivered Mail Returned to Sender\r
Message-ID: <bounce-1@mx.example.org>\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r
\r
--b\r
Content-Type: text/plain\r
\r
Your message to minji.kim@example.org could not be delivered.\r
\r
--b\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.org\r
\r
Final-Recipient: rfc822; minji.kim@example.org\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 <minji.kim@example.org>: no such user\r
\r
--b--\r
";

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_a_line_and_never_show_a_whole_address() {
    let site = TestSite::new(None);
    site.append_config("\n[server]\nlog_format = \"json\"\n");
    assert_eq!(
        site.cli(&["subscribers", "add", "minji.kim@example.org"])
            .await
            .code,
        0
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_posthorn"))
        .args(["--config", site.config_path().to_str().unwrap()])
        .args(["bounces", "ingest"])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(BOUNCE.as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("ingest finishes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "{stderr}");
    for line in &lines {
        for key in ["timestamp", "level", "message"] {
            assert!(line.get(key).is_some(), "{key} in {line}");
        }
    }
    let recorded = lines
        .iter()
        .find(|l| l["message"] == "report recorded")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(recorded["recipient"], "m***@example.org", "{recorded}");
    assert!(!stderr.contains("minji.kim@"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_says_so_when_no_tick_has_succeeded_for_three_periods() {
    use posthorn::delivery::Stop;
    use posthorn::schedule::{self, Running, Ticker};
    let site = TestSite::new(None);
    let app = site.app().await;
    let ticker = std::sync::Arc::new(Ticker::new(app.tick().clone(), Stop::default()));
    // Hourly (so that it does not fire while the test runs): three periods
    // are three hours.
    let mut scheduler = schedule::start(
        ticker.clone(),
        &"0 0 * * * *".parse().unwrap(),
        &"0 0 8 * * *".parse().unwrap(),
        chrono_tz::Asia::Seoul,
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    assert_eq!(ticker.health(now).ticking, Running::Yes);
    let never = ticker.health(now + chrono::Duration::hours(4));
    assert_eq!(never.ticking, Running::No, "no tick at all for four hours");
    assert!(!never.ok());

    let ticked = ticker.tick().await.expect("a tick ran");
    assert!(ticked.is_ok());
    let counts = ticker.ticks();
    assert_eq!((counts.ticks, counts.failures), (1, 0));
    let last = counts.last_success.expect("a success");
    let health = |hours| ticker.health(last + chrono::Duration::hours(hours)).ticking;
    assert_eq!(health(2), Running::Yes);
    assert_eq!(health(4), Running::No);

    // The database goes away: ticks fail and are counted as failures.
    app.close().await;
    let failed = ticker.tick().await.expect("a tick ran");
    assert!(failed.is_err());
    assert_eq!(ticker.ticks().failures, 1);
    assert_eq!(ticker.ticks().last_success, Some(last));
    scheduler.shutdown().await.unwrap();
}

/// Samples of an OpenMetrics text, as Prometheus's own Python client parses
/// it: `[name, {labels}, value]`.
fn parse_metrics(text: &str) -> Vec<(String, serde_json::Map<String, serde_json::Value>, f64)> {
    use std::io::Write;
    let script = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        out = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
        print(json.dumps(out))\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (with prometheus-client: pip install prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused it: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<(String, serde_json::Map<String, serde_json::Value>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    samples
}

fn sample(
    samples: &[(String, serde_json::Map<String, serde_json::Value>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(|x| x.as_str()) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

#[cfg_attr(
    no_prometheus_parser,
    ignore = "needs Prometheus's Python parser: pip install prometheus-client"
)]
#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_openmetrics_behind_the_token_and_agree_with_the_log() {
    use crate::support::{post, Action, RunningServer, SmtpServer};
    const TOKEN: &str = "metrics-admin-token-0123456789";
    const SCRAPER: &str = "metrics-only-token-abcdefghij";
    let smtp = SmtpServer::start().await;
    smtp.set_rule(|rcpt| {
        if rcpt.starts_with("gone") {
            Action::RcptReply(550, "5.1.1 no such user".into())
        } else {
            Action::Accept
        }
    });
    let site = TestSite::new(Some(smtp.port));
    site.append_config(&format!(
        "\n[server]\nadmin_token = \"{TOKEN}\"\nmetrics_token = \"{SCRAPER}\"\n"
    ));
    for address in ["reader@example.org", "gone@example.org"] {
        assert_eq!(site.cli(&["subscribers", "add", address]).await.code, 0);
    }
    site.write_post(
        "first.md",
        &post(
            "First",
            chrono::Utc::now() - chrono::Duration::hours(1),
            "Hello.",
        ),
    );
    let s = RunningServer::start_with_idle_worker(&site).await;
    s.app.tick().sync_posts(chrono::Utc::now()).await.unwrap();
    let queued = s
        .client
        .post(s.url("/api/posts/first/send"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 202);
    // The worker's step, as its wake loop would run it.
    s.ticker().tick().await.expect("a tick ran").unwrap();
    let ticks = s.ticker().ticks();
    assert_eq!(
        s.client.get(s.url("/nope")).send().await.unwrap().status(),
        404
    );

    let without = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(without.status(), 401);
    // The metrics token reads /metrics, over and over, and nothing else.
    for _ in 0..8 {
        assert_eq!(s.get_as("/metrics", SCRAPER).await.status(), 200);
    }
    assert_eq!(s.get_as("/api/status", SCRAPER).await.status(), 401);
    let r = s.get_as("/metrics", TOKEN).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    let samples = parse_metrics(&text);
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&samples, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} in\n{text}"))
    };

    // The log's own counts, by status.
    let log: serde_json::Value = s
        .get_as("/api/posts/first/deliveries", TOKEN)
        .await
        .json()
        .await
        .unwrap();
    for status in ["sent", "failed"] {
        let in_log = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == status)
            .count();
        assert_eq!(in_log, 1, "{log}");
        assert_eq!(
            get("posthorn_deliveries", &[("status", status)]),
            in_log as f64
        );
    }
    assert_eq!(get("posthorn_queue_depth", &[]), 0.0);
    assert_eq!(
        get(
            "posthorn_smtp_messages_total",
            &[("relay", "smtp"), ("result", "sent")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "posthorn_smtp_messages_total",
            &[("relay", "smtp"), ("result", "refused")]
        ),
        1.0
    );
    assert_eq!(
        get("posthorn_smtp_seconds_count", &[("relay", "smtp")]),
        2.0
    );
    assert_eq!(ticks.ticks, 1);
    assert_eq!(get("posthorn_ticks_total", &[]), ticks.ticks as f64);
    assert_eq!(get("posthorn_tick_failures_total", &[]), 0.0);
    assert!(get("posthorn_last_tick_success_timestamp_seconds", &[]) > 1.7e9);
    assert_eq!(
        get(
            "posthorn_http_requests_total",
            &[("route", "/api/posts/{slug}/send"), ("code", "202")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "posthorn_http_requests_total",
            &[("route", "other"), ("code", "404")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "posthorn_http_requests_total",
            &[("route", "/metrics"), ("code", "401")]
        ),
        1.0
    );
}

/// Turns connections to this site's PostgreSQL database off (closing those
/// open) or on again, as an administrator taking it away would.
async fn database_reachable(site: &TestSite, on: bool) {
    use sqlx::Connection;
    let url = site.database_url();
    let (server, name) = url.rsplit_once('/').expect("a database URL");
    let admin = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| format!("{server}/postgres"));
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect as admin");
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {on}"))
        .execute(&mut conn)
        .await
        .unwrap();
    if !on {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(name)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_503_while_the_database_is_gone_and_200_when_it_is_back() {
    use crate::support::RunningServer;
    let site = TestSite::new(None);
    if !site.on_postgres() {
        eprintln!("PostgreSQL only (TEST_DATABASE_URL): a SQLite file cannot be taken away from a running server");
        return;
    }
    let s = RunningServer::start_with_worker(&site).await;
    let health = || async {
        let r = s.client.get(s.url("/healthz")).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(health().await.0, 200);

    database_reachable(&site, false).await;
    let started = std::time::Instant::now();
    let (status, body) = health().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "down");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "a health check stays quick: {:?}",
        started.elapsed()
    );

    // Back: the same server answers 200 again, with no restart.
    database_reachable(&site, true).await;
    let mut waited = 0;
    loop {
        let (status, body) = health().await;
        if status == 200 {
            break;
        }
        waited += 1;
        assert!(waited < 40, "still {status}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
