//! Several relays over real SMTP: weighted shares, one stopped mid-send, one
//! refusing from the start, a standby, and every relay down. Each reader gets
//! the message once, and the log names the relay that took it.

use std::collections::HashMap;

use crate::support::{SmtpServer, TestSite};
use posthorn::delivery::Stop;

/// A site whose `[smtp]` is `main`, with `[relays.second]` beside it and
/// `[relays.spare]` as a standby (weight 0). Two sessions each.
async fn three_relays() -> (SmtpServer, SmtpServer, SmtpServer, TestSite) {
    let (main, second, spare) = (
        SmtpServer::start().await,
        SmtpServer::start().await,
        SmtpServer::start().await,
    );
    let site = TestSite::new(Some(main.port));
    site.set_config("concurrency = 4", "concurrency = 2");
    for (name, server, weight) in [("second", &second, 1), ("spare", &spare, 0)] {
        site.append_config(&format!(
            "[relays.{name}]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconcurrency = 2\n\
             rate_per_second = 0\ntimeout_seconds = 5\nweight = {weight}\n",
            server.port
        ));
    }
    (main, second, spare, site)
}

fn readers(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("reader{i:03}@example.com"))
        .collect()
}

/// Sends the new post to `emails` and returns the log by address.
async fn send(
    site: &TestSite,
    app: &posthorn::App,
    emails: &[String],
) -> HashMap<String, posthorn::store::DeliveryLogRow> {
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    site.add_subscribers(app, &refs).await;
    let now = site.new_post(app, "p.md", "여러 중계").await;
    app.tick()
        .run_once(now, Stop::default())
        .await
        .expect("tick");
    site.log_by_email(app, "p").await
}

/// How the app has found the relay `name`.
fn relay_view(app: &posthorn::App, name: &str) -> posthorn::delivery::RelayView {
    app.relays()
        .into_iter()
        .find(|v| v.name.as_str() == name)
        .unwrap_or_else(|| panic!("no relay {name}"))
}

/// Every reader's copies over all the servers.
fn copies(servers: &[&SmtpServer], email: &str) -> usize {
    servers.iter().map(|s| s.count_for(email)).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_weighted_relays_share_the_sending_and_the_standby_waits() {
    let (main, second, spare, site) = three_relays().await;
    let app = site.app().await;
    let emails = readers(40);
    let log = send(&site, &app, &emails).await;
    for email in &emails {
        assert_eq!(copies(&[&main, &second, &spare], email), 1, "{email}");
        assert_eq!(log[email].status, posthorn::domain::DeliveryStatus::Sent);
    }
    // Equal weights: an even share, give or take what the sessions were doing.
    assert!((15..=25).contains(&main.len()), "main took {}", main.len());
    assert_eq!(main.len() + second.len(), 40);
    assert_eq!(
        spare.len(),
        0,
        "the standby is not used while others are up"
    );
    let by_relay = |name: &str| {
        log.values()
            .filter(|r| r.relay.as_deref() == Some(name))
            .count()
    };
    assert_eq!(by_relay("smtp"), main.len());
    assert_eq!(by_relay("second"), second.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_stopped_mid_send_hands_its_mail_to_the_other_and_nothing_goes_twice() {
    let (main, second, spare, site) = three_relays().await;
    let app = site.app().await;
    let emails = readers(40);
    // `main` holds its first messages at the end of DATA; it is stopped while
    // they are in flight, then lets them through.
    main.close_gate();
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    site.add_subscribers(&app, &refs).await;
    let now = site.new_post(&app, "p.md", "멈춘 중계").await;
    let run = {
        let app = app.clone();
        tokio::spawn(async move { app.tick().run_once(now, Stop::default()).await })
    };
    main.wait_held(2).await;
    main.stop();
    main.open_gate();
    run.await.expect("joined").expect("tick");

    let log = site.log_by_email(&app, "p").await;
    for email in &emails {
        assert_eq!(
            copies(&[&main, &second, &spare], email),
            1,
            "{email} is sent exactly once"
        );
        let row = &log[email];
        assert_eq!(
            row.status,
            posthorn::domain::DeliveryStatus::Sent,
            "{email}"
        );
        // A failover is not an attempt against the reader.
        assert_eq!(row.attempts, 1, "{email}");
    }
    assert_eq!(main.len(), 2, "only what was in flight went through main");
    assert_eq!(second.len(), 38);
    assert_eq!(spare.len(), 0);
    for (email, row) in &log {
        let want = if main.count_for(email) == 1 {
            "smtp"
        } else {
            "second"
        };
        assert_eq!(row.relay.as_deref(), Some(want), "{email}");
    }
    // The history names the relay of each attempt.
    let history = app
        .bounces()
        .history("p", &emails[0])
        .await
        .expect("history");
    assert!(history.iter().any(|e| e.relay.is_some()), "{history:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_refusing_from_the_start_is_set_aside_and_the_standby_takes_over_when_all_are_down()
{
    let (main, second, spare, site) = three_relays().await;
    main.set_greeting("421 4.3.2 Service not available, closing channel");
    let app = site.app().await;
    let emails = readers(20);
    let log = send(&site, &app, &emails).await;
    assert_eq!(main.len(), 0);
    assert_eq!(second.len(), 20);
    assert_eq!(spare.len(), 0);
    for email in &emails {
        assert_eq!(log[email].relay.as_deref(), Some("second"));
        assert_eq!(log[email].attempts, 1, "a refusing relay costs no attempt");
    }
    // `status` counts the sending by relay.
    let statuses = app
        .ledger()
        .issue_statuses(Some("p"))
        .await
        .expect("status");
    let by_relay = &statuses[0].by_relay;
    assert_eq!(
        by_relay["second"][&posthorn::domain::DeliveryStatus::Sent],
        20
    );
    assert!(!by_relay.contains_key("smtp"), "{by_relay:?}");
    let main_view = relay_view(&app, "smtp");
    assert_eq!(main_view.state, posthorn::delivery::RelayState::SetAside);
    assert!(main_view.last_error.as_deref().unwrap().contains("421"));

    // Now the second one goes too: only the standby is left.
    second.stop();
    let more = readers(30)[20..].to_vec();
    let refs: Vec<&str> = more.iter().map(String::as_str).collect();
    site.add_subscribers(&app, &refs).await;
    let now = site.new_post(&app, "q.md", "대기 중계").await;
    app.tick()
        .run_once(now, Stop::default())
        .await
        .expect("tick");
    let log = site.log_by_email(&app, "q").await;
    for email in emails.iter().chain(&more) {
        assert_eq!(spare.count_for(email), 1, "{email}");
        assert_eq!(log[email].relay.as_deref(), Some("spare"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_every_relay_down_deliveries_wait_and_none_is_lost() {
    let (main, second, spare, site) = three_relays().await;
    for s in [&main, &second, &spare] {
        s.stop();
    }
    let app = site.app().await;
    let emails = readers(10);
    let log = send(&site, &app, &emails).await;
    for email in &emails {
        let row = &log[email];
        assert_eq!(
            row.status,
            posthorn::domain::DeliveryStatus::Queued,
            "{email}"
        );
        assert_eq!(row.attempts, 0, "no attempt is counted against {email}");
        assert!(row.next_attempt_at.is_some(), "it waits with backoff");
    }
    // `check` says plainly that every relay is set aside, and why.
    let check = site.cli(&["check"]).await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    for name in ["smtp", "second", "spare"] {
        assert!(
            check.stdout.contains(&format!("relay {name}: set aside")),
            "{}",
            check.stdout
        );
    }
    // The first message each session tried says why; the rest wait beside it.
    assert!(
        log.values().any(|r| r
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("every relay"))),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_that_accepts_and_never_answers_times_out_and_is_set_aside() {
    // A listener that takes connections and says nothing, ever.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let second = SmtpServer::start().await;
    let site = TestSite::new(Some(port));
    site.set_config("timeout_seconds = 5", "timeout_seconds = 1");
    site.append_config(&format!(
        "[relays.second]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconcurrency = 2\n\
         rate_per_second = 0\ntimeout_seconds = 5\n",
        second.port
    ));
    let app = site.app().await;
    let emails = readers(12);
    let log = send(&site, &app, &emails).await;
    for email in &emails {
        assert_eq!(second.count_for(email), 1, "{email}");
        assert_eq!(log[email].relay.as_deref(), Some("second"));
        assert_eq!(log[email].attempts, 1);
    }
    let silent_view = relay_view(&app, "smtp");
    assert_eq!(silent_view.state, posthorn::delivery::RelayState::SetAside);
    assert!(
        silent_view
            .last_error
            .as_deref()
            .unwrap()
            .contains("within 1s"),
        "{:?}",
        silent_view.last_error
    );
    held.abort();
}
