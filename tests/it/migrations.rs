//! A database made by an earlier release opens with its log whole: readers,
//! issues and deliveries from before readers' choices (migrations up to 0007),
//! now able to choose; reports from before reasons (up to 0008), without one.

use chrono::{Duration, Utc};
use posthorn::delivery::Stop;
use posthorn::domain::{DeliveryStatus, IssueKind, SubscriberStatus};

use crate::support::TestSite;

/// The site's database as a release that stopped before migration `next` left it.
async fn migrated_up_to(site: &TestSite, next: i64) -> sqlx::AnyPool {
    std::fs::create_dir_all(site.path().join("subscribers")).unwrap();
    let all = if site.on_postgres() {
        sqlx::migrate!("migrations/postgres")
    } else {
        sqlx::migrate!("migrations/sqlite")
    };
    let before: Vec<_> = all
        .migrations
        .iter()
        .filter(|m| m.version < next)
        .cloned()
        .collect();
    let old = sqlx::migrate::Migrator {
        migrations: before.into(),
        ..all
    };
    sqlx::any::install_default_drivers();
    let url = match site.database_url() {
        u if u.starts_with("sqlite") => format!("{u}?mode=rwc"),
        u => u,
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    old.run(&pool).await.unwrap();
    pool
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_before_readers_choices_keeps_its_log() {
    let site = TestSite::new(None);
    let pool = migrated_up_to(&site, 8).await;
    let t = (Utc::now() - Duration::days(2)).timestamp_millis();
    for sql in [
        "INSERT INTO posts (id, uid, slug, source, title, summary, content_html, tags, published_at, draft, email, \
         content_hash, announce, first_seen_at, synced_at) VALUES (1, 'tag:x,2026:/posts/old', 'old', 'file:old.md', \
         '지난 글', '', '<p>본문</p>', '[]', $1, 0, 1, 'h', 1, $1, $1)",
        "INSERT INTO subscribers (id, email, email_key, name, status, created_at, updated_at, confirmed_at) \
         VALUES (1, 'Kim@example.com', 'kim@example.com', '김', 'active', $1, $1, $1)",
        "INSERT INTO subscribers (id, email, email_key, name, status, created_at, updated_at, unsubscribed_at) \
         VALUES (2, 'left@example.com', 'left@example.com', '', 'unsubscribed', $1, $1, $1)",
        "INSERT INTO issues (id, post_id, subject, origin, created_at, kind) VALUES (1, 1, '지난 글', 'schedule', $1, 'post')",
        "INSERT INTO issue_posts (post_id, issue_id) VALUES (1, 1)",
        "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, created_at, updated_at, next_attempt_at, sent_at) \
         VALUES (1, 1, 'sent', 1, $1, $1, $1, $1)",
        "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, created_at, updated_at, next_attempt_at) \
         VALUES (1, 2, 'skipped', 0, $1, $1, $1)",
    ] {
        sqlx::query(sql).bind(t).execute(&pool).await.unwrap();
    }
    if site.on_postgres() {
        for table in ["posts", "subscribers", "issues", "deliveries"] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            );
            sqlx::query(&sql).execute(&pool).await.unwrap();
        }
    }
    pool.close().await;

    // The release opens it and migrates it.
    site.write_post(
        "old.md",
        "+++\ntitle = \"지난 글\"\ndate = 2026-01-01\n+++\n\n본문\n",
    );
    let app = site.app().await;
    let statuses = app.ledger().issue_statuses(None).await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].kind, IssueKind::Post);
    assert_eq!(statuses[0].counts[&DeliveryStatus::Sent], 1);
    assert_eq!(statuses[0].counts[&DeliveryStatus::Skipped], 1);
    assert_eq!(app.publishing().issue_of("old").await.unwrap().id, 1);
    let kim = site.subscriber(&app, "kim@example.com").await.unwrap();
    assert_eq!(kim.status, SubscriberStatus::Active);
    assert_eq!(kim.preferences, Default::default(), "the site's defaults");

    // The old post was planned long ago: a tick sends it to no one again, and
    // a new post reaches the active reader once.
    let created = app.ledger().created_at().await.unwrap();
    site.write_post(
        "new.md",
        &crate::support::post("새 글", created + Duration::seconds(1), "본문"),
    );
    let report = app
        .tick()
        .run_once(created + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.issues.len(), 1, "{:?}", report.issues);
    assert_eq!(report.issues[0].slug, "new");
    assert_eq!(report.issues[0].queued, 1);

    // Leaving and forgetting work on the migrated rows.
    app.subscriptions()
        .forget(
            &posthorn::domain::EmailAddress::parse("left@example.com").unwrap(),
            Utc::now(),
        )
        .await
        .unwrap();
    let after = app.ledger().issue_statuses(Some("old")).await.unwrap();
    assert_eq!(after[0].total, 2, "the forgotten reader's row still counts");
}

/// Reports recorded before the reader gave a reason are listed with none.
#[tokio::test]
async fn reports_from_before_reasons_are_listed_without_one() {
    let site = TestSite::new(None);
    let pool = migrated_up_to(&site, 9).await;
    sqlx::query(
        "INSERT INTO reports (fingerprint, received_at, source, kind, recipient, status, hard, diagnostic, effect) \
         VALUES ('old', $1, 'mail', 'bounce', 'gone@example.org', '5.1.1', 1, 'User unknown', 'unmatched')",
    )
    .bind(Utc::now().timestamp_millis())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let app = site.app().await;
    let listed = app.bounces().list(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status.as_deref(), Some("5.1.1"));
    assert_eq!(listed[0].reason, None);
    let out = site.cli(&["bounces", "list", "--json"]).await;
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list[0]["reason"], serde_json::Value::Null, "{list}");
    app.close().await;
}
