//! A real browser through the subscriber's life: headless Chromium, driven over
//! WebDriver (chromedriver), against the real server and SMTP.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `.ci/run` installs them and sets
//! REQUIRE_BROWSER_TESTS=1, which turns a missing browser into a failure. Elsewhere
//! the test says loudly that it was skipped.

use crate::support::{post, RunningServer, SmtpServer, TestSite};
use fantoccini::Locator;
use posthorn::delivery::Stop;
use posthorn::domain::SubscriberStatus;

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_subscribes_confirms_and_unsubscribes_in_chromium() {
    let Some(b) = crate::support::browser::start().await else {
        return;
    };
    let browser = b.client.clone();

    let smtp = SmtpServer::start().await;
    let site = TestSite::new(Some(smtp.port));
    let s = RunningServer::start(&site, true).await;
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
    assert_eq!(
        site.status_of(&s.app, "browser@example.com").await.unwrap(),
        SubscriberStatus::Pending
    );

    // Follow the link in the confirmation email.
    let confirmation = smtp.messages()[0]
        .parsed()
        .body_text(0)
        .unwrap()
        .to_string();
    let link = confirmation
        .split_whitespace()
        .find(|w| w.starts_with(&s.url("/confirm/")))
        .unwrap()
        .to_string();
    browser.goto(&link).await.unwrap();
    assert!(text_of("#message h1")
        .await
        .contains("구독이 시작되었습니다"));
    assert_eq!(
        site.status_of(&s.app, "browser@example.com").await.unwrap(),
        SubscriberStatus::Active
    );

    // The next essay arrives; its unsubscribe link shows a button, and only the button acts.
    let created = s.app.reports().created_at().await.unwrap();
    site.write_post(
        "next.md",
        &post("다음 글", created + chrono::Duration::seconds(1), "본문"),
    );
    s.app
        .tick()
        .run_once(created + chrono::Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    let essay = smtp
        .messages()
        .last()
        .unwrap()
        .parsed()
        .body_text(0)
        .unwrap()
        .to_string();
    let unsubscribe = essay
        .split_whitespace()
        .find(|w| w.starts_with(&s.url("/unsubscribe/")))
        .unwrap()
        .to_string();
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
