//! From a Markdown post to a logged delivery, over real SMTP and a real SQLite file.

use chrono::{Duration, Utc};
use std::sync::Arc;

use crate::support::{harness, post, spawn, Action, TestSite};
use posthorn::delivery::{Stop, Unobserved};

#[tokio::test(flavor = "multi_thread")]
async fn first_check_sends_no_archive_then_each_new_post_once_to_every_active_subscriber() {
    let (smtp, site) = harness::site().await;
    site.write_post(
        "old-one.md",
        &post("지난 글", Utc::now() - Duration::days(30), "옛 이야기"),
    );
    site.write_post(
        "old-two.md",
        &post("Older", Utc::now() - Duration::days(60), "Older"),
    );
    let app = site.app().await;
    site.add_subscribers(
        &app,
        &[
            "a@example.com",
            "b@example.com",
            "c@example.com",
            "gone@example.com",
        ],
    )
    .await;
    app.subscriptions()
        .remove(&"gone@example.com".parse_email(), Utc::now())
        .await
        .unwrap();

    let created = app.ledger().created_at().await.unwrap();
    let first = app
        .tick()
        .run_once(created + Duration::seconds(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(first.posts.report.new.len(), 2);
    assert!(
        first.issues.is_empty(),
        "archive posts must not become issues"
    );
    assert!(smtp.messages().is_empty());

    site.write_post(
        "new.md",
        &post("새 글", created + Duration::seconds(2), "새로운 이야기"),
    );
    let now = created + Duration::minutes(1);
    let second = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(second.issues.len(), 1);
    assert_eq!(second.deliveries.sent, 3);
    for address in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(smtp.count_for(address), 1, "{address}");
    }
    assert_eq!(smtp.count_for("gone@example.com"), 0);
    assert_eq!(smtp.messages().len(), 3);

    let log = site.log(&app, "new").await;
    assert_eq!(log.len(), 3, "one row per active subscriber");
    for row in &log {
        assert_eq!(row.status, "sent");
        assert_eq!(row.attempts, 1);
        assert!(
            row.smtp_reply.as_deref().unwrap_or("").starts_with("250 "),
            "{row:?}"
        );
        assert!(row.sent_at.is_some());
    }

    let third = app
        .tick()
        .run_once(now + Duration::minutes(10), Stop::default())
        .await
        .unwrap();
    assert!(third.issues.is_empty());
    assert_eq!(third.deliveries.sent, 0);
    assert_eq!(smtp.messages().len(), 3, "a second tick sends nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_again_reaches_only_subscribers_who_lack_the_post() {
    let (smtp, site) = harness::site().await;
    site.write_post(
        "essay.md",
        &post("에세이", Utc::now() - Duration::days(3), "본문"),
    );
    let app = site.app().await;
    site.add_subscribers(&app, &["a@example.com", "b@example.com"])
        .await;
    let now = Utc::now();
    app.tick().sync_posts(now).await.unwrap();
    let essay = app.publishing().post("essay").await.unwrap();
    assert!(
        !essay.announce,
        "an archive post is not announced by the scheduler"
    );

    let publishing = app.publishing();
    let deliver =
        |issue_id| publishing.deliver(issue_id, now, Arc::new(Unobserved), Stop::default());
    let first = publishing.enqueue(&essay, now).await.unwrap();
    assert_eq!(first.queued, 2);
    assert_eq!(deliver(first.issue_id).await.unwrap().sent, 2);

    site.add_subscribers(&app, &["c@example.com"]).await;
    let again = publishing.enqueue(&essay, now).await.unwrap();
    assert_eq!(again.issue_id, first.issue_id, "the same issue");
    assert_eq!(again.queued, 1);
    assert_eq!(deliver(again.issue_id).await.unwrap().sent, 1);
    assert_eq!(smtp.count_for("a@example.com"), 1);
    assert_eq!(smtp.count_for("b@example.com"), 1);
    assert_eq!(smtp.count_for("c@example.com"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn renaming_or_editing_a_post_keeps_its_identity() {
    let (smtp, site, app) = spawn().await;
    site.add_subscribers(&app, &["a@example.com"]).await;
    let created = app.ledger().created_at().await.unwrap();
    let date = created + Duration::seconds(1);
    site.write_post("draft-name.md", &post("이름 바꾸기", date, "처음 본문"));
    let now = created + Duration::minutes(1);
    app.tick().run_once(now, Stop::default()).await.unwrap();
    let before = app.publishing().post("draft-name").await.unwrap();
    assert_eq!(smtp.messages().len(), 1);

    // Moved into a folder, renamed, and edited.
    site.remove_post("draft-name.md");
    site.write_post(
        "2026/final-name.md",
        &post("이름 바꾸기", date, "고친 본문"),
    );
    let report = app
        .tick()
        .run_once(now + Duration::minutes(5), Stop::default())
        .await
        .unwrap();
    assert!(
        report.posts.report.new.is_empty(),
        "{:?}",
        report.posts.report
    );
    assert!(report.issues.is_empty());
    let after = app.publishing().post("final-name").await.unwrap();
    assert_eq!(after.id, before.id);
    assert_eq!(after.uid, before.uid);
    assert!(after.content_html.contains("고친 본문"));
    assert!(
        app.publishing().post("draft-name").await.is_err(),
        "the old slug is gone"
    );
    assert_eq!(
        smtp.messages().len(),
        1,
        "an edit or rename is never re-sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drafts_email_false_and_scheduled_posts() {
    let (smtp, site, app) = spawn().await;
    site.add_subscribers(&app, &["a@example.com"]).await;
    let created = app.ledger().created_at().await.unwrap();
    let soon = created + Duration::seconds(1);
    site.write_post(
        "draft.md",
        &format!(
            "+++\ntitle = \"초안\"\ndate = \"{}\"\ndraft = true\n+++\n초안",
            soon.to_rfc3339()
        ),
    );
    site.write_post(
        "feeds-only.md",
        &format!(
            "---\ntitle: Feeds only\ndate: \"{}\"\nemail: false\n---\nx",
            soon.to_rfc3339()
        ),
    );
    site.write_post(
        "later.md",
        &post("예약된 글", created + Duration::days(1), "내일 공개"),
    );

    let now = created + Duration::minutes(1);
    let report = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(report.posts.report.new.len(), 3);
    assert!(report.issues.is_empty());
    assert!(smtp.messages().is_empty());
    for slug in ["draft", "feeds-only", "later"] {
        let post = app.publishing().post(slug).await.unwrap();
        let refused = app.publishing().enqueue(&post, now).await.unwrap_err();
        assert!(
            matches!(refused, posthorn::Error::Conflict(_)),
            "{slug}: {refused}"
        );
    }

    let report = app
        .tick()
        .run_once(created + Duration::days(2), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.issues.len(), 1);
    assert_eq!(report.issues[0].slug, "later");
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_replies_decide_sent_retrying_failed_and_a_down_server_loses_nothing() {
    let (smtp, site, app) = spawn().await;
    smtp.set_rule(|rcpt| match rcpt {
        "busy@example.com" => Action::RcptReply(451, "4.7.1 Try again later".into()),
        "nobody@example.com" => Action::RcptReply(550, "5.1.1 No such user".into()),
        "spam@example.com" => Action::DataReply(554, "5.7.1 Rejected as spam".into()),
        _ => Action::Accept,
    });
    site.add_subscribers(
        &app,
        &[
            "ok@example.com",
            "busy@example.com",
            "nobody@example.com",
            "spam@example.com",
        ],
    )
    .await;
    let created = app.ledger().created_at().await.unwrap();
    site.write_post(
        "p.md",
        &post("Post", created + Duration::seconds(1), "Body"),
    );
    let now = created + Duration::minutes(1);
    let report = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(
        (
            report.deliveries.sent,
            report.deliveries.retrying,
            report.deliveries.failed
        ),
        (1, 1, 2)
    );

    let log = site.log(&app, "p").await;
    let row = |email: &str| log.iter().find(|r| r.email == email).unwrap().clone();
    assert_eq!(row("busy@example.com").status, "retrying");
    assert!(row("busy@example.com").smtp_reply.unwrap().contains("451"));
    assert!(row("busy@example.com").next_attempt_at.unwrap() > now);
    assert_eq!(row("nobody@example.com").status, "failed");
    assert!(row("nobody@example.com")
        .smtp_reply
        .unwrap()
        .contains("550"));
    assert!(row("spam@example.com").smtp_reply.unwrap().contains("554"));

    // Nothing is due until the backoff has passed; then the transient one goes out.
    assert_eq!(
        app.tick()
            .run_once(now + Duration::seconds(5), Stop::default())
            .await
            .unwrap()
            .deliveries
            .sent,
        0
    );
    smtp.set_rule(|_| Action::Accept);
    let later = app
        .tick()
        .run_once(now + Duration::hours(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(
        later.deliveries.sent, 1,
        "the 4xx is retried; the 5xx ones are not"
    );
    assert_eq!(smtp.count_for("busy@example.com"), 1);
    assert_eq!(smtp.count_for("nobody@example.com"), 0);

    // A server that is down: the issue waits, attempts are not used up.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let site = TestSite::new(Some(dead_port));
    let app = site.app().await;
    site.add_subscribers(&app, &["a@example.com", "b@example.com"])
        .await;
    let created = app.ledger().created_at().await.unwrap();
    site.write_post(
        "p.md",
        &post("Post", created + Duration::seconds(1), "Body"),
    );
    let report = app
        .tick()
        .run_once(created + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.sent, 0);
    assert_eq!(report.deliveries.failed, 0);
    assert_eq!(report.deliveries.deferred, 2);
    for row in site.log(&app, "p").await {
        assert_eq!(row.attempts, 0, "{row:?}");
        assert!(
            matches!(row.status.as_str(), "queued" | "retrying"),
            "{row:?}"
        );
    }
}

trait ParseEmail {
    fn parse_email(&self) -> posthorn::domain::EmailAddress;
}

impl ParseEmail for str {
    fn parse_email(&self) -> posthorn::domain::EmailAddress {
        posthorn::domain::EmailAddress::parse(self).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_creation_time_stops_the_tick_instead_of_mailing_the_archive() {
    let site = TestSite::new(None);
    site.write_post(
        "old.md",
        &post("옛 글", Utc::now() - Duration::days(30), "본문"),
    );
    let app = site.app().await;
    site.add_subscribers(&app, &["a@example.com"]).await;
    site.set_meta("created_at", "not a time").await;
    let check = site.cli(&["check"]).await;
    assert_ne!(check.code, 0, "{}", check.stdout);
    assert!(
        check.stderr.contains("creation time") && check.stderr.contains("not a time"),
        "{}",
        check.stderr
    );
    assert!(site.outbox().is_empty(), "nothing was mailed");
}
