//! What a post from `posts/` publishes besides itself, and what its text may do.

use chrono::{Duration, Utc};

use crate::support::{files_below, post, spawn, RunningServer, TestSite};
use posthorn::delivery::Stop;

#[tokio::test(flavor = "multi_thread")]
async fn no_post_publishes_the_files_of_another_post() {
    let site = TestSite::new(None);
    let write = |path: &str, bytes: &[u8]| {
        let path = site.path().join("posts").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    // An index.md in the posts folder itself: a post, not a bundle of the folder.
    site.write_post(
        "index.md",
        &post("첫 화면", Utc::now() - Duration::days(3), "![그림](a.png)"),
    );
    write("index/a.png", b"index's own");
    write("notes.txt", b"the author's notes");
    // A draft and its attachments.
    site.write_post(
        "draft.md",
        "+++\ntitle = \"초안\"\ndate = \"2026-11-01\"\ndraft = true\n+++\n![](secret.png)\n",
    );
    write("draft/secret.png", b"draft attachment");
    // A folder of several posts with an index.md: no bundle either.
    site.write_post(
        "2026/index.md",
        &post("올해", Utc::now() - Duration::days(2), "올해 글"),
    );
    site.write_post(
        "2026/later.md",
        "+++\ntitle = \"나중\"\ndate = \"2026-11-02\"\ndraft = true\n+++\n![](plan.png)\n",
    );
    write("2026/later/plan.png", b"draft attachment");
    // A real bundle still is one.
    site.write_post(
        "bundle/index.md",
        &post(
            "묶음",
            Utc::now() - Duration::days(1),
            "![그림](images/b.png)",
        ),
    );
    write("bundle/images/b.png", b"bundle's own");

    let out = site.path().join("public");
    let built = site.cli(&["build", "--out", out.to_str().unwrap()]).await;
    assert_eq!(built.code, 0, "{}", built.stderr);
    let published: Vec<String> = files_below(&out)
        .into_keys()
        .filter(|f| !f.ends_with(".html") && !f.starts_with('.'))
        .filter(|f| !["feed.xml", "atom.xml", "feed.json"].contains(&f.as_str()))
        .collect();
    assert_eq!(
        published,
        ["posts/bundle/images/b.png", "posts/index/a.png"],
        "only each post's own files"
    );

    let server = RunningServer::start(&site, false).await;
    for (path, status) in [
        ("/posts/index/a.png", 200),
        ("/posts/bundle/images/b.png", 200),
        ("/posts/index/draft/secret.png", 404),
        ("/posts/index/notes.txt", 404),
        ("/posts/index/2026/later/plan.png", 404),
        ("/posts/2026/later/plan.png", 404),
    ] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_cannot_write_a_readers_address_into_their_email() {
    let (smtp, site, app) = spawn().await;
    site.add_subscribers(&app, &["a@example.com", "b@example.com"])
        .await;
    let created = app.ledger().created_at().await.unwrap();
    site.write_post(
        "fields.md",
        &post(
            "제목\u{E000}name\u{E001}끝",
            created + Duration::seconds(1),
            "앞\u{E000}email\u{E001}뒤 왼\u{E000}unsubscribe\u{E001}오",
        ),
    );
    let report = app
        .tick()
        .run_once(created + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.sent, 2);
    for message in smtp.messages() {
        crate::upstream::assert_fields_not_from_content(&message);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_byte_in_a_post_becomes_the_replacement_character_on_either_engine() {
    let (_smtp, site, app) = spawn().await;
    let created = app.ledger().created_at().await.unwrap();
    site.write_post("nul.md", &post("널", created - Duration::days(1), "앞\0뒤"));
    let now = created + Duration::minutes(1);
    let synced = app.tick().sync_posts(now).await.unwrap();
    assert_eq!(synced.errors.len(), 0, "{:?}", synced.errors);
    let html = site
        .texts("SELECT content_html FROM posts WHERE slug = 'nul'")
        .await;
    assert_eq!(html, ["<p>앞\u{FFFD}뒤</p>\n"]);
}
