//! Readers' choices over real HTTP and SMTP: the preferences page, the weekly
//! digest, topics, choices changed while mail waits, forged links, the welcome,
//! floods as one digest, and forgetting a person.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use posthorn::delivery::Stop;
use posthorn::domain::{DeliveryStatus, Frequency, IssueKind};
use posthorn::App;

use crate::support::{
    harness, post, serve_with, spawn, toml_string, RunningServer, SmtpServer, TestSite,
};

const DIGEST: &str = "0 0 9 * * Sat";

/// A post file with tags.
fn tagged(title: &str, date: DateTime<Utc>, tags: &[&str], body: &str) -> String {
    let tags: Vec<String> = tags.iter().map(|t| toml_string(t)).collect();
    format!(
        "+++\ntitle = {}\ndate = \"{}\"\ntags = [{}]\n+++\n\n{body}\n",
        toml_string(title),
        date.to_rfc3339(),
        tags.join(", ")
    )
}

/// Subjects received by each address.
fn subjects_by_reader(smtp: &SmtpServer) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for m in smtp.messages() {
        let subject = m.parsed().subject().unwrap_or_default().to_string();
        out.entry(m.rcpt_to[0].clone()).or_default().push(subject);
    }
    out
}

/// Titles of essays in the plain text of every message `to` got, in order.
fn titles_received(smtp: &SmtpServer, to: &str, titles: &[&str]) -> Vec<String> {
    let mut got = Vec::new();
    for m in smtp.messages().iter().filter(|m| m.rcpt_to[0] == to) {
        let text = m.text();
        for t in titles {
            if text.contains(t) {
                got.push(t.to_string());
            }
        }
    }
    got
}

async fn the_next_digest(app: &App, after: DateTime<Utc>) -> DateTime<Utc> {
    posthorn::config::next_time(&DIGEST.parse().unwrap(), app.config().site.timezone, after)
        .unwrap()
}

/// The time a test's week starts: the database's creation, or just after the
/// next digest when that comes within hours (the test's essays, hours apart,
/// would otherwise meet a digest the wall clock put between them).
async fn clear_of_the_digest(app: &App) -> DateTime<Utc> {
    let created = app.ledger().created_at().await.unwrap();
    let next = the_next_digest(app, created).await;
    if next - created < Duration::hours(8) {
        next + Duration::minutes(1)
    } else {
        created
    }
}

async fn save(s: &RunningServer, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    s.client.post(url).form(form).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_switches_to_the_weekly_digest_on_their_page() {
    let (smtp, site, s) =
        serve_with(|site| site.append_config(&format!("[schedule]\ndigest = \"{DIGEST}\""))).await;
    let app = &s.app;
    site.add_subscribers(app, &["weekly@example.com", "every@example.com"])
        .await;
    let created = clear_of_the_digest(app).await;

    // An essay arrives; its footer links to the reader's own page.
    site.write_post(
        "p0.md",
        &post("여는 글", created + Duration::seconds(1), "본문"),
    );
    let now = created + Duration::minutes(1);
    let report = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(report.deliveries.sent, 2);
    let mine = smtp
        .messages()
        .into_iter()
        .find(|m| m.rcpt_to[0] == "weekly@example.com")
        .unwrap();
    let date = mine.parsed().date().unwrap().to_rfc822();
    assert!(
        date.ends_with("+0900"),
        "Date in the site's time zone: {date}"
    );
    let html = mine.parsed().body_html(0).unwrap().to_string();
    let page_url = mine.link(&s.url("/preferences/"));
    assert!(
        mine.text()
            .contains(&format!("받는 방식 바꾸기: {page_url}")),
        "the text footer labels it"
    );
    assert!(html.contains(&page_url), "the HTML footer links it too");

    let page = s.client.get(&page_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("weekly@example.com") && page.contains("받는 방식 바꾸기"));
    assert!(
        page.contains(r#"value="each" checked"#),
        "every essay by default"
    );
    let saved = save(&s, &page_url, &[("frequency", "digest")]).await;
    assert_eq!(saved.status(), 200);
    let saved = saved.text().await.unwrap();
    assert!(saved.contains("저장했습니다") && saved.contains(r#"value="digest" checked"#));
    let weekly = site.subscriber(app, "weekly@example.com").await.unwrap();
    assert_eq!(weekly.preferences.frequency, Some(Frequency::Digest));

    // Three essays that week: three emails for one reader, nothing yet for the other.
    let titles = ["첫째 에세이", "둘째 에세이", "셋째 에세이"];
    for (i, title) in titles.iter().enumerate() {
        let at = now + Duration::hours(i as i64 + 1);
        site.write_post(
            &format!("w{i}.md"),
            &post(title, at, &format!("{title} 본문")),
        );
        app.tick()
            .run_once(at + Duration::minutes(1), Stop::default())
            .await
            .unwrap();
    }
    assert_eq!(titles_received(&smtp, "every@example.com", &titles), titles);
    assert!(titles_received(&smtp, "weekly@example.com", &titles).is_empty());

    // At the digest time: one letter with the week's three essays, oldest first.
    let saturday = the_next_digest(app, now + Duration::hours(4)).await;
    let report = app
        .tick()
        .run_once(saturday + Duration::seconds(5), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.sent, 1, "{:?}", report.issues);
    assert_eq!(report.issues.len(), 1);
    assert_eq!(report.issues[0].kind, IssueKind::Digest);
    // The digest's log, by its key: `~ID` (as `status` lists it).
    let key = format!("~{}", report.issues[0].issue_id);
    let statuses = app.ledger().issue_statuses(Some(&key)).await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].key, key);
    let log = app.ledger().delivery_log(&key, None).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].email, "weekly@example.com");
    let by_reader = subjects_by_reader(&smtp);
    assert_eq!(by_reader["weekly@example.com"].len(), 2, "{by_reader:?}");
    assert!(by_reader["weekly@example.com"][1].contains("새 글 3편"));
    assert_eq!(by_reader["every@example.com"].len(), 4, "{by_reader:?}");
    assert_eq!(
        titles_received(&smtp, "weekly@example.com", &titles),
        titles
    );
    // Nobody got a post twice: the opening essay is not in the digest either.
    assert_eq!(
        titles_received(&smtp, "weekly@example.com", &["여는 글"]).len(),
        1
    );

    // A week with nothing new: no letter at all.
    let next = the_next_digest(app, saturday + Duration::seconds(5)).await;
    let quiet = app
        .tick()
        .run_once(next + Duration::seconds(5), Stop::default())
        .await
        .unwrap();
    assert!(quiet.issues.is_empty() && quiet.deliveries.sent == 0);
    assert_eq!(smtp.len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_reader_gets_only_their_topics_and_untagged_posts() {
    let (smtp, site, s) = serve_with(|site| {
        site.append_config("[schedule]\nmax_new_per_tick = 10");
        site.append_config("[posts]\ntopics = [\"에세이\", \"notes\"]");
    })
    .await;
    let app = &s.app;
    site.add_subscribers(app, &["essays@example.com", "all@example.com"])
        .await;
    let created = app.ledger().created_at().await.unwrap();
    let token = app
        .links()
        .preferences(site.subscriber(app, "essays@example.com").await.unwrap().id);
    let page = s.page(&token).await;
    assert!(page.contains(r#"value="에세이""#) && page.contains(r#"value="notes""#));
    let saved = save(
        &s,
        &token,
        &[
            ("frequency", "each"),
            ("topics", "chosen"),
            ("topic", "에세이"),
            ("topic", "no-such-topic"),
        ],
    )
    .await;
    assert_eq!(saved.status(), 200);
    let chosen = site.subscriber(app, "essays@example.com").await.unwrap();
    assert_eq!(
        chosen.preferences.topics,
        Some(vec!["에세이".to_string()]),
        "topics the site does not offer are dropped"
    );

    let at = created + Duration::seconds(1);
    site.write_post("a.md", &tagged("에세이 한 편", at, &["에세이"], "본문"));
    site.write_post("b.md", &tagged("짧은 노트", at, &["notes"], "본문"));
    site.write_post("c.md", &tagged("태그 없는 글", at, &[], "본문"));
    site.write_post("d.md", &tagged("다른 태그의 글", at, &["여행"], "본문"));
    site.write_post(
        "e.md",
        &tagged("둘 다인 글", at, &["notes", "에세이"], "본문"),
    );
    let report = app
        .tick()
        .run_once(created + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.sent, 5 + 4);
    let all = [
        "에세이 한 편",
        "짧은 노트",
        "태그 없는 글",
        "다른 태그의 글",
        "둘 다인 글",
    ];
    let mut got = titles_received(&smtp, "essays@example.com", &all);
    got.sort();
    let mut want = vec![
        "에세이 한 편",
        "태그 없는 글",
        "다른 태그의 글",
        "둘 다인 글",
    ];
    want.sort();
    assert_eq!(got, want, "never a notes-only post");
    assert_eq!(titles_received(&smtp, "all@example.com", &all).len(), 5);
    // The log holds rows only for the readers each issue was for.
    let notes = site.log_by_email(app, "b").await;
    assert_eq!(notes.len(), 1, "{:?}", notes.keys());
    assert!(notes.contains_key("all@example.com"));

    // The list, the export and the admin API show the choice.
    let list = site.cli(&["--json", "subscribers", "list"]).await;
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == "essays@example.com")
        .unwrap()
        .clone();
    assert_eq!(row["preferences"]["topics"][0], "에세이");
    assert_eq!(row["preferences"]["frequency"], "each");
    let export = site.cli(&["subscribers", "export"]).await;
    assert!(
        export.stdout.contains("essays@example.com,,active,")
            && export.stdout.contains(",each,에세이"),
        "{}",
        export.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_choices_mid_queue_skips_what_no_longer_fits() {
    let (smtp, site, s) =
        serve_with(|site| site.append_config(&format!("[schedule]\ndigest = \"{DIGEST}\""))).await;
    let app = &s.app;
    site.add_subscribers(app, &["changer@example.com", "stays@example.com"])
        .await;
    let now = site.new_post(app, "queued.md", "기다리는 글").await;
    // Planned, not yet sent.
    app.tick().sync_posts(now).await.unwrap();
    let issues = app.tick().create_due_issues(now).await.unwrap();
    assert_eq!(issues.len(), 1);
    let id = site
        .subscriber(app, "changer@example.com")
        .await
        .unwrap()
        .id;
    let page = app.links().preferences(id);
    let saved = save(&s, &page, &[("frequency", "digest")]).await;
    assert_eq!(saved.status(), 200);

    let log = site.log_by_email(app, "queued").await;
    assert_eq!(log["changer@example.com"].status, DeliveryStatus::Skipped);
    let why = log["changer@example.com"]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(why.contains("digest"), "{why}");
    assert_eq!(log["stays@example.com"].status, DeliveryStatus::Queued);
    let sent = app.tick().deliver_due(now).await.unwrap();
    assert_eq!(sent.sent, 1, "{sent:?}");
    assert_eq!(smtp.count_for("changer@example.com"), 0);

    // The skipped essay is theirs in the next digest: skipped is not received.
    let saturday = the_next_digest(app, now).await;
    let report = app
        .tick()
        .run_once(saturday + Duration::seconds(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.sent, 1);
    assert_eq!(
        titles_received(&smtp, "changer@example.com", &["기다리는 글"]).len(),
        1
    );
    assert_eq!(smtp.count_for("stays@example.com"), 1);

    // An essay still on its way to an every-essay reader after the next digest
    // was planned: that reader now chooses the digest, which would not carry
    // it (it collects what is planned after itself), so the letter goes as it
    // is rather than reaching them never.
    let late = saturday + Duration::hours(1);
    site.write_post("late.md", &post("늦은 글", late, "본문"));
    app.tick().sync_posts(late).await.unwrap();
    app.tick().create_due_issues(late).await.unwrap();
    let next = the_next_digest(app, late).await;
    app.tick().create_due_issues(next).await.unwrap();
    let stays = site.subscriber(app, "stays@example.com").await.unwrap().id;
    let saved = save(
        &s,
        &app.links().preferences(stays),
        &[("frequency", "digest")],
    )
    .await;
    assert_eq!(saved.status(), 200);
    assert_eq!(
        site.log_by_email(app, "late").await["stays@example.com"].status,
        DeliveryStatus::Queued
    );
    app.tick().deliver_due(next).await.unwrap();
    assert_eq!(
        titles_received(&smtp, "stays@example.com", &["늦은 글"]).len(),
        1
    );
    assert_eq!(
        titles_received(&smtp, "changer@example.com", &["늦은 글"]).len(),
        1,
        "in the digest"
    );
    let after = the_next_digest(app, next).await;
    app.tick().run_once(after, Stop::default()).await.unwrap();
    assert_eq!(
        titles_received(&smtp, "stays@example.com", &["늦은 글"]).len(),
        1,
        "once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_the_digest_sends_what_waited_for_it_at_once() {
    let (smtp, site) = harness::site().await;
    site.append_config(&format!("[schedule]\ndigest = \"{DIGEST}\""));
    let s = RunningServer::start_with_worker_at(&site, true).await;
    let app = &s.app;
    site.add_subscribers(app, &["back@example.com", "every@example.com"])
        .await;
    let id = site.subscriber(app, "back@example.com").await.unwrap().id;
    let page = app.links().preferences(id);
    assert_eq!(
        save(&s, &page, &[("frequency", "digest")]).await.status(),
        200
    );

    // Two essays in the week, then the digest with them is planned but not yet
    // sent, then a third essay after it.
    let created = clear_of_the_digest(app).await;
    let titles = ["하나", "둘", "셋"];
    let mut at = created;
    for (i, title) in titles[..2].iter().enumerate() {
        at += Duration::hours(1);
        site.write_post(&format!("e{i}.md"), &post(title, at, "본문"));
        app.tick()
            .run_once(at + Duration::minutes(1), Stop::default())
            .await
            .unwrap();
    }
    let saturday = the_next_digest(app, at).await;
    let planned = app.tick().create_due_issues(saturday).await.unwrap();
    assert_eq!(planned.len(), 1, "the digest, waiting");
    let after = saturday + Duration::hours(1);
    site.write_post("e2.md", &post(titles[2], after, "본문"));
    app.tick().sync_posts(after).await.unwrap();
    app.tick().create_due_issues(after).await.unwrap();
    assert_eq!(smtp.count_for("back@example.com"), 0);

    // Back to every essay: the waiting digest is skipped, and the three essays
    // it and the next digest would have held come at once, in one letter.
    let saved = save(&s, &page, &[("frequency", "each")]).await;
    assert_eq!(saved.status(), 200);
    let saved = saved.text().await.unwrap();
    assert!(saved.contains("기다리던 글 3편"), "{saved}");
    // (The worker, woken, sends it; the third essay for the other reader is
    // due only at its own time.)
    smtp.wait_for(3).await;
    // Its run finishes (and is logged) before this test's clock jumps ahead.
    s.stop_worker().await;
    assert_eq!(smtp.count_for("back@example.com"), 1);
    assert_eq!(titles_received(&smtp, "back@example.com", &titles), titles);
    app.tick().deliver_due(after).await.unwrap();
    assert_eq!(titles_received(&smtp, "every@example.com", &titles), titles);
    assert_eq!(
        smtp.count_for("back@example.com"),
        1,
        "the digest stays skipped"
    );
    let digest = app
        .ledger()
        .delivery_log(&format!("~{}", planned[0].issue_id), None)
        .await
        .unwrap();
    assert_eq!(digest[0].status, DeliveryStatus::Skipped);
    assert!(digest[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("every essay"));

    // Nothing again at the next digest, and the next essay comes on its own.
    let next = the_next_digest(app, after).await;
    site.write_post("e3.md", &post("넷", next - Duration::hours(1), "본문"));
    let report = app
        .tick()
        .run_once(next + Duration::seconds(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.sent, 2, "{:?}", report.issues);
    assert_eq!(smtp.count_for("back@example.com"), 2);
    assert_eq!(titles_received(&smtp, "back@example.com", &titles), titles);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_or_cut_preference_tokens_change_nothing() {
    let site = TestSite::new(None);
    let s = RunningServer::start(&site, true).await;
    let app = &s.app;
    site.add_subscribers(app, &["target@example.com"]).await;
    let id = site.subscriber(app, "target@example.com").await.unwrap().id;
    let good = app.links().preferences(id);
    let token = good.rsplit('/').next().unwrap().to_string();
    let other = app.links().preferences(id + 1);
    let forged = format!(
        "{}.{}",
        other.rsplit('/').next().unwrap().split('.').next().unwrap(),
        token.split('.').nth(1).unwrap()
    );
    let unsubscribe = app.links().unsubscribe(id);
    let bad = [
        s.url(&format!("/preferences/{}", &token[..token.len() - 3])),
        s.url(&format!("/preferences/{forged}")),
        s.url(&format!(
            "/preferences/{}",
            unsubscribe.rsplit('/').next().unwrap()
        )),
        s.url("/preferences/not-a-token"),
    ];
    for url in &bad {
        let got = s.client.get(url).send().await.unwrap();
        assert_eq!(got.status(), 400, "{url}");
        let posted = save(&s, url, &[("frequency", "digest")]).await;
        assert_eq!(posted.status(), 400, "{url}");
        assert!(posted
            .text()
            .await
            .unwrap()
            .contains("아무것도 바뀌지 않았습니다"));
    }
    // A value the page does not offer is refused.
    let odd = save(&s, &good, &[("frequency", "hourly")]).await;
    assert_eq!(odd.status(), 400);
    let target = site.subscriber(app, "target@example.com").await.unwrap();
    assert_eq!(target.preferences, Default::default(), "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_welcome_is_sent_once_per_confirmation_and_logged() {
    let (smtp, site) = harness::site().await;
    let s = RunningServer::start_with_worker_at(&site, true).await;
    let app = &s.app;
    // Essays from before the list began (the archive) are what a welcome can offer
    // at once.
    let created = app.ledger().created_at().await.unwrap();
    site.write_post(
        "older.md",
        &post("예전 글", created - Duration::days(3), "본문"),
    );
    site.write_post(
        "newest.md",
        &post("가장 새 글", created - Duration::days(1), "새 글의 본문"),
    );
    app.tick()
        .run_once(Utc::now(), Stop::default())
        .await
        .unwrap();

    let answer = s
        .client
        .post(s.url("/subscribe"))
        .form(&[
            ("email", "new@example.com"),
            ("name", "새 독자"),
            ("website", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    smtp.wait_for(1).await;
    let confirm = smtp.messages()[0].link(&s.url("/confirm/"));
    for _ in 0..2 {
        let page = s.client.get(&confirm).send().await.unwrap();
        assert_eq!(page.status(), 200);
    }
    // The worker was woken by the confirmation and sends the welcome.
    smtp.wait_for(2).await;
    s.stop_worker().await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "one confirmation, one welcome");
    let welcome = messages[1].parsed();
    let subject = welcome.subject().unwrap().to_string();
    assert!(
        subject.contains("환영") && subject.contains("가장 새 글"),
        "{subject}"
    );
    assert!(welcome.body_text(0).unwrap().contains("새 글의 본문"));
    assert!(welcome.header("List-Unsubscribe").is_some());

    let statuses = app.ledger().issue_statuses(None).await.unwrap();
    let welcomes: Vec<_> = statuses
        .iter()
        .filter(|i| i.kind == IssueKind::Welcome)
        .collect();
    assert_eq!(welcomes.len(), 1);
    assert_eq!(welcomes[0].counts[&DeliveryStatus::Sent], 1, "logged");
    assert_eq!(welcomes[0].total, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_entries_due_at_once_become_one_digest_per_reader() {
    let (smtp, site, app) = spawn().await;
    site.add_subscribers(&app, &["a@example.com", "b@example.com"])
        .await;
    let created = app.ledger().created_at().await.unwrap();
    for i in 0..200 {
        site.write_post(
            &format!("entry-{i:03}.md"),
            &post(
                &format!("글 {i:03}"),
                created + Duration::seconds(1 + i),
                "본문",
            ),
        );
    }
    let report = app
        .tick()
        .run_once(created + Duration::minutes(10), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.issues.len(), 1, "one digest, not 200 issues");
    assert_eq!(report.issues[0].kind, IssueKind::Digest);
    assert_eq!(report.deliveries.sent, 2, "one letter per reader");
    let text = smtp.messages()[0].text();
    assert!(text.contains("글 000") && text.contains("글 199"));
    assert!(smtp.messages()[0]
        .parsed()
        .subject()
        .unwrap()
        .contains("새 글 200편"));
    // Sending one of them by hand later reaches no one twice.
    let later = created + Duration::minutes(20);
    let entry = app.publishing().post("entry-005").await.unwrap();
    let again = app.publishing().enqueue(&entry, later).await.unwrap();
    assert_eq!(again.queued, 0);
    app.tick().deliver_due(later).await.unwrap();
    assert_eq!(smtp.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paragraph_per_line_in_the_email_the_feeds_and_the_archive() {
    let (smtp, site, s) =
        serve_with(|site| site.append_config("[posts]\nline_breaks = \"paragraph\"")).await;
    let app = &s.app;
    site.add_subscribers(app, &["reader@example.com"]).await;
    let created = app.ledger().created_at().await.unwrap();
    // After the list began (so it is mailed) and already past (so the site shows it).
    let at = created + Duration::milliseconds(1);
    // The first author's essays: one line per paragraph, one long first line.
    let first = "오늘은 비가 와서 창가에 앉아 오래된 책을 다시 읽었다. ".repeat(200);
    let body = format!("{}\n둘째 줄이다.\n셋째 줄이다.", first.trim());
    site.write_post("lines.md", &post("줄마다 문단", at, &body));
    site.write_post(
        "markdown.md",
        &format!(
            "+++\ntitle = \"마크다운대로\"\ndate = \"{}\"\nline_breaks = \"markdown\"\n+++\n\n한 줄.\n이어지는 줄.\n",
            at.to_rfc3339()
        ),
    );
    app.tick()
        .run_once(created + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    let paragraphs = |html: &str| {
        html.matches("<p>둘째 줄이다.</p>").count() == 1
            && html.matches("<p>셋째 줄이다.</p>").count() == 1
    };

    let email = smtp
        .messages()
        .into_iter()
        .find(|m| m.parsed().subject().unwrap_or_default() == "줄마다 문단")
        .unwrap();
    let html = email.parsed().body_html(0).unwrap().to_string();
    assert!(paragraphs(&html), "email: {html}");

    s.site.refresh().await.unwrap();
    let feed = s.page(&s.url("/feed.xml")).await;
    let channel = rss::Channel::read_from(feed.as_bytes()).unwrap();
    let item = channel
        .items()
        .iter()
        .find(|i| i.title() == Some("줄마다 문단"))
        .unwrap();
    let content = item.content().or(item.description()).unwrap();
    assert!(paragraphs(content), "feed: {content}");
    let other = channel
        .items()
        .iter()
        .find(|i| i.title() == Some("마크다운대로"))
        .unwrap();
    let other = other.content().or(other.description()).unwrap();
    assert!(
        other.contains("<p>한 줄.\n이어지는 줄.</p>"),
        "front matter wins: {other}"
    );

    let page = s.page(&s.url("/posts/lines/")).await;
    assert!(paragraphs(&page), "archive page");
    // The index shows the first paragraph, cut at a sentence to about 300 characters.
    let index = s.page(&s.url("/")).await;
    assert!(
        !index.contains("둘째 줄이다"),
        "the summary is the first line only"
    );
    let summary =
        posthorn::posts::markdown::summary(&body, posthorn::domain::LineBreaks::Paragraph);
    assert!(
        summary.chars().count() <= 300 && summary.ends_with("읽었다."),
        "{summary}"
    );
    assert!(index.contains(&summary));
}

/// Every place `needle` could be in the SQLite database: the file and its logs.
fn sqlite_files_contain(site: &TestSite, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = site.path().join(format!("subscribers/posthorn.db{suffix}"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let lower = bytes.to_ascii_lowercase();
        if lower.windows(needle.len()).any(|w| w == needle) {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn forget_leaves_no_trace_of_an_address_and_keeps_the_counts() {
    let (smtp, site, app) = spawn().await;
    let address = "Forget.Me@example.com";
    let key = address.to_ascii_lowercase();
    app.subscriptions()
        .add(
            &posthorn::domain::EmailAddress::parse(address).unwrap(),
            "잊힐 사람",
            Utc::now(),
        )
        .await
        .unwrap();
    site.add_subscribers(&app, &["stays@example.com"]).await;
    // The relay quotes the address in its reply, and a bounce quotes it later.
    smtp.set_rule(|rcpt| {
        if rcpt.starts_with("Forget.Me") {
            crate::support::Action::DataReply(250, format!("2.0.0 Ok: queued for <{rcpt}>"))
        } else {
            crate::support::Action::Accept
        }
    });
    let now = site.new_post(&app, "p.md", "마지막 편지").await;
    let report = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(report.deliveries.sent, 2);
    // It returns the original's headers, whose signed Message-ID ties it to
    // the delivery.
    let issue = app.publishing().issue_of("p").await.unwrap();
    let reader = site.subscriber(&app, address).await.unwrap().id;
    let mac = app.links().tokens().message_id_mac(issue.id, reader);
    let returned = format!("Message-ID: <{}.{reader}.{mac}@example.com>", issue.id);
    let bounce = format!(
        "From: MAILER-DAEMON@example.com\r\nTo: essays@example.com\r\nSubject: Undelivered Mail\r\n\
         Content-Type: text/plain\r\n\r\n<{address}>: host mx.example.com said: 552 5.2.2 {key} mailbox full\r\n\
         \r\n------ This is a copy of the message's headers. ------\r\n\r\n{returned}\r\n"
    );
    app.bounces()
        .ingest(bounce.as_bytes(), posthorn::domain::ReportSource::Mail)
        .await
        .unwrap();
    let before = app.ledger().issue_statuses(Some("p")).await.unwrap();
    assert_eq!(
        before[0].counts[&DeliveryStatus::Bounced],
        1,
        "the bounce was matched"
    );
    let old_id = site.subscriber(&app, address).await.unwrap().id;
    app.close().await;
    if !site.on_postgres() {
        assert!(
            !sqlite_files_contain(&site, key.as_bytes()).is_empty(),
            "it was there"
        );
    }

    let out = site
        .cli(&["--json", "subscribers", "forget", address])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(out["deliveries_kept"], 1);

    if site.on_postgres() {
        let hits = crate::support::postgres::text_containing(&site, &key).await;
        assert!(hits.is_empty(), "still in PostgreSQL: {hits:?}");
    } else {
        let hits = sqlite_files_contain(&site, key.as_bytes());
        assert!(hits.is_empty(), "still in {hits:?}");
        let name = "잊힐 사람".as_bytes();
        let db = std::fs::read(site.path().join("subscribers/posthorn.db")).unwrap();
        assert!(
            !db.windows(name.len()).any(|w| w == name),
            "the name is gone"
        );
    }

    let app = site.app().await;
    let after = app.ledger().issue_statuses(Some("p")).await.unwrap();
    assert_eq!(before[0].counts, after[0].counts, "the counts are kept");
    assert_eq!(before[0].total, after[0].total);
    assert!(site.subscriber(&app, address).await.is_none());
    let listed = site.cli(&["--json", "subscribers", "list"]).await;
    assert!(!listed.stdout.to_ascii_lowercase().contains(&key));
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "no blank row: {listed}"
    );
    // Forgetting twice finds no subscriber, and says so.
    let again = site.cli(&["subscribers", "forget", address]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("no subscriber has"),
        "{}",
        again.stdout
    );
    // The same address later is a new reader.
    site.add_subscribers(&app, &[address]).await;
    let new = site.subscriber(&app, address).await.unwrap();
    assert_ne!(new.id, old_id, "a new reader");
    assert!(new.name.is_empty());
    let log = app.ledger().delivery_log("p", None).await.unwrap();
    assert_eq!(log.len(), 2, "the forgotten row stays in the log");
    assert!(log.iter().all(|r| r.email.to_ascii_lowercase() != key));
}

#[tokio::test(flavor = "multi_thread")]
async fn forget_removes_the_file_transports_letters_to_the_person_and_no_other() {
    let site = TestSite::new(None);
    let app = site.app().await;
    // `bob@…` is inside `jbob@…`: only the `To` header decides.
    site.add_subscribers(&app, &["Bob@Example.com", "jbob@example.com"])
        .await;
    let now = site.new_post(&app, "p.md", "편지").await;
    let report = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(report.deliveries.sent, 2);
    let outbox = site.path().join("outbox");
    let files = || -> Vec<String> {
        std::fs::read_dir(&outbox)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    };
    assert_eq!(files().len(), 2);
    app.close().await;

    let out = site
        .cli(&["--json", "subscribers", "forget", "bob@example.com"])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(out["outbox_files_removed"], 1, "{out}");
    let left = files();
    assert_eq!(left.len(), 1, "the other reader's letter stays");
    assert!(left[0].contains("To: jbob@example.com"), "{}", left[0]);
    assert!(!left[0].to_ascii_lowercase().contains("\nto: bob@"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_that_arrives_after_forget_keeps_nothing_of_the_address() {
    let (smtp, site, app) = spawn().await;
    let address = "on.the.wire@example.com";
    site.add_subscribers(&app, &[address]).await;
    // The relay quotes the address in its reply, which comes only after forget.
    smtp.set_rule(|rcpt| {
        crate::support::Action::DataReply(250, format!("2.0.0 Ok: queued for <{rcpt}>"))
    });
    let now = site.new_post(&app, "p.md", "편지").await;
    app.tick().sync_posts(now).await.unwrap();
    app.tick().create_due_issues(now).await.unwrap();
    smtp.close_gate();
    let sender = {
        let app = app.clone();
        tokio::spawn(async move { app.tick().deliver_due(now).await })
    };
    smtp.wait_held(1).await;
    let email = posthorn::domain::EmailAddress::parse(address).unwrap();
    app.subscriptions().forget(&email, now).await.unwrap();
    smtp.open_gate();
    let report = sender.await.unwrap().unwrap();
    assert_eq!(report.sent, 1, "the message on the wire is logged as sent");

    let log = app.ledger().delivery_log("p", None).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, "sent");
    let (row, events) = app.dashboard().delivery(log[0].id).await.unwrap();
    let texts: Vec<String> = [
        row.email,
        row.smtp_reply.unwrap_or_default(),
        row.last_error.unwrap_or_default(),
    ]
    .into_iter()
    .chain(events.into_iter().map(|e| e.detail.unwrap_or_default()))
    .collect();
    assert!(
        texts.iter().all(|t| !t.contains(address)),
        "the reply after forget is not kept: {texts:?}"
    );
    if site.on_postgres() {
        let hits = crate::support::postgres::text_containing(&site, address).await;
        assert!(hits.is_empty(), "still in PostgreSQL: {hits:?}");
    }
}
