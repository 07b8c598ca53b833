//! A subscriber's whole life over real HTTP and SMTP: subscribe, confirm by the
//! emailed link, receive, unsubscribe in one click. Plus forgeries, bots, floods,
//! bad input and the admin API.

use crate::support::{harness, parse_message, post, serve, Action, RunningServer, TestSite};
use chrono::{Duration, Utc};
use posthorn::delivery::Stop;
use posthorn::domain::SubscriberStatus;
use posthorn::tokens::Purpose;
use reqwest::StatusCode;

async fn subscribe(s: &RunningServer, email: &str, name: &str) -> reqwest::Response {
    s.client
        .post(s.url("/subscribe"))
        .form(&[("email", email), ("name", name), ("website", "")])
        .send()
        .await
        .unwrap()
}

/// Waits until the work the form handed off is done: the address recorded and
/// the confirmation sent (or not).
async fn settled(s: &RunningServer) {
    s.app.subscriptions().settled().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_confirm_receive_and_unsubscribe_in_one_click() {
    let (smtp, site, s) = serve().await;

    let form = s.client.get(s.url("/subscribe")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    assert!(
        form.contains("<html lang=\"ko\">") && form.contains("구독하기"),
        "Korean page"
    );
    assert!(form.contains("name=\"website\""), "honeypot field");

    let answer = subscribe(&s, "Reader@Example.com", "독자").await;
    assert_eq!(answer.status(), 200);
    let new_answer = answer.text().await.unwrap();
    assert!(new_answer.contains("메일함을 확인해 주세요"));
    settled(&s).await;
    assert_eq!(
        site.status_of(&s.app, "reader@example.com").await,
        Some(SubscriberStatus::Pending)
    );

    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "one confirmation email");
    assert_eq!(mails[0].rcpt_to, vec!["Reader@example.com".to_string()]);
    let parsed = mails[0].parsed();
    assert!(parsed.subject().unwrap().contains("구독을 확인해 주세요"));
    assert!(
        parsed.header("List-Unsubscribe").is_none(),
        "a confirmation is not a list message"
    );
    let confirm = mails[0].link(&s.url("/confirm/"));

    // Asking again gets the same answer and no second email within ten minutes.
    let again = subscribe(&s, "reader@example.com", "").await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.text().await.unwrap(),
        new_answer,
        "pending looks like new"
    );
    settled(&s).await;
    assert_eq!(smtp.messages().len(), 1);

    let confirmed = s.client.get(&confirm).send().await.unwrap();
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed
        .text()
        .await
        .unwrap()
        .contains("구독이 시작되었습니다"));
    assert_eq!(
        site.status_of(&s.app, "reader@example.com").await,
        Some(SubscriberStatus::Active)
    );
    assert_eq!(
        s.client.get(&confirm).send().await.unwrap().status(),
        200,
        "confirming twice is fine"
    );

    // An active address gets the very same answer, and no email.
    let active = subscribe(&s, "reader@example.com", "").await;
    assert_eq!(
        active.text().await.unwrap(),
        new_answer,
        "no way to probe who subscribes"
    );
    settled(&s).await;
    assert_eq!(smtp.messages().len(), 1);

    // The next essay arrives, with a working one-click unsubscribe.
    let created = s.app.ledger().created_at().await.unwrap();
    site.write_post(
        "next.md",
        &post("다음 글", created + Duration::seconds(1), "본문"),
    );
    s.app
        .tick()
        .run_once(created + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    let essay = smtp.messages().last().unwrap().clone();
    assert_eq!(essay.parsed().subject().unwrap(), "다음 글");
    let unsubscribe = essay
        .parsed()
        .header_raw("List-Unsubscribe")
        .unwrap()
        .trim()
        .trim_matches(['<', '>'])
        .to_string();
    assert!(unsubscribe.starts_with(&s.url("/unsubscribe/")));

    // A link scanner fetching the link changes nothing; the page has one button.
    let page = s.client.get(&unsubscribe).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("method=\"post\"") && page.contains("id=\"unsubscribe\""));
    assert_eq!(
        site.status_of(&s.app, "reader@example.com").await,
        Some(SubscriberStatus::Active)
    );

    // RFC 8058: POST with List-Unsubscribe=One-Click, no cookies, 200, no redirect.
    let one_click = s
        .client
        .post(&unsubscribe)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), 200);
    assert!(one_click
        .text()
        .await
        .unwrap()
        .contains("구독을 해지했습니다"));
    assert_eq!(
        site.status_of(&s.app, "reader@example.com").await,
        Some(SubscriberStatus::Unsubscribed)
    );
    let multipart = reqwest::multipart::Form::new().text("List-Unsubscribe", "One-Click");
    let again = s
        .client
        .post(&unsubscribe)
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "idempotent, multipart accepted");

    // The next issue skips them.
    site.write_post(
        "after.md",
        &post("그 다음 글", created + Duration::seconds(2), "본문"),
    );
    let before = smtp.messages().len();
    let report = s
        .app
        .tick()
        .run_once(created + Duration::minutes(2), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.sent, 0);
    assert_eq!(smtp.messages().len(), before);

    // Subscribing again after leaving starts a new double opt-in.
    assert_eq!(subscribe(&s, "reader@example.com", "").await.status(), 200);
    settled(&s).await;
    assert_eq!(
        site.status_of(&s.app, "reader@example.com").await,
        Some(SubscriberStatus::Pending)
    );
    assert_eq!(
        smtp.messages().len(),
        before + 1,
        "a new confirmation email"
    );
    let reconfirm = smtp.messages().last().unwrap().link(&s.url("/confirm/"));
    assert_eq!(s.client.get(&reconfirm).send().await.unwrap().status(), 200);
    assert_eq!(
        site.status_of(&s.app, "reader@example.com").await,
        Some(SubscriberStatus::Active)
    );
}

/// `POST /subscribe`: its answer and how long it took.
async fn timed_subscribe(
    s: &RunningServer,
    email: &str,
) -> (StatusCode, String, std::time::Duration) {
    let started = std::time::Instant::now();
    let r = subscribe(s, email, "").await;
    let status = r.status();
    let body = r.text().await.unwrap();
    (status, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_address_is_answered_as_fast_as_an_active_one_and_the_same_way() {
    let (smtp, site, s) = serve().await;
    site.add_subscribers(&s.app, &["active@example.com"]).await;
    // The mail server takes each message and then holds its answer: a slow server.
    smtp.close_gate();

    let (new_status, new_body, new_took) = timed_subscribe(&s, "new@example.com").await;
    let (active_status, active_body, active_took) = timed_subscribe(&s, "active@example.com").await;
    assert_eq!(new_status, StatusCode::OK);
    assert_eq!(active_status, StatusCode::OK);
    assert_eq!(new_body, active_body, "the same page for both");
    assert!(new_body.contains("메일함을 확인해 주세요"), "{new_body}");
    // The answer came while the confirmation was still at the mail server (the
    // gate is shut), so it did not wait for the mail: within a second of the
    // active address's, where waiting would take the SMTP timeout (5 s).
    assert!(
        new_took < active_took + std::time::Duration::from_secs(1),
        "new {new_took:?}, active {active_took:?}"
    );
    smtp.wait_held(1).await;
    assert_eq!(smtp.len(), 0, "nothing delivered yet");

    // The server answers again: the confirmation arrives, once, to the new address.
    smtp.open_gate();
    smtp.wait_for(1).await;
    settled(&s).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].rcpt_to, vec!["new@example.com".to_string()]);
    let confirm = mails[0].link(&s.url("/confirm/"));
    assert_eq!(s.client.get(&confirm).send().await.unwrap().status(), 200);
    assert_eq!(
        site.status_of(&s.app, "new@example.com").await,
        Some(SubscriberStatus::Active)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmation_the_server_refused_can_be_asked_for_again() {
    let (smtp, site, s) = serve().await;
    smtp.set_rule(|_| Action::RcptReply(421, "4.3.2 service not available".into()));

    // The mail server refuses: the reader still gets the usual answer.
    let (status, body, _) = timed_subscribe(&s, "later@example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("메일함을 확인해 주세요"), "{body}");
    settled(&s).await;
    assert_eq!(smtp.len(), 0);
    assert_eq!(
        site.status_of(&s.app, "later@example.com").await,
        Some(SubscriberStatus::Pending)
    );

    // The failure gave the claim back: asking again (within ten minutes) mails it.
    smtp.set_rule(|_| Action::Accept);
    assert_eq!(subscribe(&s, "later@example.com", "").await.status(), 200);
    smtp.wait_for(1).await;
    assert_eq!(smtp.count_for("later@example.com"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unsubscribing_skips_queued_deliveries_at_once() {
    let (smtp, site, s) = serve().await;
    site.add_subscribers(&s.app, &["a@example.com", "b@example.com"])
        .await;
    let created = s.app.ledger().created_at().await.unwrap();
    site.write_post("p.md", &post("글", created + Duration::seconds(1), "본문"));
    let now = created + Duration::minutes(1);
    s.app.tick().sync_posts(now).await.unwrap();
    let issues = s.app.tick().create_due_issues(now).await.unwrap();
    let b = site.subscriber(&s.app, "b@example.com").await.unwrap();
    let token = s
        .app
        .links()
        .tokens()
        .sign(Purpose::Unsubscribe, b.id, None);
    let r = s
        .client
        .post(s.url(&format!("/unsubscribe/{token}")))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(issues.len(), 1);
    let log = site.log(&s.app, "p").await;
    let row = log.iter().find(|r| r.email == "b@example.com").unwrap();
    assert_eq!(row.status, "skipped");
    assert_eq!(row.last_error.as_deref(), Some("unsubscribed"));
    let report = s.app.tick().deliver_due(now).await.unwrap();
    assert_eq!(report.sent, 1);
    assert_eq!(smtp.count_for("b@example.com"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_expired_and_wrong_purpose_links_change_nothing() {
    let (_smtp, site, s) = serve().await;
    assert_eq!(subscribe(&s, "p@example.com", "").await.status(), 200);
    settled(&s).await;
    let p = site.subscriber(&s.app, "p@example.com").await.unwrap();
    site.add_subscribers(&s.app, &["active@example.com"]).await;
    let active = site.subscriber(&s.app, "active@example.com").await.unwrap();

    let tokens = s.app.links().tokens();
    let expired = tokens.sign(
        Purpose::Confirm,
        p.id,
        Some(Utc::now() - Duration::hours(1)),
    );
    let r = s
        .client
        .get(s.url(&format!("/confirm/{expired}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("유효 기간"));

    let wrong_purpose = tokens.sign(Purpose::Unsubscribe, p.id, None);
    assert_eq!(
        s.client
            .get(s.url(&format!("/confirm/{wrong_purpose}")))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let confirm_as_unsubscribe = tokens.sign(
        Purpose::Confirm,
        active.id,
        Some(Utc::now() + Duration::days(1)),
    );
    let r = s
        .client
        .post(s.url(&format!("/unsubscribe/{confirm_as_unsubscribe}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let other_key = posthorn::tokens::Tokens::new(b"not the site's key");
    let forged = other_key.sign(Purpose::Unsubscribe, active.id, None);
    let good = tokens.sign(Purpose::Unsubscribe, active.id, None);
    for bad in [
        forged.as_str(),
        &good[..good.len() - 4],
        "x",
        "%00%ff",
        "..%2F..%2Fetc",
    ] {
        let r = s
            .client
            .post(s.url(&format!("/unsubscribe/{bad}")))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
        let r = s
            .client
            .get(s.url(&format!("/confirm/{bad}")))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
    }
    assert_eq!(
        site.status_of(&s.app, "p@example.com").await,
        Some(SubscriberStatus::Pending)
    );
    assert_eq!(
        site.status_of(&s.app, "active@example.com").await,
        Some(SubscriberStatus::Active)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_floods_and_bad_input_get_4xx_and_store_nothing_bad() {
    let (smtp, site, s) = serve().await;

    // The honeypot: the usual answer, and nothing stored or sent.
    let bot = s
        .client
        .post(s.url("/subscribe"))
        .form(&[("email", "bot@example.com"), ("website", "http://spam")])
        .send()
        .await
        .unwrap();
    assert_eq!(bot.status(), 200);
    settled(&s).await;
    assert_eq!(site.status_of(&s.app, "bot@example.com").await, None);

    let long = "a".repeat(10_000);
    let bad: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("email", "<script>alert(1)</script>".into())], "html"),
        (
            vec![("email", "x'; DROP TABLE subscribers; --@example.com".into())],
            "sql",
        ),
        (
            vec![("email", format!("{long}@example.com"))],
            "10 KB address",
        ),
        (
            vec![("email", "ok@example.com".into()), ("name", long.clone())],
            "10 KB name",
        ),
        (vec![("email", String::new())], "empty"),
    ];
    for (fields, what) in &bad {
        let r = s
            .client
            .post(s.url("/subscribe"))
            .form(fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{what}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("<script>alert"),
            "{what}: input is escaped when shown again"
        );
    }
    let invalid_utf8 = s
        .client
        .post(s.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"email=%ff%fe%fd@example.com&name=%c3%28".to_vec())
        .send()
        .await
        .unwrap();
    assert!(invalid_utf8.status().is_client_error());
    let huge = s
        .client
        .post(s.url("/subscribe"))
        .form(&[("email", "a".repeat(100_000))])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // HTML in a name is stored as text. The confirmation carries nothing the
    // requester typed: a name is free text a stranger could fill with a
    // message of their own and have the site mail it to anyone.
    let typed = "<b>김</b> & 이: your account is locked, https://evil.example/";
    let r = s
        .client
        .post(s.url("/subscribe"))
        .form(&[("email", "n@example.com"), ("name", typed)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    settled(&s).await;
    let confirmation = smtp.messages().last().unwrap().clone();
    let parsed = confirmation.parsed();
    let html = parsed.body_html(0).unwrap().to_string();
    let text = parsed.body_text(0).unwrap().to_string();
    for body in [&html, &text] {
        assert!(
            !body.contains("evil.example") && !body.contains("김"),
            "{body}"
        );
    }
    let stored = site.subscriber(&s.app, "n@example.com").await.unwrap();
    assert_eq!(stored.name, typed);
    let count = s
        .app
        .ledger()
        .subscribers(None, None, 0, 100)
        .await
        .unwrap();
    assert_eq!(count.len(), 1, "only the one valid request was stored");
    assert_eq!(smtp.messages().len(), 1);

    // A flood from one address gets 429 (the limit is ten at once).
    let mut limited = 0;
    for i in 0..12 {
        let r = subscribe(&s, &format!("flood{i}@example.com"), "").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert!(limited >= 1, "the flood was limited");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_needs_its_token() {
    let (smtp, site) = harness::site().await;
    site.write_post(
        "essay.md",
        &post("에세이", Utc::now() - Duration::days(1), "본문"),
    );
    {
        // No token configured: the API does not exist.
        let s = RunningServer::start(&site, false).await;
        let r = s
            .client
            .get(s.url("/api/status"))
            .bearer_auth("anything")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    site.append_config("[server]\nadmin_token = \"s3cret-admin-token\"");
    let s = RunningServer::start(&site, false).await;
    site.add_subscribers(&s.app, &["a@example.com", "b@example.com"])
        .await;
    for auth in [
        None,
        Some("wrong"),
        Some("s3cret-admin-token-but-longer"),
        Some(""),
    ] {
        let mut req = s.client.get(s.url("/api/subscribers"));
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
    let api = |path: &str| s.client.get(s.url(path)).bearer_auth("s3cret-admin-token");
    let subs: serde_json::Value = api("/api/subscribers?status=active")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subs["subscribers"].as_array().unwrap().len(), 2);
    assert_eq!(
        api("/api/subscribers?status=nonsense")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    let r = s
        .client
        .post(s.url("/api/posts/essay/send"))
        .bearer_auth("s3cret-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let sent: serde_json::Value = r.json().await.unwrap();
    assert_eq!(sent["queued"], 2);
    // The API only queues: nothing has gone out, and the log says so.
    assert_eq!(smtp.len(), 0);
    let log: serde_json::Value = api("/api/posts/essay/deliveries")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "queued"));
    // The worker's step delivers it, as the running worker would.
    let report = s
        .app
        .tick()
        .run_once(Utc::now(), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.sent, 2);
    assert_eq!(smtp.len(), 2);
    let log: serde_json::Value = api("/api/posts/essay/deliveries")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "sent"));
    let status: serde_json::Value = api("/api/status")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status[0]["counts"]["sent"], 2);
    let missing = s
        .client
        .post(s.url("/api/posts/nope/send"))
        .bearer_auth("s3cret-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_speak_english_when_the_site_does() {
    let site = TestSite::new(None);
    site.set_config("language = \"ko\"", "language = \"en\"");
    let s = RunningServer::start(&site, true).await;
    let form = s.text("/subscribe").await;
    assert!(form.contains("<html lang=\"en\">") && form.contains("Get new essays by email"));
    let r = s
        .client
        .post(s.url("/subscribe"))
        .form(&[("email", "e@example.com")])
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Check your inbox"));
    settled(&s).await;
    let outbox = site.outbox();
    assert_eq!(outbox.len(), 1, "one confirmation");
    let parsed = parse_message(&outbox[0].1);
    assert!(parsed
        .subject()
        .unwrap()
        .starts_with("Confirm your subscription"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_running_worker_delivers_what_the_admin_api_queued() {
    let (smtp, site) = harness::site().await;
    site.append_config("[server]\nadmin_token = \"s3cret-admin-token\"");
    site.write_post(
        "essay.md",
        &post("에세이", Utc::now() - Duration::hours(1), "본문"),
    );
    site.write_post(
        "draft.md",
        "+++\ntitle = \"초안\"\ndate = \"2026-01-01\"\ndraft = true\n+++\n본문\n",
    );
    let s = RunningServer::start_with_worker(&site).await;
    site.add_subscribers(&s.app, &["a@example.com", "b@example.com"])
        .await;
    let send = |slug: &str| {
        s.client
            .post(s.url(&format!("/api/posts/{slug}/send")))
            .bearer_auth("s3cret-admin-token")
            .send()
    };
    assert_eq!(send("essay").await.unwrap().status(), 202);
    smtp.wait_for(2).await;
    s.stop_worker().await;
    for row in site.log(&s.app, "essay").await {
        assert_eq!(row.status, "sent", "{row:?}");
    }
    // Bad state is the request's fault (409, with what to do), never a 5xx.
    let draft = send("draft").await.unwrap();
    assert_eq!(draft.status(), StatusCode::CONFLICT);
    let body: serde_json::Value = draft.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("draft"), "{body}");
    assert_eq!(send("no-such-post").await.unwrap().status(), 404);
    assert_eq!(smtp.len(), 2);
}
