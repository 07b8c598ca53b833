//! The delivery engine under faults: every SMTP failure class, backoff on a clock the
//! test drives, bounces, concurrent senders, a kill -9 mid-send, unsubscribing
//! mid-send, digests, graceful stop and the scheduler's non-overlapping ticks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use crate::support::{harness, post, spawn, spawn_with, Action, TestSite};
use chrono::{Duration, Utc};
use posthorn::delivery::Stop;
use posthorn::domain::{EmailAddress, SubscriberStatus};
use posthorn::schedule::Ticker;

fn addresses(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("reader{i:05}@example.com"))
        .collect()
}

async fn add(site: &TestSite, app: &posthorn::App, emails: &[String]) {
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    site.add_subscribers(app, &refs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_smtp_failure_class_is_classified() {
    let (smtp, site, app) =
        spawn_with(|site| site.set_config("timeout_seconds = 5", "timeout_seconds = 1")).await;
    smtp.set_rule(|rcpt| match rcpt.split('@').next().unwrap() {
        "rcpt451" => Action::RcptReply(451, "4.3.0 Try again later".into()),
        "data421" => Action::DataReply(421, "4.7.0 Too many messages, slow down".into()),
        "rcpt550" => Action::RcptReply(550, "5.1.1 No such user".into()),
        "data552" => Action::DataReply(552, "5.3.4 Message too big".into()),
        "drop" => Action::Drop,
        "dropdata" => Action::DropAfterData,
        "stall" => Action::Stall,
        _ => Action::Accept,
    });
    let names = [
        "ok", "rcpt451", "data421", "rcpt550", "data552", "drop", "dropdata", "stall",
    ];
    let emails: Vec<String> = names.iter().map(|n| format!("{n}@example.com")).collect();
    add(&site, &app, &emails).await;
    let now = site.new_post(&app, "p.md", "글").await;
    app.tick().run_once(now, Stop::default()).await.unwrap();

    let log = site.log_by_email(&app, "p").await;
    let status = |name: &str| log[&format!("{name}@example.com")].status;
    assert_eq!(status("ok"), "sent");
    for transient in ["rcpt451", "data421", "drop", "dropdata", "stall"] {
        assert_eq!(
            status(transient),
            "retrying",
            "{transient}: {:?}",
            log[&format!("{transient}@example.com")]
        );
        let row = &log[&format!("{transient}@example.com")];
        assert!(row.next_attempt_at.unwrap() > now, "{transient}: backoff");
        assert!(row.last_error.is_some(), "{transient}: the error is logged");
    }
    assert!(log["stall@example.com"]
        .last_error
        .as_deref()
        .unwrap()
        .contains("no reply within 1s"));
    assert!(log["data421@example.com"]
        .smtp_reply
        .as_deref()
        .unwrap()
        .contains("421"));
    for permanent in ["rcpt550", "data552"] {
        assert_eq!(status(permanent), "failed", "{permanent}");
    }
    assert!(log["rcpt550@example.com"]
        .smtp_reply
        .as_deref()
        .unwrap()
        .contains("5.1.1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_back_off_then_fail_after_max_attempts_and_retry_requeues() {
    let (smtp, site, app) = spawn().await; // max_attempts = 3, retry_backoff_seconds = 60
    smtp.set_rule(|rcpt| {
        if rcpt.starts_with("busy") {
            Action::RcptReply(451, "4.7.1 Greylisted".into())
        } else {
            Action::Accept
        }
    });
    add(&site, &app, &["busy@example.com".to_string()]).await;
    let t0 = site.new_post(&app, "p.md", "글").await;
    let tick = |at| app.tick().run_once(at, Stop::default());

    tick(t0).await.unwrap();
    let row = site.log_by_email(&app, "p").await["busy@example.com"].clone();
    assert_eq!((row.status.as_str(), row.attempts), ("retrying", 1));
    let wait = (row.next_attempt_at.unwrap() - t0).num_seconds();
    assert!(
        (44..=76).contains(&wait),
        "first retry after ~60 s ±25 %, got {wait}"
    );

    // Not yet due: nothing happens. Then the second attempt, ~120 s later.
    assert_eq!(
        tick(t0 + Duration::seconds(30))
            .await
            .unwrap()
            .deliveries
            .retrying,
        0
    );
    let t1 = t0 + Duration::seconds(80);
    tick(t1).await.unwrap();
    let row = site.log_by_email(&app, "p").await["busy@example.com"].clone();
    assert_eq!((row.status.as_str(), row.attempts), ("retrying", 2));
    let wait = (row.next_attempt_at.unwrap() - t1).num_seconds();
    assert!(
        (89..=151).contains(&wait),
        "second retry after ~120 s, got {wait}"
    );

    // The third attempt is the last.
    tick(t1 + Duration::minutes(5)).await.unwrap();
    let row = site.log_by_email(&app, "p").await["busy@example.com"].clone();
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 3));
    assert_eq!(
        tick(t1 + Duration::hours(5))
            .await
            .unwrap()
            .deliveries
            .retrying,
        0,
        "failed stays failed"
    );
    assert_eq!(smtp.len(), 0);

    // `posthorn retry` queues it again with a fresh budget; the server now accepts.
    smtp.set_rule(|_| Action::Accept);
    assert_eq!(
        app.publishing()
            .retry_failed("p", t1 + Duration::hours(6))
            .await
            .unwrap(),
        1
    );
    tick(t1 + Duration::hours(6)).await.unwrap();
    let row = site.log_by_email(&app, "p").await["busy@example.com"].clone();
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("sent", 4),
        "the log keeps every attempt"
    );
    assert_eq!(smtp.count_for("busy@example.com"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_bounces_at_once_and_a_spam_block_never_removes_a_reader() {
    let (smtp, site, app) = spawn().await;
    smtp.set_rule(|rcpt| {
        if rcpt.starts_with("gone") {
            Action::RcptReply(
                550,
                "5.1.1 <gone@example.com>: Recipient address rejected: User unknown".into(),
            )
        } else if rcpt.starts_with("blocked") {
            Action::RcptReply(554, "5.7.1 Message rejected as spam".into())
        } else {
            Action::Accept
        }
    });
    let emails = [
        "gone@example.com",
        "blocked@example.com",
        "here@example.com",
    ]
    .map(String::from);
    add(&site, &app, &emails).await;
    let created = app.ledger().created_at().await.unwrap();
    site.write_post(
        "p1.md",
        &post("글 1", created + Duration::seconds(1), "본문"),
    );
    app.tick()
        .run_once(created + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(
        site.status_of(&app, "gone@example.com").await,
        Some(SubscriberStatus::Bounced),
        "550 5.1.1 is a hard bounce: bounced after the first (hard_after = 1)"
    );
    for i in 2..=4 {
        site.write_post(
            &format!("p{i}.md"),
            &post(&format!("글 {i}"), created + Duration::seconds(i), "본문"),
        );
    }
    let report = app
        .tick()
        .run_once(created + Duration::minutes(2), Stop::default())
        .await
        .unwrap();
    assert!(
        report.issues.iter().all(|i| i.queued == 2),
        "a bounced address is not queued: {:?}",
        report.issues
    );
    assert_eq!(
        site.status_of(&app, "blocked@example.com").await,
        Some(SubscriberStatus::Active),
        "four 554 5.7.1 (blocked as spam) are about the message: the reader stays"
    );
    assert_eq!(smtp.count_for("here@example.com"), 4);
    assert_eq!(smtp.count_for("gone@example.com"), 0);
    let history = app
        .bounces()
        .history("p1", "gone@example.com")
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].kind.as_str(), history[0].outcome.as_str()),
        ("attempt", "failed")
    );
    assert!(
        history[0].detail.as_deref().unwrap_or("").contains("5.1.1"),
        "{history:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_senders_on_one_database_send_each_message_once() {
    let (smtp, site) = harness::site().await;
    let a = site.app().await;
    let b = site.app().await;
    let emails = addresses(2000);
    add(&site, &a, &emails).await;
    let now = site.new_post(&a, "p.md", "글").await;
    a.tick().sync_posts(now).await.unwrap();
    a.tick().create_due_issues(now).await.unwrap();
    let (ra, rb) = tokio::join!(a.tick().deliver_due(now), b.tick().deliver_due(now));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.sent + rb.sent, 2000);
    assert_eq!(smtp.len(), 2000);
    for email in &emails {
        assert_eq!(smtp.count_for(email), 1, "{email}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sender_killed_mid_send_loses_nobody_and_resends_only_what_was_in_flight() {
    let (smtp, site) = harness::site().await;
    smtp.set_delay(StdDuration::from_millis(2));
    let emails = addresses(5000);
    let csv = site.path().join("subscribers.csv");
    std::fs::write(&csv, format!("email\n{}\n", emails.join("\n"))).unwrap();
    assert_eq!(
        site.cli(&["subscribers", "import", csv.to_str().unwrap()])
            .await
            .code,
        0
    );
    site.write_post(
        "essay.md",
        &post("에세이", Utc::now() - Duration::milliseconds(1), "본문"),
    );

    // Ten kills in a row, each after some progress; each run resumes the last.
    // After each kill: how many messages the server holds, and whom the log
    // says were sent (the server stores a message before its 250, so every
    // logged send is among the messages counted).
    const KILLS: usize = 10;
    let mut kills: Vec<(usize, HashSet<String>)> = Vec::new();
    for _ in 0..KILLS {
        let before = smtp.len();
        let mut sender = tokio::process::Command::new(env!("CARGO_BIN_EXE_posthorn"))
            .args([
                "--config",
                site.config_path().to_str().unwrap(),
                "send",
                "essay",
                "--yes",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        smtp.wait_for(before + 300).await;
        sender.start_kill().unwrap(); // SIGKILL
        sender.wait().await.unwrap();
        // A message the sender finished just before it died may still be on
        // its way through the server: count once its sessions have ended.
        smtp.wait_idle().await;
        let received = smtp.len();
        let app = site.app().await;
        let logged: HashSet<String> = site
            .log_by_email(&app, "essay")
            .await
            .into_values()
            .filter(|r| r.status == "sent")
            .map(|r| r.email)
            .collect();
        kills.push((received, logged));
    }
    let at_kill = smtp.len();
    assert!(at_kill < 5000, "killed mid-send ({at_kill} sent)");

    let check = site.cli(&["--json", "check"]).await;
    assert_eq!(check.code, 0, "{}", check.stderr);

    let messages = smtp.messages();
    // What the log called sent is never sent again, by a later run or by the
    // check that finished the issue.
    for (k, (received, logged)) in kills.iter().enumerate() {
        if let Some(again) = messages[*received..]
            .iter()
            .find(|m| logged.contains(&m.rcpt_to[0]))
        {
            panic!(
                "{} was logged as sent at kill {k} and sent again",
                again.rcpt_to[0]
            );
        }
    }
    let mut per_recipient: HashMap<String, Vec<String>> = HashMap::new();
    for m in &messages {
        let id = m.parsed().message_id().unwrap().to_string();
        per_recipient
            .entry(m.rcpt_to[0].clone())
            .or_default()
            .push(id);
    }
    let mut duplicates = 0;
    for email in &emails {
        let ids = per_recipient
            .get(email)
            .unwrap_or_else(|| panic!("{email} got nothing"));
        if ids.len() > 1 {
            duplicates += ids.len() - 1;
            assert!(
                ids.iter().all(|id| id == &ids[0]),
                "{email}: a re-send keeps its Message-ID: {ids:?}"
            );
        }
    }
    // In flight at a kill: sent by that run and not yet logged. Only those may
    // go out twice (a kill's duplicates go out when its leases are taken over,
    // often only at the end, so they are counted over all kills).
    let in_flight: Vec<usize> = kills
        .iter()
        .scan(
            (0, 0),
            |(received_before, logged_before), (received, logged)| {
                let window = (received - *received_before) - (logged.len() - *logged_before);
                (*received_before, *logged_before) = (*received, logged.len());
                Some(window)
            },
        )
        .collect();
    let windows: usize = in_flight.iter().sum();
    assert!(
        duplicates <= windows,
        "{duplicates} duplicates, but only {windows} messages were in flight at the kills ({in_flight:?})"
    );
    // How large a window is depends on how long a commit takes: the
    // concurrency plus a few on an idle machine, a few dozen with the whole
    // suite loading both cores. A recorder that held its results back (each
    // run here sends at least 300) would go far past this.
    assert!(
        windows <= KILLS * 64,
        "{windows} messages in flight over {KILLS} kills ({in_flight:?})"
    );
    let app = site.app().await;
    let log = site.log_by_email(&app, "essay").await;
    assert_eq!(log.len(), 5000);
    assert!(
        log.values().all(|r| r.status == "sent"),
        "every delivery is logged as sent"
    );
    eprintln!(
        "{KILLS} kills: {duplicates} sent twice in all, {:.1} per kill; in flight {in_flight:?}",
        duplicates as f64 / KILLS as f64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsubscribing_during_a_send_stops_the_remaining_messages() {
    let (smtp, site, app) = spawn().await;
    smtp.set_delay(StdDuration::from_millis(2));
    let emails = addresses(2000);
    add(&site, &app, &emails).await;
    let now = site.new_post(&app, "p.md", "글").await;
    app.tick().sync_posts(now).await.unwrap();
    app.tick().create_due_issues(now).await.unwrap();
    // The first messages wait at the server while the last readers leave, so
    // the order does not depend on the machine's speed.
    smtp.close_gate();
    let sender = {
        let app = app.clone();
        tokio::spawn(async move { app.tick().deliver_due(now).await })
    };
    smtp.wait_held(4).await;
    let leaving = &emails[1900..];
    for email in leaving {
        let email = EmailAddress::parse(email).unwrap();
        app.subscriptions()
            .remove(&email, Utc::now())
            .await
            .unwrap();
    }
    smtp.open_gate();
    let report = sender.await.unwrap().unwrap();
    assert_eq!(report.sent, 1900);
    let log = site.log_by_email(&app, "p").await;
    for email in leaving {
        assert_eq!(smtp.count_for(email), 0, "{email}");
        assert_eq!(log[email].status, "skipped");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_mode_sends_one_email_with_every_new_post() {
    let (smtp, site) = harness::site().await;
    // The site's default for readers who have not chosen: the digest, on Saturdays.
    site.append_config("[schedule]\nmode = \"digest\"\ndigest = \"0 0 9 * * Sat\"");
    let app = site.app().await;
    add(
        &site,
        &app,
        &["a@example.com".to_string(), "b@example.com".to_string()],
    )
    .await;
    let created = app.ledger().created_at().await.unwrap();
    let now = created + Duration::minutes(1);
    let first = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(first.deliveries.sent, 0, "nothing new, nothing sent");
    for (i, title) in ["첫째 글", "둘째 글", "셋째 글"].iter().enumerate() {
        site.write_post(
            &format!("p{i}.md"),
            &post(
                title,
                created + Duration::seconds(i as i64 + 1),
                &format!("{title}의 본문"),
            ),
        );
    }
    let report = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(
        report.deliveries.sent, 0,
        "digest readers wait for the digest"
    );
    let saturday = posthorn::config::next_time(
        &"0 0 9 * * Sat".parse().unwrap(),
        chrono_tz::Asia::Seoul,
        now,
    )
    .unwrap();
    let report = app
        .tick()
        .run_once(saturday + Duration::seconds(1), Stop::default())
        .await
        .unwrap();
    let digests: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.kind == posthorn::domain::IssueKind::Digest)
        .collect();
    assert_eq!(digests.len(), 1, "one digest: {:?}", report.issues);
    assert_eq!(report.deliveries.sent, 2, "one email per subscriber");
    let messages = smtp.messages();
    let m = messages[0].parsed();
    let subject = m.subject().unwrap().to_string();
    assert!(subject.contains("새 글 3편"), "{subject}");
    let text = m.body_text(0).unwrap().to_string();
    for title in ["첫째 글", "둘째 글", "셋째 글"] {
        assert!(
            text.contains(title) && text.contains(&format!("{title}의 본문")),
            "{title} in {text}"
        );
    }
    assert!(
        text.find("첫째 글").unwrap() < text.find("셋째 글").unwrap(),
        "oldest first"
    );
    // Nothing new by the next Saturday: no digest at all.
    let next = posthorn::config::next_time(
        &"0 0 9 * * Sat".parse().unwrap(),
        chrono_tz::Asia::Seoul,
        saturday,
    )
    .unwrap();
    let quiet = app
        .tick()
        .run_once(next + Duration::seconds(1), Stop::default())
        .await
        .unwrap();
    assert!(quiet.issues.is_empty(), "{:?}", quiet.issues);
    assert_eq!(smtp.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_stop_records_what_was_sent_and_leaves_the_rest_queued() {
    let (smtp, site, app) = spawn().await;
    let emails = addresses(1000);
    add(&site, &app, &emails).await;
    let now = site.new_post(&app, "p.md", "글").await;
    app.tick().sync_posts(now).await.unwrap();
    app.tick().create_due_issues(now).await.unwrap();
    // Every worker's first message waits at the server: four sends are in flight.
    smtp.close_gate();
    let stop = Stop::default();
    let sender = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move { app.tick().run_once(now, stop).await })
    };
    smtp.wait_held(4).await;
    stop.stop();
    smtp.open_gate();
    let report = sender.await.unwrap().unwrap().deliveries;
    assert_eq!(
        report.sent, 4,
        "the sends in flight finish and are recorded"
    );
    assert_eq!(smtp.len(), 4);
    let log = site.log_by_email(&app, "p").await;
    assert!(
        log.values()
            .all(|r| r.status == "sent" || r.status == "queued"),
        "nothing left mid-send"
    );
    let queued = log.values().filter(|r| r.status == "queued").count();
    assert_eq!(queued, 996);

    let rest = app.tick().deliver_due(now).await.unwrap();
    assert_eq!(rest.sent as usize, queued);
    for email in &emails {
        assert_eq!(smtp.count_for(email), 1, "{email}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tick_still_running_is_not_started_twice() {
    let (smtp, site, app) = spawn().await;
    add(&site, &app, &addresses(200)).await;
    // Dated just after the database was made: new, and already published.
    let created = app.ledger().created_at().await.unwrap();
    site.write_post(
        "p.md",
        &post("글", created + Duration::milliseconds(1), "본문"),
    );
    smtp.close_gate();
    let ticker = Arc::new(Ticker::new(app.tick().clone(), Stop::default()));
    let first = {
        let ticker = ticker.clone();
        tokio::spawn(async move { ticker.tick().await })
    };
    smtp.wait_held(1).await;
    assert!(
        ticker.tick().await.is_none(),
        "the second tick is skipped while the first runs"
    );
    smtp.open_gate();
    let report = first.await.unwrap().expect("the first tick ran").unwrap();
    assert_eq!(report.deliveries.sent, 200);
    assert_eq!(smtp.len(), 200);
    let again = ticker
        .tick()
        .await
        .expect("runs once the first is done")
        .unwrap();
    assert_eq!(again.deliveries.sent, 0);
}

#[test]
fn a_bad_cron_expression_is_a_clear_config_error() {
    let site = TestSite::new(None);
    site.append_config("[schedule]\ncheck = \"every ten minutes\"");
    let err = posthorn::Config::load(&site.config_path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("schedule.check") && err.contains("every ten minutes"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_deferring_ten_percent_ends_with_everyone_delivered_once() {
    use rand::{Rng, SeedableRng};
    let (smtp, site, app) =
        spawn_with(|site| site.set_config("max_attempts = 3", "max_attempts = 6")).await;
    // 451 for a random tenth of the attempts, from a fixed seed.
    let rng = std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(7));
    smtp.set_rule(move |_| {
        if rng.lock().unwrap().random_bool(0.1) {
            Action::RcptReply(451, "4.7.1 Please try again later".into())
        } else {
            Action::Accept
        }
    });
    let emails = addresses(2000);
    add(&site, &app, &emails).await;
    let created = app.ledger().created_at().await.unwrap();
    site.write_post("p.md", &post("글", created + Duration::seconds(1), "본문"));
    let mut now = created + Duration::minutes(1);
    let first = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert!(
        first.deliveries.retrying > 100,
        "about a tenth deferred: {:?}",
        first.deliveries
    );
    // Later ticks (the clock moved, not waited for) deliver the rest.
    for _ in 0..6 {
        now += Duration::hours(1);
        app.tick().run_once(now, Stop::default()).await.unwrap();
    }
    let log = site.log_by_email(&app, "p").await;
    assert!(
        log.values().all(|r| r.status == "sent"),
        "everyone delivered"
    );
    let retried = log.values().filter(|r| r.attempts > 1).count();
    assert!(retried > 100, "retries are visible in the log: {retried}");
    for email in &emails {
        assert_eq!(smtp.count_for(email), 1, "{email}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_worker_processes_share_one_issue_and_send_each_message_once() {
    let (smtp, site) = harness::site().await;
    smtp.set_delay(StdDuration::from_millis(1));
    eprintln!(
        "three workers on {}",
        if site.on_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let emails = addresses(20_000);
    let csv = site.path().join("subscribers.csv");
    std::fs::write(&csv, format!("email\n{}\n", emails.join("\n"))).unwrap();
    assert_eq!(
        site.cli(&["subscribers", "import", csv.to_str().unwrap()])
            .await
            .code,
        0
    );
    site.write_post(
        "essay.md",
        &post("에세이", Utc::now() - Duration::milliseconds(1), "본문"),
    );

    let (a, b, c) = tokio::join!(
        site.cli(&["--json", "check"]),
        site.cli(&["--json", "check"]),
        site.cli(&["--json", "check"])
    );
    let mut sent = Vec::new();
    let mut created = 0;
    for worker in [&a, &b, &c] {
        assert_eq!(worker.code, 0, "{}", worker.stderr);
        let report: serde_json::Value = serde_json::from_str(&worker.stdout).unwrap();
        sent.push(report["deliveries"]["sent"].as_u64().unwrap());
        created += report["issues"].as_array().unwrap().len();
    }
    assert_eq!(
        created, 1,
        "one worker created the issue; the others found it"
    );
    eprintln!("sent per worker: {sent:?}");
    assert_eq!(sent.iter().sum::<u64>(), 20_000);
    assert!(
        sent.iter().all(|n| *n > 0),
        "every worker sent some: {sent:?}"
    );
    assert_eq!(smtp.len(), 20_000);
    let mut seen = std::collections::HashSet::new();
    for m in smtp.messages() {
        assert!(
            seen.insert(m.rcpt_to[0].clone()),
            "{} got it twice",
            m.rcpt_to[0]
        );
    }
    assert_eq!(seen.len(), 20_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_subscriber_with_many_issues_in_one_batch_gets_them_all() {
    let (smtp, site) = harness::site().await;
    // One connection, so one claim takes every delivery at once; twenty issues,
    // not one digest of twenty.
    site.set_config("concurrency = 4", "concurrency = 1");
    site.append_config("[schedule]\nmax_new_per_tick = 100");
    let app = site.app().await;
    add(&site, &app, &["only@example.com".to_string()]).await;
    let created = app.ledger().created_at().await.unwrap();
    for i in 0..20 {
        site.write_post(
            &format!("p{i}.md"),
            &post(
                &format!("글 {i}"),
                created + Duration::seconds(i + 1),
                "본문",
            ),
        );
    }
    let report = app
        .tick()
        .run_once(created + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.issues.len(), 20);
    assert_eq!(
        (report.deliveries.sent, report.deliveries.skipped),
        (20, 0),
        "{:?}",
        report.deliveries
    );
    assert_eq!(smtp.count_for("only@example.com"), 20);
}
