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
