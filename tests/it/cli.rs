//! The command line as a user runs it: the real binary, a real SQLite file.

use crate::support::{files_below, harness, parse_message, post, TestSite};
use chrono::{Duration, Utc};

#[tokio::test(flavor = "multi_thread")]
async fn init_import_check_send_status_on_the_default_file_transport() {
    let dir = tempfile::tempdir().unwrap();
    let site_dir = dir.path().join("site");
    let init = TestSite::run_bin(&["init", site_dir.to_str().unwrap()]).await;
    assert_eq!(init.code, 0, "{}", init.stderr);
    for file in [
        "config.toml",
        "templates/email.html.hbs",
        "templates/email.txt.hbs",
        "posts/slow-reading.md",
    ] {
        assert!(site_dir.join(file).exists(), "init wrote {file}");
    }
    let site = TestSite::at(dir, site_dir.clone());

    let import = site
        .cli(&[
            "--json",
            "subscribers",
            "import",
            site_dir.join("subscribers/sample.csv").to_str().unwrap(),
        ])
        .await;
    assert_eq!(import.code, 0, "{}", import.stderr);
    let import: serde_json::Value = serde_json::from_str(&import.stdout).unwrap();
    assert_eq!(import["added"], 3);

    // Without a terminal, a send needs --yes.
    let refused = site.cli(&["send", "slow-reading"]).await;
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);

    let dry = site
        .cli(&["--json", "send", "slow-reading", "--dry-run"])
        .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let dry: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(dry["would_send"], 3);

    // The README's first command: import, then send by hand, before any check.
    let send = site.cli(&["--json", "send", "slow-reading", "--yes"]).await;
    assert_eq!(send.code, 0, "{}", send.stderr);
    let send: serde_json::Value = serde_json::from_str(&send.stdout).unwrap();
    assert_eq!(send["deliveries"]["sent"], 3);
    let outbox = site.outbox();
    assert_eq!(
        std::fs::read_dir(site_dir.join("outbox")).unwrap().count(),
        3,
        "one .eml per subscriber, nothing else"
    );
    assert_eq!(outbox.len(), 3);
    for (_, bytes) in &outbox {
        assert_eq!(
            parse_message(bytes).subject().unwrap(),
            "느리게 읽기에 대하여"
        );
    }

    // The sample essay predates the database: a scheduler tick mails nothing more.
    let check = site.cli(&["--json", "check"]).await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    let check: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(check["deliveries"]["sent"], 0);
    assert!(check["issues"].as_array().unwrap().is_empty());

    let again = site.cli(&["--json", "send", "slow-reading", "--yes"]).await;
    let again: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["queued"], 0);
    assert_eq!(again["deliveries"]["sent"], 0);

    let status = site.cli(&["--json", "status"]).await;
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status[0]["slug"], "slow-reading");
    assert_eq!(status[0]["counts"]["sent"], 3);

    let log = site
        .cli(&["--json", "deliveries", "slow-reading", "--status", "sent"])
        .await;
    let log: serde_json::Value = serde_json::from_str(&log.stdout).unwrap();
    assert_eq!(log.as_array().unwrap().len(), 3);
    assert!(log[0]["smtp_reply"]
        .as_str()
        .unwrap()
        .starts_with("written to"));

    let text = site.cli(&["status"]).await;
    assert!(text.stdout.contains("slow-reading"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_post_is_reported_with_file_and_line_and_the_others_still_go_out() {
    let (smtp, site) = harness::site().await;
    // The first command creates the database; posts written after it are new.
    assert_eq!(
        site.cli(&["subscribers", "add", "reader@example.com", "--name", "독자"])
            .await
            .code,
        0
    );
    site.write_post(
        "broken.md",
        "+++\ntitle = \"깨진 글\"\ndate = \"2026-11-20\n+++\n본문",
    );
    site.write_post("no-title.md", "---\ndate: 2026-11-20\n---\n본문");
    site.write_post(
        "good.md",
        &post("멀쩡한 글", Utc::now() - Duration::milliseconds(1), "본문"),
    );

    let out = site.cli(&["check"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("broken.md:3:"),
        "file and line are named: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("no-title.md") && out.stdout.contains("title"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("2 with errors"), "{}", out.stdout);
    assert_eq!(
        smtp.count_for("reader@example.com"),
        1,
        "the good post went out"
    );
    assert_eq!(smtp.messages()[0].parsed().subject().unwrap(), "멀쩡한 글");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_reports_each_rejected_row_and_imports_the_rest() {
    let site = TestSite::new(None);
    let csv = site.path().join("people.csv");
    std::fs::write(
        &csv,
        "name,email\n김민지,minji@example.com\nBad,not-an-address\nShouting,MINJI@EXAMPLE.COM\n,park@Example.ORG\nInjected,\"x@example.com\r\nBcc: y@example.com\"\n",
    )
    .unwrap();
    let out = site
        .cli(&["--json", "subscribers", "import", csv.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["added"], 2);
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 3, "{report}");
    assert_eq!(rejected[0]["row"], 3);
    assert!(rejected[0]["reason"]
        .as_str()
        .unwrap()
        .contains("invalid address"));
    assert_eq!(rejected[1]["row"], 4);
    assert!(rejected[1]["reason"]
        .as_str()
        .unwrap()
        .contains("duplicate of row 2"));
    assert_eq!(rejected[2]["row"], 6);

    let list = site.cli(&["--json", "subscribers", "list"]).await;
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["minji@example.com", "park@example.org"]);
    assert_eq!(list[0]["name"], "김민지");

    // Importing again adds no one.
    let again = site
        .cli(&["--json", "subscribers", "import", csv.to_str().unwrap()])
        .await;
    let again: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["added"], 0);
    assert_eq!(again["already_present"], 2);

    let export = site.cli(&["subscribers", "export"]).await;
    assert!(
        export
            .stdout
            .starts_with("email,name,status,created_at,frequency,topics\n"),
        "{}",
        export.stdout
    );
    assert!(export.stdout.contains("minji@example.com,김민지,active,"));

    // Someone who left is not re-added by hand.
    assert_eq!(
        site.cli(&["subscribers", "remove", "park@example.org"])
            .await
            .code,
        0
    );
    let readd = site.cli(&["subscribers", "add", "park@example.org"]).await;
    assert_ne!(readd.code, 0);
    assert!(readd.stderr.contains("unsubscribed"), "{}", readd.stderr);
    let bad = site.cli(&["subscribers", "add", "nope"]).await;
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("no @"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_copies_previews_and_clear_errors() {
    let (smtp, site) = harness::site().await;
    // The links as the author wrote them: counted links have their own tests.
    site.append_config("[analytics]\nclicks = false\n");
    site.write_post(
        "essay.md",
        &post(
            "미리 보기",
            Utc::now() - Duration::days(1),
            "본문 [링크](x/)",
        ),
    );
    assert_eq!(site.cli(&["check"]).await.code, 0);

    let copy = site
        .cli(&["send", "essay", "--to", "author@example.com"])
        .await;
    assert_eq!(copy.code, 0, "{}", copy.stderr);
    assert_eq!(smtp.count_for("author@example.com"), 1);
    let status = site.cli(&["--json", "status"]).await;
    assert_eq!(status.stdout.trim(), "[]", "a test copy is not an issue");

    let html = site.cli(&["preview", "essay"]).await;
    assert!(
        html.stdout.contains("<html")
            && html
                .stdout
                .contains("https://essays.example.com/posts/essay/x/")
    );
    let text = site.cli(&["preview", "essay", "--format", "text"]).await;
    assert!(text.stdout.contains("미리 보기") && !text.stdout.contains("<p>"));
    let eml = site.cli(&["preview", "essay", "--format", "eml"]).await;
    assert!(eml
        .stdout
        .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));

    let missing = site.cli(&["send", "no-such-post", "--yes"]).await;
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("no post with slug `no-such-post`"),
        "{}",
        missing.stderr
    );

    std::fs::write(
        site.config_path(),
        std::fs::read_to_string(site.config_path()).unwrap() + "\n[feeds]\nlimt = 3\n",
    )
    .unwrap();
    let typo = site.cli(&["status"]).await;
    assert_ne!(typo.code, 0);
    assert!(
        typo.stderr.contains("limt"),
        "the unknown key is named: {}",
        typo.stderr
    );

    let no_config = TestSite::run_bin(&["--config", "/nonexistent/config.toml", "check"]).await;
    assert_ne!(no_config.code, 0);
    assert!(
        no_config.stderr.contains("posthorn init"),
        "{}",
        no_config.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_checks_at_once_send_each_subscriber_the_issue_once() {
    let (smtp, site) = harness::site().await;
    let csv = site.path().join("many.csv");
    let rows: String = (0..300)
        .map(|i| format!("reader{i}@example.com\n"))
        .collect();
    std::fs::write(&csv, format!("email\n{rows}")).unwrap();
    assert_eq!(
        site.cli(&["subscribers", "import", csv.to_str().unwrap()])
            .await
            .code,
        0
    );
    site.write_post(
        "new.md",
        &post("동시에", Utc::now() - Duration::milliseconds(1), "본문"),
    );

    let (a, b) = tokio::join!(
        site.cli(&["--json", "check"]),
        site.cli(&["--json", "check"])
    );
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let sent = |o: &crate::support::CliOutput| {
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        v["deliveries"]["sent"].as_u64().unwrap()
    };
    assert_eq!(sent(&a) + sent(&b), 300);
    assert_eq!(smtp.messages().len(), 300);
    for i in 0..300 {
        assert_eq!(smtp.count_for(&format!("reader{i}@example.com")), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn build_writes_a_static_site_and_drops_removed_posts() {
    let site = TestSite::new(None);
    site.write_post(
        "one.md",
        &post("하나", Utc::now() - Duration::days(2), "첫째"),
    );
    site.write_post(
        "two.md",
        &post(
            "둘",
            Utc::now() - Duration::days(1),
            "둘째 ![사진](photo.jpg)",
        ),
    );
    // The post's own folder: its images are copied where its links point.
    std::fs::create_dir_all(site.path().join("posts/two")).unwrap();
    std::fs::write(site.path().join("posts/two/photo.jpg"), b"jpeg bytes").unwrap();
    let out = site.path().join("public");
    let built = site
        .cli(&["--json", "build", "--out", out.to_str().unwrap()])
        .await;
    assert_eq!(built.code, 0, "{}", built.stderr);
    for file in [
        "feed.xml",
        "atom.xml",
        "feed.json",
        "index.html",
        "posts/one/index.html",
        "posts/two/index.html",
        "posts/two/photo.jpg",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    assert_eq!(
        std::fs::read(out.join("posts/two/photo.jpg")).unwrap(),
        b"jpeg bytes"
    );
    let feed = std::fs::read(out.join("feed.xml")).unwrap();
    assert_eq!(rss::Channel::read_from(&feed[..]).unwrap().items().len(), 2);

    site.remove_post("two.md");
    assert_eq!(
        site.cli(&["build", "--out", out.to_str().unwrap()])
            .await
            .code,
        0
    );
    assert!(
        !out.join("posts/two").exists(),
        "a removed post leaves no page behind"
    );
    assert!(out.join("posts/one/index.html").is_file());
    let feed = std::fs::read(out.join("feed.xml")).unwrap();
    assert_eq!(rss::Channel::read_from(&feed[..]).unwrap().items().len(), 1);
    // Rebuilding unchanged posts gives the same bytes.
    assert_eq!(
        site.cli(&["build", "--out", out.to_str().unwrap()])
            .await
            .code,
        0
    );
    assert_eq!(std::fs::read(out.join("feed.xml")).unwrap(), feed);
}

/// Every file below `dir`, by relative path, with its bytes.
#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_writes_only_what_changed_and_matches_a_full_build() {
    let site = TestSite::new(None);
    for i in 0..5 {
        site.write_post(
            &format!("p{i}.md"),
            &post(
                &format!("글 {i}"),
                Utc::now() - Duration::days(i + 1),
                "본문",
            ),
        );
    }
    let out = site.path().join("public");
    let build = |dir: &std::path::Path| {
        let dir = dir.to_str().unwrap().to_string();
        let site = &site;
        async move { site.cli(&["--json", "build", "--out", &dir]).await }
    };
    let first = build(&out).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let again = build(&out).await;
    let unchanged = |out: &crate::support::CliOutput| {
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["unchanged"] == true
    };
    assert!(unchanged(&again), "{}", again.stdout);
    // Byte for byte what a full build into a new folder writes.
    let fresh = site.path().join("fresh");
    assert_eq!(build(&fresh).await.code, 0);
    assert_eq!(files_below(&out), files_below(&fresh));

    // A changed post is seen: the next build writes it, and matches a full build again.
    site.write_post(
        "p0.md",
        &post("글 0, 고침", Utc::now() - Duration::days(1), "고친 본문"),
    );
    let changed = build(&out).await;
    assert!(!unchanged(&changed), "{}", changed.stdout);
    assert!(
        String::from_utf8_lossy(&std::fs::read(out.join("feed.xml")).unwrap()).contains("고침")
    );
    let files = |out: &crate::support::CliOutput| {
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["files"].clone()
    };
    // Only the changed post's page, the index and the three feeds were written.
    assert_eq!(files(&changed), 5, "{}", changed.stdout);
    let fresh2 = site.path().join("fresh2");
    assert_eq!(build(&fresh2).await.code, 0);
    assert_eq!(files_below(&out), files_below(&fresh2));

    // A post removed, one added with an image beside it, another's image changed:
    // each time the updated folder equals a whole build.
    site.remove_post("p4.md");
    site.write_post(
        "new/index.md",
        &post("새 글", Utc::now() - Duration::hours(1), "![그림](a.png)"),
    );
    site.write_post("new/a.png", "first");
    let updated = build(&out).await;
    assert_eq!(updated.code, 0, "{}", updated.stderr);
    assert!(!out.join("posts/p4").exists());
    let fresh3 = site.path().join("fresh3");
    assert_eq!(build(&fresh3).await.code, 0);
    assert_eq!(files_below(&out), files_below(&fresh3));
    site.remove_post("new/a.png");
    site.write_post("new/b.png", "second");
    assert_eq!(build(&out).await.code, 0);
    assert!(!out.join("posts/new/a.png").exists());
    let fresh4 = site.path().join("fresh4");
    assert_eq!(build(&fresh4).await.code, 0);
    assert_eq!(files_below(&out), files_below(&fresh4));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_only_server_sends_at_start_and_stops_gracefully_on_sigterm() {
    let (smtp, site) = harness::site().await;
    assert_eq!(
        site.cli(&["subscribers", "add", "a@example.com"])
            .await
            .code,
        0
    );
    assert_eq!(
        site.cli(&["subscribers", "add", "b@example.com"])
            .await
            .code,
        0
    );
    site.write_post(
        "new.md",
        &post("새 글", Utc::now() - Duration::milliseconds(1), "본문"),
    );
    let worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_posthorn"))
        .args([
            "--config",
            site.config_path().to_str().unwrap(),
            "serve",
            "--worker-only",
        ])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Its first tick runs at start: wait (bounded) for the two messages.
    smtp.wait_for(2).await;
    assert_eq!(smtp.len(), 2);
    let pid = worker.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = worker.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    let status = site.cli(&["--json", "status"]).await;
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status[0]["counts"]["sent"], 2);
}
