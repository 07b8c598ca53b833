//! What a subscriber's mail client receives, parsed with a real MIME parser.

use crate::support::{harness, spawn_with, SmtpServer, TestSite};
use chrono::{Duration, Utc};
use mail_parser::{HeaderValue, MimeHeaders};
use posthorn::delivery::Stop;
use posthorn::tokens::Purpose;

const BODY: &str = r#"첫 문단에는 [상대 링크](../other/)와 [각주](#note)가 있다.

![그림](images/a.png)

<img src="/raw/b.png" srcset="small.png 1x, /big.png 2x">

둘째 문단 & 특수문자 <b>굵게</b>."#;

async fn send_one(title: &str) -> (SmtpServer, TestSite, posthorn::App) {
    // The links as the author wrote them: counted links have their own tests.
    let (smtp, site, app) =
        spawn_with(|site| site.append_config("[analytics]\nclicks = false\n")).await;
    site.add_subscribers(&app, &["Reader@Example.COM"]).await;
    let created = app.ledger().created_at().await.unwrap();
    site.write_post(
        "essay.md",
        &crate::support::post(title, created + Duration::seconds(1), BODY),
    );
    let report = app
        .tick()
        .run_once(created + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.sent, 1, "{report:?}");
    (smtp, site, app)
}

fn header_text(message: &mail_parser::Message<'_>, name: &str) -> String {
    message
        .header_raw(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_has_the_headers_and_parts_of_the_contract() {
    let title = "느리게 읽기에 대하여 — 삼 년의 기록";
    let (smtp, site, app) = send_one(title).await;
    let received = smtp.messages();
    let raw = &received[0];
    assert_eq!(raw.rcpt_to, vec!["Reader@example.com".to_string()]);
    assert_eq!(raw.mail_from, "essays@example.com");
    let m = raw.parsed();

    // From, To, Date, UTF-8 Subject.
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.address().unwrap(), "essays@example.com");
    assert_eq!(from.name().unwrap(), "Jerry");
    assert_eq!(
        m.to().unwrap().first().unwrap().address().unwrap(),
        "Reader@example.com"
    );
    assert!(m.date().is_some());
    assert_eq!(
        m.subject().unwrap(),
        title,
        "the Korean subject round-trips"
    );
    let raw_text = String::from_utf8_lossy(&raw.data);
    let subject_line = raw_text
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap();
    assert!(
        subject_line.is_ascii() && subject_line.contains("=?utf-8?"),
        "RFC 2047: {subject_line}"
    );

    // Deterministic Message-ID per (issue, subscriber), carrying a MAC that no
    // reader can compute for another.
    let subscriber = site.subscriber(&app, "reader@example.com").await.unwrap();
    let issue = app.publishing().issue_of("essay").await.unwrap();
    let tokens = app.links().tokens();
    let mac = tokens.message_id_mac(issue.id, subscriber.id);
    assert_eq!(
        m.message_id().unwrap(),
        format!("{}.{}.{mac}@example.com", issue.id, subscriber.id)
    );
    assert_eq!(mac.len(), 20, "{mac}");
    assert_ne!(mac, tokens.message_id_mac(issue.id, subscriber.id + 1));

    // List headers; the unsubscribe token is signed for this subscriber.
    // mail-parser reads List-Id as a phrase and an angle-bracketed id.
    match m.header("List-Id") {
        Some(HeaderValue::Address(list)) => {
            let id = list.first().unwrap();
            assert_eq!(id.name().unwrap(), "느린 편지");
            assert_eq!(id.address().unwrap(), "essays.example.com");
        }
        other => panic!("unexpected List-Id: {other:?}"),
    }
    let unsubscribe = header_text(&m, "List-Unsubscribe");
    let token = unsubscribe
        .trim_matches(['<', '>'])
        .strip_prefix("https://essays.example.com/unsubscribe/")
        .unwrap_or_else(|| panic!("unexpected List-Unsubscribe: {unsubscribe}"));
    assert_eq!(
        app.links()
            .tokens()
            .verify(token, Purpose::Unsubscribe, Utc::now()),
        Ok(subscriber.id)
    );
    assert_eq!(
        header_text(&m, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );

    // multipart/alternative with a text and an HTML part.
    let ct = m.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    let text = m.body_text(0).unwrap();
    let html = m.body_html(0).unwrap();
    assert!(
        text.contains("첫 문단에는") && text.contains("둘째 문단 & 특수문자"),
        "{text}"
    );
    assert!(!text.contains("<p>"), "the text part is not HTML: {text}");
    assert!(
        text.contains("https://essays.example.com/unsubscribe/"),
        "{text}"
    );
    assert!(html.contains("둘째 문단 &amp; 특수문자"));
    assert!(
        html.contains(r#"href="https://essays.example.com/posts/essay/""#),
        "view in browser link"
    );
    assert!(html.contains(&format!(
        r#"href="https://essays.example.com/unsubscribe/{token}""#
    )));
    assert!(!html.contains("<style"), "CSS is inlined");
    assert!(html.contains("style=\""), "CSS is inlined");

    // Absolute URLs only.
    for attr in ["href=\"", "src=\"", "srcset=\""] {
        for value in html.split(attr).skip(1) {
            let value = value.split('"').next().unwrap();
            for url in value.split(", ") {
                assert!(
                    url.starts_with("https://") || url.starts_with("mailto:"),
                    "relative URL in HTML: {attr}{value}"
                );
            }
        }
    }
    assert!(html.contains("https://essays.example.com/posts/other/"));
    assert!(html.contains("https://essays.example.com/posts/essay/#note"));
    assert!(html.contains("https://essays.example.com/posts/essay/images/a.png"));
    assert!(html.contains("https://essays.example.com/posts/essay/small.png 1x, https://essays.example.com/big.png 2x"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_title_cannot_inject_headers_or_markup() {
    let title = "Hello\r\nBcc: victim@example.com\r\n\r\n<script>alert(1)</script>";
    let (smtp, _site, _app) = send_one(title).await;
    let received = smtp.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].rcpt_to,
        vec!["Reader@example.com".to_string()],
        "no extra recipient"
    );
    let m = received[0].parsed();
    assert!(m.header("Bcc").is_none());
    assert_eq!(
        m.subject().unwrap(),
        "Hello Bcc: victim@example.com <script>alert(1)</script>"
    );
    let html = m.body_html(0).unwrap();
    assert!(
        !html.contains("<script>alert"),
        "markup in a title is escaped"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

/// 8bit where the server offers 8BITMIME, base64 where it does not, pipelined or
/// not: the same text arrives every way, every line fits the wire, and nothing a
/// reader typed as their name can end a line or start one with a dot.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_travel_8bit_where_offered_and_a_name_cannot_break_the_wire() {
    let cases: [(&[&str], bool); 3] = [
        (&["8BITMIME", "PIPELINING"], true),
        (&["8BITMIME"], true),
        (&["SIZE 10000000"], false),
    ];
    // One long paragraph: 2,400 characters of Korean on one line of HTML.
    let long = "천천히 읽는다는 것은 문장 곁에 오래 머무는 일이다. ".repeat(80);
    for (extensions, eight_bit) in cases {
        let (smtp, site) = harness::site().await;
        smtp.set_extensions(extensions);
        // The name at the start of a line of the text part, twice.
        site.write_template(
            "email.txt.hbs",
            "{{subscriber.name}}\n.{{subscriber.name}}\n{{post.content_text}}\n{{unsubscribe_url}}\n",
        );
        let app = site.app().await;
        let names = [
            ".dot",
            "a\r\n.\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.net>",
        ];
        let rows: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let email = format!("r{i}@example.com");
                (
                    posthorn::domain::EmailAddress::parse(&email).unwrap(),
                    n.to_string(),
                )
            })
            .collect();
        app.subscriptions().import(&rows, Utc::now()).await.unwrap();
        let created = app.ledger().created_at().await.unwrap();
        site.write_post(
            "essay.md",
            &crate::support::post("긴 문단", created + Duration::seconds(1), &long),
        );
        let report = app
            .tick()
            .run_once(created + Duration::minutes(1), Stop::default())
            .await
            .unwrap();
        assert_eq!(report.deliveries.sent, 2, "{extensions:?}: {report:?}");
        let received = smtp.messages();
        assert_eq!(
            received.len(),
            2,
            "{extensions:?}: no message more, none less"
        );
        for raw in &received {
            assert_eq!(raw.rcpt_to.len(), 1);
            assert!(!raw.rcpt_to[0].contains("victim"));
            assert_eq!(raw.body_8bit, eight_bit, "{extensions:?}");
            assert_eq!(raw.data.is_ascii(), !eight_bit, "{extensions:?}");
            let text = String::from_utf8(raw.data.clone()).unwrap();
            for line in text.split("\r\n") {
                assert!(
                    line.len() <= 998,
                    "{extensions:?}: a line of {}",
                    line.len()
                );
            }
            assert!(!text.replace("\r\n", "\n").contains('\r'), "no bare CR");
            let m = raw.parsed();
            let name = if raw.rcpt_to[0] == "r0@example.com" {
                ".dot".to_string()
            } else {
                "a . MAIL FROM:<evil@example.net> RCPT TO:<victim@example.net>".to_string()
            };
            let body = m.body_text(0).unwrap();
            assert!(
                body.starts_with(&format!("{name}\r\n.{name}\r\n"))
                    || body.starts_with(&format!("{name}\n.{name}\n")),
                "{extensions:?}: {:?}",
                &body[..body.len().min(200)]
            );
            let html = m.body_html(0).unwrap();
            assert!(
                html.replace("\r\n", " ")
                    .replace('\n', " ")
                    .contains(long.trim_end()),
                "{extensions:?}: the long paragraph arrives whole"
            );
            let encodings: Vec<String> = m
                .parts
                .iter()
                .filter_map(|p| p.content_transfer_encoding().map(str::to_string))
                .collect();
            let expected = if eight_bit { "8bit" } else { "base64" };
            assert_eq!(encodings, vec![expected, expected], "{extensions:?}");
        }
    }
}
