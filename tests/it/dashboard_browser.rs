//! The author's dashboard in headless Chromium: sign in, see the real counts,
//! preview a post, send it, watch the progress reach every subscriber (an
//! in-process SMTP server), read the log, find one address and its history,
//! sign out. With POSTHORN_SCREENS_DIR set, a PNG of each page is saved there
//! (tests/readers/screens.sh), in Korean and in English.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::dashboard::TOKEN;
use crate::support::{post, spawn_with, Action, RunningServer, SmtpServer, TestSite};

const READERS: usize = 12;

async fn text_of(browser: &Client, selector: &str) -> String {
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Clicks `selector` once it is there; a page still loading may replace the
/// element under the click, so a failed click is tried again (for 20 s at most).
async fn click(browser: &Client, selector: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let clicked = match browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(selector))
            .await
        {
            Ok(element) => element.click().await,
            Err(e) => panic!("{selector}: {e}"),
        };
        match clicked {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("{selector}: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{selector}: {e}"),
        }
    }
}

async fn fill(browser: &Client, selector: &str, text: &str) {
    let field = browser.find(Locator::Css(selector)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Saves a picture of the page when screenshots were asked for.
async fn picture(browser: &Client, language: &str, name: &str) {
    let Some(dir) = std::env::var_os("POSTHORN_SCREENS_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.unwrap();
    let path = dir.join(format!("{language}-{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// A site in `language` with readers, an essay sent to them, a bounce, and a
/// new essay waiting to be sent by hand.
async fn site(language: &str) -> (SmtpServer, TestSite) {
    let (smtp, site, app) = spawn_with(|site| {
        site.set_config("language = \"ko\"", &format!("language = \"{language}\""));
        site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    })
    .await;
    smtp.set_rule(|rcpt| {
        if rcpt.starts_with("gone") {
            Action::RcptReply(550, "5.1.1 <gone@example.org>: no such user".into())
        } else {
            Action::Accept
        }
    });
    let mut readers: Vec<String> = (1..READERS)
        .map(|i| format!("reader{i}@example.org"))
        .collect();
    readers.push("gone@example.org".into());
    let refs: Vec<&str> = readers.iter().map(String::as_str).collect();
    site.add_subscribers(&app, &refs).await;
    // The database was made a day ago: both essays are new, the second one an
    // hour old, waiting to be sent by hand.
    let day_ago = chrono::Utc::now() - chrono::Duration::days(1);
    site.set_meta("created_at", &day_ago.timestamp_millis().to_string())
        .await;
    let first = site.new_post(&app, "first.md", "느린 편지 · 첫 번째").await;
    app.tick()
        .run_once(first, posthorn::delivery::Stop::default())
        .await
        .unwrap();
    site.write_post(
        "second.md",
        &post(
            "두 번째 편지",
            chrono::Utc::now() - chrono::Duration::hours(1),
            "오늘은 천천히 읽는 이야기를 합니다.",
        ),
    );
    // As the scheduler's next tick would: the new post is read and stored.
    app.tick().sync_posts(chrono::Utc::now()).await.unwrap();
    app.close().await;
    (smtp, site)
}

#[cfg_attr(
    no_browser,
    ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver"
)]
#[tokio::test(flavor = "multi_thread")]
async fn the_author_signs_in_sends_and_follows_an_issue_in_chromium() {
    let Some(b) = crate::support::browser::start().await else {
        return;
    };
    let browser = b.client.clone();
    let languages: &[&str] = if std::env::var_os("POSTHORN_SCREENS_DIR").is_some() {
        &["ko", "en"]
    } else {
        &["ko"]
    };
    for language in languages {
        let (smtp, site) = site(language).await;
        let s = RunningServer::start_with_worker_at(&site, true).await;
        let sent_before = smtp.messages().len();

        // Sign in.
        browser.goto(&s.url("/admin")).await.unwrap();
        picture(&browser, language, "login").await;
        fill(&browser, "input[name=token]", TOKEN).await;
        click(&browser, "form button[type=submit]").await;
        // The overview shows the real counts.
        let active = text_of(&browser, "[data-status=active]").await;
        assert_eq!(active, (READERS - 1).to_string());
        assert_eq!(text_of(&browser, "[data-status=bounced]").await, "1");
        assert!(browser.find(Locator::Css("svg polyline")).await.is_ok());
        picture(&browser, language, "overview").await;

        // Preview the new post.
        click(&browser, "nav a[href='/admin/posts']").await;
        picture(&browser, language, "posts").await;
        click(&browser, "a[href='/admin/posts/second']").await;
        assert!(text_of(&browser, "pre").await.contains("천천히 읽는"));
        assert!(browser
            .find(Locator::Css("iframe.preview[sandbox]"))
            .await
            .is_ok());
        picture(&browser, language, "post").await;

        // Send it: the confirmation says how many will get it.
        click(&browser, "a[href='/admin/posts/second/send']").await;
        assert_eq!(
            text_of(&browser, "#recipients").await,
            (READERS - 1).to_string()
        );
        picture(&browser, language, "send").await;
        click(&browser, "#confirm-send").await;

        // Progress reaches every subscriber, live.
        browser
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::XPath(&format!(
                "//span[@id='sent-so-far'][text()='{}']",
                READERS - 1
            )))
            .await
            .expect("progress reaches every subscriber");
        assert_eq!(smtp.messages().len() - sent_before, READERS - 1);
        browser.refresh().await.unwrap();
        let rows = browser
            .find_all(Locator::Css(
                "#log ~ div table tbody tr, section table tbody tr",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), READERS - 1, "one log row per delivery");
        picture(&browser, language, "issue").await;

        // Find one address and open its history.
        fill(&browser, "input[name=q]", "reader7").await;
        click(&browser, "form[role=search] button").await;
        click(&browser, "a[href^='/admin/deliveries/']").await;
        assert!(text_of(&browser, "h1")
            .await
            .contains("reader7@example.org"));
        assert!(text_of(&browser, "tbody").await.contains("attempt"));
        picture(&browser, language, "delivery").await;

        // The other pages, for the pictures.
        browser.goto(&s.url("/admin/subscribers")).await.unwrap();
        assert!(text_of(&browser, "tbody")
            .await
            .contains("gone@example.org"));
        picture(&browser, language, "subscribers").await;
        click(
            &browser,
            "a[href^='/admin/subscribers/']:not([href$='.csv'])",
        )
        .await;
        picture(&browser, language, "subscriber").await;
        browser.goto(&s.url("/admin/bounces")).await.unwrap();
        picture(&browser, language, "bounces").await;

        // Sign out: the sign-in form comes back, and /admin asks to sign in again.
        // (Waiting for the form first: going elsewhere at once would cancel the
        // sign-out's own request.)
        click(&browser, "header form button").await;
        browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("input[name=token]"))
            .await
            .expect("the sign-in form after signing out");
        browser.goto(&s.url("/admin/posts")).await.unwrap();
        assert!(browser
            .find(Locator::Css("input[name=token]"))
            .await
            .is_ok());
        s.stop_worker().await;
    }
    browser.close().await.unwrap();
}
