//! Honest numbers over real HTTP: clicks on the links of a real email, opens
//! of its pixel, archive views and feed followers, counted per issue, link,
//! post and service, and never per person.

use posthorn::delivery::Stop;
use posthorn::tokens::EmailTag;
use reqwest::header;

use crate::support::{serve_with, Received, RunningServer, TestSite};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
const BODY: &str = "읽을거리: [첫째](https://example.org/a) 그리고 \
                    [둘째](https://example.org/b?x=1&y=2), 답장은 [메일](mailto:me@example.org).";

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What a click or open could have changed in the tables that name someone.
async fn person_tables(site: &TestSite) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT CAST(id AS TEXT) || '|' || email || '|' || status || '|' || CAST(updated_at AS TEXT) \
         FROM subscribers ORDER BY id",
        "SELECT CAST(id AS TEXT) || '|' || status || '|' || CAST(attempts AS TEXT) || '|' \
         || CAST(updated_at AS TEXT) FROM deliveries ORDER BY id",
        "SELECT CAST(COUNT(*) AS TEXT) FROM delivery_events",
        "SELECT CAST(COUNT(*) AS TEXT) FROM reports",
        "SELECT CAST(COUNT(*) AS TEXT) FROM admin_sessions",
    ] {
        rows.extend(site.texts(sql).await);
    }
    rows
}

/// Every `href` of the HTML part that goes through `/c/`.
fn counted_links(message: &Received, base: &str) -> Vec<String> {
    let parsed = message.parsed();
    let html = parsed.body_html(0).unwrap().to_string();
    let prefix = format!("href=\"{base}/c/");
    html.match_indices(&prefix)
        .map(|(i, _)| {
            let rest = &html[i + 6..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect()
}

/// Writes post `n` of the test (`slug`, `title`, the links of [`BODY`]), dated
/// just after the database was made (a new post, already published), and
/// runs the tick that sends it.
async fn publish(site: &TestSite, s: &RunningServer, slug: &str, title: &str, n: i64) {
    let created = s.app.ledger().created_at().await.unwrap();
    site.write_post(
        &format!("{slug}.md"),
        &crate::support::post(title, created + chrono::Duration::milliseconds(5 * n), BODY),
    );
    s.app
        .tick()
        .run_once(created + chrono::Duration::minutes(n), Stop::default())
        .await
        .unwrap();
}

/// A site with `[analytics]` as given, three readers, and one post sent to them.
async fn sent(analytics: &str) -> (crate::support::SmtpServer, TestSite, RunningServer) {
    let analytics = analytics.to_string();
    let (smtp, site, s) = serve_with(move |site| {
        site.append_config(&format!(
            "[server]\nadmin_token = \"s3cret-admin-token\"\n\n[analytics]\n{analytics}"
        ))
    })
    .await;
    site.add_subscribers(&s.app, &["a@example.com", "b@example.com", "c@example.com"])
        .await;
    publish(&site, &s, "links", "링크 모음", 1).await;
    assert_eq!(smtp.len(), 3);
    s.site.refresh().await.unwrap();
    (smtp, site, s)
}

fn message_to(smtp: &crate::support::SmtpServer, address: &str) -> Received {
    smtp.messages()
        .into_iter()
        .find(|m| m.rcpt_to.iter().any(|r| r == address))
        .unwrap()
}

async fn stats(s: &RunningServer) -> serde_json::Value {
    s.app.analytics().flush().await.unwrap();
    let r = s
        .client
        .get(s.url("/api/posts/links/stats"))
        .bearer_auth("s3cret-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<serde_json::Value>().await.unwrap()["posts"][0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn clicks_and_opens_are_counted_per_issue_and_link_and_name_no_one() {
    let (smtp, site, s) = sent("opens = true\n").await;
    let (a, b) = (
        message_to(&smtp, "a@example.com"),
        message_to(&smtp, "b@example.com"),
    );

    // Both parts point through /c/; mailto and the reader's own links do not.
    let links_a = counted_links(&a, &s.base);
    let links_b = counted_links(&b, &s.base);
    assert_eq!(links_a.len(), 2, "{links_a:?}");
    assert!(a.text().contains(&format!("{}/c/", s.base)), "{}", a.text());
    let html = a.parsed().body_html(0).unwrap().to_string();
    assert!(html.contains("href=\"mailto:me@example.org\""), "{html}");
    assert!(html.contains("/unsubscribe/") && html.contains(&format!("{}/o/", s.base)));
    assert!(
        !html.contains("https://example.org/a"),
        "the link itself is not in the email"
    );
    assert_ne!(links_a, links_b, "each email has its own tag");

    let before = person_tables(&site).await;
    let http = client();
    let click = |url: String, agent: &'static str| {
        let http = http.clone();
        async move {
            http.get(url)
                .header(header::USER_AGENT, agent)
                .send()
                .await
                .unwrap()
        }
    };
    // a clicks the first link twenty times (a flood counts once a minute), b both.
    for _ in 0..20 {
        let r = click(links_a[0].clone(), FIREFOX).await;
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()[header::LOCATION], "https://example.org/a");
    }
    let r = click(links_b[0].clone(), SAFARI).await;
    assert_eq!(r.headers()[header::LOCATION], "https://example.org/a");
    let r = click(links_b[1].clone(), SAFARI).await;
    assert_eq!(
        r.headers()[header::LOCATION],
        "https://example.org/b?x=1&y=2"
    );
    // Redirected, and not counted: a HEAD, a prefetch, a crawler.
    let r = http
        .head(&links_b[1])
        .header(header::USER_AGENT, SAFARI)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let r = http
        .get(&links_a[1])
        .header(header::USER_AGENT, FIREFOX)
        .header("Sec-Purpose", "prefetch")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let r = click(
        links_a[1].clone(),
        "Mozilla/5.0 (compatible; Barracuda Sentinel)",
    )
    .await;
    assert_eq!(r.status(), 302);

    // Opens: a person's; one through Apple's proxy; then a third email opened
    // from the same network within seconds of the other two: a gateway's burst.
    let pixel = |m: &Received| {
        let html = m.parsed().body_html(0).unwrap().to_string();
        let i = html.find(&format!("{}/o/", s.base)).unwrap();
        html[i..i + html[i..].find('"').unwrap()].to_string()
    };
    let r = click(pixel(&a), FIREFOX).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "image/gif");
    click(pixel(&b), "Mozilla/5.0").await;
    let issue = s.app.ledger().issue_statuses(Some("links")).await.unwrap()[0].issue_id;
    let third = s.app.links().tokens().email_tag(EmailTag {
        issue_id: issue,
        tag: 42,
    });
    let r = click(format!("{}/o/{third}", s.base), FIREFOX).await;
    assert_eq!(r.status(), 200);

    // The text part's link works as the HTML part's does.
    let in_text = b.link(&format!("{}/c/", s.base));
    let r = click(in_text, SAFARI).await;
    assert_eq!(r.status(), 302);
    assert!(r.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .starts_with("https://example.org/"));

    let post = stats(&s).await;
    assert_eq!(post["delivered"], 3);
    assert_eq!(post["clicks"], 3, "{post}");
    assert_eq!(post["unique_clicks"], 2, "{post}");
    let links = post["links"].as_array().unwrap();
    assert_eq!(links[0]["url"], "https://example.org/a");
    assert_eq!(
        (
            links[0]["clicks"].clone(),
            links[0]["unique_clicks"].clone()
        ),
        (2.into(), 2.into())
    );
    assert_eq!(links[1]["url"], "https://example.org/b?x=1&y=2");
    assert_eq!(links[1]["clicks"], 1);
    assert_eq!(post["opens"]["human"], 1, "{post}");
    assert_eq!(post["opens"]["unique"], 1);
    assert_eq!(post["opens"]["machine"], 2);

    assert_eq!(
        person_tables(&site).await,
        before,
        "a click, an open or a view wrote about a person"
    );

    // The command line says the same.
    let out = site.cli(&["stats", "links", "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["posts"][0]["clicks"], 3);
    let out = site.cli(&["stats"]).await;
    assert!(
        out.stdout.contains("links") && out.stdout.contains("3 (2 unique)"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_cut_or_moved_tokens_are_404_never_a_redirect() {
    let (smtp, site, s) = sent("opens = true\n").await;
    let link = counted_links(&message_to(&smtp, "a@example.com"), &s.base)[0].clone();
    let token = link.rsplit('/').next().unwrap().to_string();
    let (link_part, tag) = token.split_once('.').unwrap();

    // A second issue, whose email tag is paired with the first issue's link.
    publish(&site, &s, "second", "둘째 글", 2).await;
    let second = smtp
        .messages()
        .into_iter()
        .find(|m| m.parsed().subject() == Some("둘째 글"))
        .unwrap();
    let other = counted_links(&second, &s.base)[0].clone();
    let other_tag = other.rsplit('.').next().unwrap();

    let flip = |s: &str, at: usize| {
        let mut b = s.as_bytes().to_vec();
        b[at] = if b[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let http = client();
    for bad in [
        format!("{link_part}.{other_tag}"),
        format!("{}.{tag}", flip(link_part, 2)),
        format!("{}.{tag}", flip(link_part, link_part.len() - 1)),
        format!("{link_part}.{}", flip(tag, 5)),
        format!("{link_part}.{}", &tag[..tag.len() - 4]),
        link_part.to_string(),
        format!("{link_part}.{tag}.extra"),
        "a.b.c".to_string(),
        "%00".to_string(),
    ] {
        let r = http
            .get(format!("{}/c/{bad}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{bad}");
        assert!(r.headers().get(header::LOCATION).is_none());
    }
    for bad in [flip(tag, 0), tag[..20].to_string(), "x".repeat(5000)] {
        let r = http
            .get(format!("{}/o/{bad}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
    let good = http.get(&link).header(header::USER_AGENT, FIREFOX);
    assert_eq!(good.send().await.unwrap().status(), 302);
    assert_eq!(stats(&s).await["clicks"], 1, "only the good one counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_clicks_off_links_are_left_alone_and_feeds_never_counted() {
    let (smtp, _site, s) = sent("clicks = false\n").await;
    let a = message_to(&smtp, "a@example.com");
    assert!(counted_links(&a, &s.base).is_empty());
    let html = a.parsed().body_html(0).unwrap().to_string();
    assert!(html.contains("href=\"https://example.org/a\""), "{html}");
    assert!(
        !html.contains(&format!("{}/o/", s.base)),
        "opens are off by default"
    );
    // The feeds and the archive keep the author's links, whatever is counted.
    let feed = s.text("/feed.xml").await;
    assert!(
        feed.contains("https://example.org/a") && !feed.contains("/c/"),
        "{feed}"
    );
    let page = s.text("/posts/links/").await;
    assert!(page.contains("https://example.org/a") && !page.contains("/c/"));
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_views_and_feed_followers_are_counted_without_a_cookie() {
    let (_smtp, site, s) = sent("").await;
    let before = person_tables(&site).await;
    let http = client();
    let page = s.url("/posts/links/");
    for _ in 0..3 {
        let r = http
            .get(&page)
            .header(header::USER_AGENT, FIREFOX)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get(header::SET_COOKIE).is_none());
    }
    for agent in [
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "facebookexternalhit/1.1",
        "curl/8.5.0",
    ] {
        http.get(&page)
            .header(header::USER_AGENT, agent)
            .send()
            .await
            .unwrap();
    }
    http.head(&page)
        .header(header::USER_AGENT, SAFARI)
        .send()
        .await
        .unwrap();
    http.get(&page)
        .header(header::USER_AGENT, SAFARI)
        .header("Purpose", "prefetch")
        .send()
        .await
        .unwrap();

    for (path, agent) in [
        (
            "/feed.xml",
            "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; )",
        ),
        (
            "/feed.xml",
            "Mozilla/5.0 (compatible; Inoreader/1.0; +https://www.inoreader.com; 45 subscribers)",
        ),
        (
            "/feed.xml",
            "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 140 subscribers; )",
        ),
        (
            "/atom.xml",
            "NewsBlur Feed Fetcher - 12 subscribers - https://www.newsblur.com/site/9/x",
        ),
        ("/feed.json", FIREFOX),
    ] {
        let r = http
            .get(s.url(path))
            .header(header::USER_AGENT, agent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    let post = stats(&s).await;
    assert_eq!(post["views"], 1, "one person, one minute: {post}");
    assert_eq!(post["views_by_day"].as_array().unwrap().len(), 1);
    let r = s
        .client
        .get(s.url("/api/posts/links/stats"))
        .bearer_auth("s3cret-admin-token")
        .send()
        .await
        .unwrap();
    let all: serde_json::Value = r.json().await.unwrap();
    assert_eq!(all["followers"]["total"], 140 + 45 + 12, "{all}");
    let services: Vec<&str> = all["followers"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["Feedly", "Inoreader", "NewsBlur"]);
    assert_eq!(person_tables(&site).await, before);

    // The dashboard draws them: the overview (views over 90 days, followers
    // by service) and the post's page.
    let signed = crate::dashboard::sign_in(&s, "s3cret-admin-token")
        .await
        .expect("signed in");
    let overview = signed.get(&s, "/admin").await;
    assert_eq!(overview.status(), 200);
    let overview = overview.text().await.unwrap();
    assert!(overview.contains("id=\"followers\">197<"), "{overview}");
    assert!(overview.contains("Feedly"), "followers by service");
    let page = signed.get(&s, "/admin/posts/links").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"views\">1<"), "{page}");
    assert!(page.contains("<svg"), "views over time");

    // Without the token, nothing.
    let r = s
        .client
        .get(s.url("/api/posts/links/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let unknown = s.app.analytics().stats(Some("nope")).await.unwrap_err();
    assert!(unknown.to_string().contains("nope"), "{unknown}");
}
