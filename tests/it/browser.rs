//! A real browser through the subscriber's life: headless Chromium, driven over
//! WebDriver (chromedriver), against the real server and SMTP.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `.ci/run` installs them and sets
//! REQUIRE_BROWSER_TESTS=1, which turns a missing browser into a build failure.
//! Elsewhere the build script warns, and `cargo test` lists the tests as ignored
//! with the reason (see `support/needs.rs`).

use crate::support::{post, serve, serve_with};
use fantoccini::Locator;
use posthorn::delivery::Stop;
use posthorn::domain::SubscriberStatus;

#[cfg_attr(
    no_browser,
    ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_reader_subscribes_confirms_and_unsubscribes_in_chromium() {
    let Some(b) = crate::support::browser::start().await else {
        return;
    };
    let browser = b.client.clone();

    let (smtp, site, s) = serve().await;
    let text_of = |selector: &'static str| {
        let browser = browser.clone();
        async move {
            let element = browser
                .wait()
                .for_element(Locator::Css(selector))
                .await
                .expect(selector);
            element.text().await.unwrap()
        }
    };

    // Subscribe on the form.
    browser.goto(&s.url("/subscribe")).await.unwrap();
    assert!(text_of("h1").await.contains("새 글을 이메일로 받아 보세요"));
    browser
        .find(Locator::Css("input[name=email]"))
        .await
        .unwrap()
        .send_keys("browser@example.com")
        .await
        .unwrap();
    browser
        .find(Locator::Css("input[name=name]"))
        .await
        .unwrap()
        .send_keys("브라우저 독자")
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text_of("#message h1")
        .await
        .contains("메일함을 확인해 주세요"));
    // The confirmation is mailed after the answer.
    smtp.wait_for(1).await;
    assert_eq!(
        site.status_of(&s.app, "browser@example.com").await.unwrap(),
        SubscriberStatus::Pending
    );

    // Follow the link in the confirmation email.
    let link = smtp.messages()[0].link(&s.url("/confirm/"));
    browser.goto(&link).await.unwrap();
    assert!(text_of("#message h1")
        .await
        .contains("구독이 시작되었습니다"));
    assert_eq!(
        site.status_of(&s.app, "browser@example.com").await.unwrap(),
        SubscriberStatus::Active
    );

    // The next essay arrives; its unsubscribe link shows a button, and only the button acts.
    let created = s.app.ledger().created_at().await.unwrap();
    site.write_post(
        "next.md",
        &post("다음 글", created + chrono::Duration::seconds(1), "본문"),
    );
    s.app
        .tick()
        .run_once(created + chrono::Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    let unsubscribe = smtp
        .messages()
        .last()
        .unwrap()
        .link(&s.url("/unsubscribe/"));
    browser.goto(&unsubscribe).await.unwrap();
    assert!(text_of("h1").await.contains("구독을 해지할까요?"));
    assert_eq!(
        site.status_of(&s.app, "browser@example.com").await.unwrap(),
        SubscriberStatus::Active,
        "viewing changes nothing"
    );
    browser
        .find(Locator::Id("unsubscribe"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text_of("#message h1").await.contains("구독을 해지했습니다"));
    assert_eq!(
        site.status_of(&s.app, "browser@example.com").await.unwrap(),
        SubscriberStatus::Unsubscribed
    );
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&s.url("/unsubscribe/")),
        "no redirect"
    );

    browser.close().await.unwrap();
}

#[cfg_attr(
    no_browser,
    ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_reader_chooses_the_digest_and_a_topic_on_their_page_in_chromium() {
    let Some(b) = crate::support::browser::start().await else {
        return;
    };
    let browser = b.client.clone();
    let (smtp, site, s) =
        serve_with(|site| site.append_config("[posts]\ntopics = [\"에세이\", \"notes\"]")).await;
    site.add_subscribers(&s.app, &["page@example.com"]).await;
    let now = site.new_post(&s.app, "essay.md", "에세이 한 편").await;
    s.app.tick().run_once(now, Stop::default()).await.unwrap();
    let page = smtp.messages()[0].link(&s.url("/preferences/"));

    browser.goto(&page).await.unwrap();
    let heading = browser
        .wait()
        .for_element(Locator::Css("h1"))
        .await
        .unwrap();
    assert!(heading.text().await.unwrap().contains("받는 방식 바꾸기"));
    for selector in [
        "input[name=frequency][value=digest]",
        "input[name=topics][value=chosen]",
        "input[name=topic][value=에세이]",
    ] {
        browser
            .find(Locator::Css(selector))
            .await
            .expect(selector)
            .click()
            .await
            .unwrap();
    }
    browser
        .find(Locator::Id("save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let saved = browser
        .wait()
        .for_element(Locator::Id("saved"))
        .await
        .unwrap();
    assert!(saved.text().await.unwrap().contains("저장했습니다"));
    let reader = site.subscriber(&s.app, "page@example.com").await.unwrap();
    assert_eq!(
        reader.preferences.frequency,
        Some(posthorn::domain::Frequency::Digest)
    );
    assert_eq!(reader.preferences.topics, Some(vec!["에세이".to_string()]));
    // The page shows what was saved.
    let checked = browser
        .find(Locator::Css("input[name=topic][value=에세이]"))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(checked.as_deref(), Some("true"));

    // Leaving from the same page.
    browser
        .find(Locator::Id("unsubscribe"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let message = browser
        .wait()
        .for_element(Locator::Css("#message h1"))
        .await
        .unwrap();
    assert!(message
        .text()
        .await
        .unwrap()
        .contains("구독을 해지했습니다"));
    assert_eq!(
        site.status_of(&s.app, "page@example.com").await.unwrap(),
        SubscriberStatus::Unsubscribed
    );
    browser.close().await.unwrap();
}
