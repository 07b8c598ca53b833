//! Following an existing blog: a local HTTP server serves fixture feeds that each
//! test changes between ticks, with ETags, 304s, errors, a slow answer, a
//! truncated body, a permanent redirect and a redirect the test points anywhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use crate::support::{spawn_with, SmtpServer, TestSite};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, Utc};
use posthorn::delivery::Stop;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Ok,
    Status(u16),
    Slow,
    Truncated,
}

struct Blog {
    body: Mutex<Vec<u8>>,
    /// Where `/moved` redirects.
    location: Mutex<String>,
    content_type: Mutex<&'static str>,
    mode: Mutex<Mode>,
    requests: AtomicUsize,
    not_modified: AtomicUsize,
}

#[derive(Clone)]
struct FixtureServer {
    base: String,
    blog: Arc<Blog>,
}

impl FixtureServer {
    async fn start() -> FixtureServer {
        let blog = Arc::new(Blog {
            body: Mutex::new(Vec::new()),
            location: Mutex::new(String::new()),
            content_type: Mutex::new("application/rss+xml; charset=utf-8"),
            mode: Mutex::new(Mode::Ok),
            requests: AtomicUsize::new(0),
            not_modified: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/feed", get(serve_feed))
            .route(
                "/old-feed",
                get(|| async { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/feed")]) }),
            )
            .route(
                "/moved",
                get(|State(blog): State<Arc<Blog>>| async move {
                    let to = blog.location.lock().unwrap().clone();
                    (StatusCode::FOUND, [(header::LOCATION, to)])
                }),
            )
            .with_state(blog.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FixtureServer { base, blog }
    }

    fn set(&self, body: impl Into<Vec<u8>>, content_type: &'static str) {
        *self.blog.body.lock().unwrap() = body.into();
        *self.blog.content_type.lock().unwrap() = content_type;
    }

    fn mode(&self, mode: Mode) {
        *self.blog.mode.lock().unwrap() = mode;
    }

    fn redirect_to(&self, location: &str) {
        *self.blog.location.lock().unwrap() = location.to_string();
    }

    fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }
}

async fn serve_feed(State(blog): State<Arc<Blog>>, headers: HeaderMap) -> Response {
    blog.requests.fetch_add(1, Ordering::SeqCst);
    let mode = *blog.mode.lock().unwrap();
    let body = blog.body.lock().unwrap().clone();
    let etag = format!("\"{}\"", posthorn::domain::hex(&sha2_digest(&body)));
    match mode {
        Mode::Status(code) => return StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Slow => tokio::time::sleep(StdDuration::from_secs(5)).await,
        Mode::Truncated => {
            let cut = body[..body.len() / 2].to_vec();
            return (
                [(header::CONTENT_TYPE, *blog.content_type.lock().unwrap())],
                cut,
            )
                .into_response();
        }
        Mode::Ok => {}
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        blog.not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let content_type = *blog.content_type.lock().unwrap();
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)[..8].to_vec()
}

/// One item: (title, link, guid, date, description HTML, content:encoded HTML).
struct Item<'a> {
    title: &'a str,
    link: &'a str,
    guid: Option<&'a str>,
    date: DateTime<Utc>,
    description: &'a str,
    content: Option<&'a str>,
}

/// A Tistory- or WordPress-style RSS 2.0 feed: CDATA descriptions, optional content:encoded.
fn rss(items: &[Item]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\">\n<channel><title>블로그</title><link>https://blog.example.com/</link><description>d</description>\n",
    );
    for it in items {
        out.push_str(&format!(
            "<item><title><![CDATA[{}]]></title><link>{}</link>",
            it.title, it.link
        ));
        if let Some(guid) = it.guid {
            out.push_str(&format!("<guid isPermaLink=\"false\">{guid}</guid>"));
        }
        out.push_str(&format!(
            "<pubDate>{}</pubDate>",
            it.date.with_timezone(&chrono_tz::Asia::Seoul).to_rfc2822()
        ));
        out.push_str(&format!(
            "<description><![CDATA[{}]]></description>",
            it.description
        ));
        if let Some(content) = it.content {
            out.push_str(&format!(
                "<content:encoded><![CDATA[{content}]]></content:encoded>"
            ));
        }
        out.push_str("<category>일상</category></item>\n");
    }
    out.push_str("</channel></rss>\n");
    out
}

fn old() -> DateTime<Utc> {
    Utc::now() - Duration::days(30)
}

/// A site following the blog's feed at `path`, mailing its own SMTP server, with
/// two readers.
async fn site_following(blog: &FixtureServer, path: &str) -> (SmtpServer, TestSite, posthorn::App) {
    let (smtp, site, app) = spawn_with(|site| {
        site.append_config(&format!(
            // The links as the entry wrote them: counted links have their own tests.
            "[posts]\nfeed = \"{}{path}\"\nfetch_timeout_seconds = 1\n\n[analytics]\nclicks = false\n",
            blog.base
        ))
    })
    .await;
    site.add_subscribers(&app, &["a@example.com", "b@example.com"])
        .await;
    (smtp, site, app)
}

async fn tick(app: &posthorn::App) -> posthorn::app::TickSummary {
    app.tick()
        .run_once(Utc::now(), Stop::default())
        .await
        .unwrap()
}

fn tistory(extra: Option<Item<'static>>) -> String {
    let mut items = vec![];
    if let Some(item) = extra {
        items.push(item);
    }
    items.push(Item {
        title: "두 번째 글",
        link: "https://blog.example.com/2",
        guid: None,
        date: old(),
        description: "<p>둘째 <b>본문</b></p>",
        content: None,
    });
    items.push(Item {
        title: "첫 글",
        link: "https://blog.example.com/1",
        guid: None,
        date: old() - Duration::days(7),
        description: "<p>첫 본문</p>",
        content: None,
    });
    rss(&items)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_fetch_sends_nothing_a_new_entry_goes_out_once_and_304s_send_nothing() {
    let blog = FixtureServer::start().await;
    blog.set(tistory(None), "application/rss+xml; charset=utf-8");
    let (smtp, site, app) = site_following(&blog, "/feed").await;

    let first = tick(&app).await;
    let upstream = first.upstream.unwrap();
    assert_eq!(upstream.status, "200 OK");
    assert_eq!(upstream.entries.as_ref().unwrap().new.len(), 2);
    assert!(upstream.entries.unwrap().first_fetch);
    assert!(first.issues.is_empty(), "the first fetch mails nothing");
    assert_eq!(smtp.len(), 0);
    // The archive is in the feeds.
    let snapshot = app.site().snapshot(Utc::now()).await.unwrap();
    assert_eq!(snapshot.posts.len(), 2);

    // Nothing changed: a conditional request, answered 304.
    let same = tick(&app).await;
    assert_eq!(same.upstream.unwrap().status, "304 Not Modified");
    assert_eq!(blog.blog.not_modified.load(Ordering::SeqCst), 1);

    // The blog publishes a new essay.
    blog.set(
        tistory(Some(Item {
            title: "새 글: 겨울 <준비>",
            link: "https://blog.example.com/3",
            guid: None,
            date: Utc::now() - Duration::minutes(5),
            description: "<p>겨울을 <a href=\"/tag/winter\">준비</a>하는 골목</p>",
            content: None,
        })),
        "application/rss+xml; charset=utf-8",
    );
    let new = tick(&app).await;
    assert_eq!(new.issues.len(), 1);
    assert_eq!(new.deliveries.sent, 2);
    let message = smtp.messages()[0].parsed().clone().into_owned();
    assert_eq!(message.subject().unwrap(), "새 글: 겨울 <준비>");
    let html = message.body_html(0).unwrap();
    assert!(html.contains("겨울을"), "the description is the content");
    assert!(
        html.contains("href=\"https://blog.example.com/tag/winter\""),
        "relative URLs resolved against the entry"
    );
    assert!(
        html.contains("https://blog.example.com/3"),
        "read on the blog: the entry's own link"
    );

    assert!(tick(&app).await.issues.is_empty());
    assert_eq!(smtp.len(), 2, "sent once");

    let sources = site.cli(&["--json", "sources"]).await;
    let sources: serde_json::Value = serde_json::from_str(&sources.stdout).unwrap();
    assert_eq!(sources[0]["entries"], 3);
    assert!(sources[0]["etag"].as_str().unwrap().starts_with('"'));
    assert_eq!(sources[0]["last_status"], "304 Not Modified");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_guid_with_a_known_link_is_an_update_not_a_new_post() {
    let blog = FixtureServer::start().await;
    let wordpress = |guid: &'static str, content: &'static str| {
        rss(&[Item {
            title: "워드프레스 글",
            link: "https://wp.example.com/2026/11/essay/",
            guid: Some(guid),
            date: old(),
            description: "요약",
            content: Some(content),
        }])
    };
    blog.set(
        wordpress("https://wp.example.com/?p=1", "<p>처음</p>"),
        "application/rss+xml",
    );
    let (smtp, _site, app) = site_following(&blog, "/feed").await;
    tick(&app).await;
    let post = app.publishing().post("essay").await.unwrap();
    assert!(
        post.content_html.contains("처음"),
        "content:encoded is the content"
    );

    blog.set(
        wordpress("https://wp.example.com/?p=1&amp;v=2", "<p>고친 본문</p>"),
        "application/rss+xml",
    );
    let report = tick(&app).await;
    let entries = report.upstream.unwrap().entries.unwrap();
    assert!(entries.new.is_empty(), "{entries:?}");
    assert_eq!(entries.updated.len(), 1);
    let updated = app.publishing().post("essay").await.unwrap();
    assert_eq!(updated.id, post.id);
    assert!(updated.content_html.contains("고친 본문"));
    assert!(report.issues.is_empty());
    assert_eq!(smtp.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_errors_change_nothing_and_the_next_good_fetch_works() {
    let blog = FixtureServer::start().await;
    blog.set(tistory(None), "application/rss+xml");
    let (smtp, site, app) = site_following(&blog, "/feed").await;
    tick(&app).await;
    let before = app.ledger().sources().await.unwrap()[0].clone();

    blog.set(
        tistory(Some(Item {
            title: "오류 뒤의 새 글",
            link: "https://blog.example.com/after",
            guid: None,
            date: Utc::now(),
            description: "본문",
            content: None,
        })),
        "application/rss+xml",
    );
    for (mode, expect) in [
        (Mode::Status(500), "HTTP 500"),
        (Mode::Status(404), "HTTP 404"),
        (Mode::Truncated, "not a valid feed"),
        (Mode::Slow, "timed out"),
    ] {
        blog.mode(mode);
        let report = tick(&app).await;
        let upstream = report.upstream.unwrap();
        assert_eq!(upstream.status, "error", "{mode:?}");
        assert!(
            upstream.error.as_deref().unwrap().contains(expect),
            "{mode:?}: {:?}",
            upstream.error
        );
        assert!(report.issues.is_empty(), "{mode:?}");
        let after = app.ledger().sources().await.unwrap()[0].clone();
        assert_eq!(
            (after.etag, after.entries),
            (before.etag.clone(), before.entries),
            "{mode:?}: state untouched"
        );
    }
    let sources = site.cli(&["sources"]).await;
    assert!(
        sources.stdout.contains("error: timed out"),
        "{}",
        sources.stdout
    );

    blog.mode(Mode::Ok);
    let good = tick(&app).await;
    assert_eq!(good.issues.len(), 1);
    assert_eq!(smtp.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_overlapping_ticks_send_a_new_entry_once() {
    let blog = FixtureServer::start().await;
    blog.set(tistory(None), "application/rss+xml");
    let (smtp, _site, app) = site_following(&blog, "/feed").await;
    tick(&app).await;
    blog.set(
        tistory(Some(Item {
            title: "동시에",
            link: "https://blog.example.com/both",
            guid: Some("both"),
            date: Utc::now(),
            description: "본문",
            content: None,
        })),
        "application/rss+xml",
    );
    let other = app.clone();
    let (a, b) = tokio::join!(tick(&app), tick(&other));
    assert_eq!(a.issues.len() + b.issues.len(), 1);
    assert_eq!(smtp.count_for("a@example.com"), 1);
    assert_eq!(smtp.count_for("b@example.com"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_are_removed_and_atom_euc_kr_and_redirects_work() {
    let blog = FixtureServer::start().await;
    let atom = |extra: &str| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>아톰</title><id>urn:blog</id><updated>2026-11-01T00:00:00+09:00</updated>
{extra}
<entry><title type="html">오래된 &lt;em&gt;글&lt;/em&gt;</title><id>urn:old</id><link href="https://atom.example.com/old"/><updated>2026-10-01T09:00:00+09:00</updated><content type="html">&lt;p&gt;옛 글&lt;/p&gt;</content></entry>
</feed>"#
        )
    };
    blog.set(atom(""), "application/atom+xml");
    // Configured at an old address that redirects permanently.
    let (smtp, _site, app) = site_following(&blog, "/old-feed").await;
    tick(&app).await;
    let source = app.ledger().sources().await.unwrap()[0].clone();
    assert_eq!(
        source.fetch_url,
        format!("{}/feed", blog.base),
        "the permanent redirect is remembered"
    );
    assert_eq!(
        app.publishing().post("old").await.unwrap().title,
        "오래된 글"
    );

    let now = Utc::now()
        .with_timezone(&chrono_tz::Asia::Seoul)
        .to_rfc3339();
    blog.set(
        atom(&format!(
            r#"<entry><title>스크립트 없는 글</title><id>urn:new</id><link href="https://atom.example.com/new"/><published>{now}</published><updated>{now}</updated>
<content type="html">&lt;p onclick="steal()"&gt;본문&lt;script&gt;alert(1)&lt;/script&gt;&lt;iframe src="https://evil.example/"&gt;&lt;/iframe&gt;&lt;img src="pics/a.png"&gt;&lt;/p&gt;</content></entry>"#
        )),
        "application/atom+xml",
    );
    let report = tick(&app).await;
    assert_eq!(report.issues.len(), 1);
    let html = smtp.messages()[0]
        .parsed()
        .body_html(0)
        .unwrap()
        .to_string();
    assert!(html.contains("본문"));
    for bad in ["<script", "alert(1)", "onclick", "<iframe", "evil.example"] {
        assert!(!html.contains(bad), "{bad} survived: {html}");
    }
    assert!(
        html.contains("src=\"https://atom.example.com/pics/a.png\""),
        "{html}"
    );

    // EUC-KR, declared in the XML only.
    let korean = tistory(None).replace("encoding=\"UTF-8\"", "encoding=\"euc-kr\"");
    let (bytes, _, _) = encoding_rs::EUC_KR.encode(&korean);
    blog.set(bytes.into_owned(), "application/rss+xml");
    let (_smtp2, _site2, app2) = site_following(&blog, "/feed").await;
    tick(&app2).await;
    // A numeric link (Tistory: /123) gives a slug from the title.
    assert_eq!(
        app2.publishing()
            .post("첫-글")
            .await
            .map(|p| p.title)
            .unwrap_or_default(),
        "첫 글"
    );
}

/// Every page, feed and email a post reaches, as text: the index, the post's
/// page, the three feeds and its email as rendered for a reader.
async fn everywhere(app: &posthorn::App, slug: &str) -> Vec<(String, String)> {
    let snapshot = app.site().snapshot(Utc::now()).await.unwrap();
    let mut out: Vec<(String, String)> = snapshot
        .pages
        .iter()
        .map(|p| (p.path.clone(), String::from_utf8(p.body.clone()).unwrap()))
        .collect();
    let post = app.publishing().post(slug).await.unwrap();
    let page = app.site().post_page(&post).unwrap();
    out.push((page.path, String::from_utf8(page.body).unwrap()));
    for format in [
        posthorn::app::PreviewFormat::Html,
        posthorn::app::PreviewFormat::Text,
    ] {
        let email = app.publishing().preview(slug, format).await.unwrap();
        out.push((format!("email ({format:?})"), email));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_link_never_reaches_a_page_a_feed_or_an_email() {
    let blog = FixtureServer::start().await;
    blog.set(tistory(None), "application/rss+xml");
    let (smtp, site, app) = site_following(&blog, "/feed").await;
    tick(&app).await;

    blog.set(
        tistory(Some(Item {
            title: "script link",
            link: "javascript:alert(document.domain)",
            guid: Some("evil"),
            date: Utc::now() - Duration::minutes(5),
            description: "<p><a href=\"next.html\">next</a> <img src=\"pics/a.png\"></p>",
            content: None,
        })),
        "application/rss+xml",
    );
    let report = tick(&app).await;
    assert_eq!(report.issues.len(), 1);
    let post = app.publishing().post("script-link").await.unwrap();
    assert_eq!(post.external_url, None);
    // Relative URLs resolve against the feed, never against the script URL.
    assert!(
        post.content_html
            .contains(&format!("href=\"{}/next.html\"", blog.base)),
        "{}",
        post.content_html
    );
    assert!(post
        .content_html
        .contains(&format!("src=\"{}/pics/a.png\"", blog.base)));
    let own_page = "https://essays.example.com/posts/script-link/";
    let sent = smtp.messages()[0].parsed().into_owned();
    let html = sent.body_html(0).unwrap().to_string();
    let text = sent.body_text(0).unwrap().to_string();
    assert!(html.contains(&format!("href=\"{own_page}\"")), "{html}");
    assert!(text.contains(own_page), "{text}");
    for (what, body) in [("html", &html), ("text", &text)]
        .into_iter()
        .map(|(w, b)| (w.to_string(), b.clone()))
        .chain(everywhere(&app, "script-link").await)
    {
        assert!(
            !body.to_lowercase().contains("javascript"),
            "{what}: {body}"
        );
    }

    // A database written by an older version may hold such a link already.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&site.database_url()).await.unwrap();
    sqlx::query("UPDATE posts SET external_url = $1")
        .bind(" JaVaScRiPt:alert(document.domain)")
        .execute(&pool)
        .await
        .unwrap();
    let stored = everywhere(&app, "script-link").await;
    for (what, body) in &stored {
        assert!(
            !body.to_lowercase().contains("javascript"),
            "{what}: {body}"
        );
    }
    let (_, page) = stored
        .iter()
        .find(|(p, _)| p.starts_with("posts/"))
        .unwrap();
    assert!(page.contains(&format!("href=\"{own_page}\"")), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_comment_with_korean_after_the_xml_declaration_is_read() {
    let blog = FixtureServer::start().await;
    let feed = tistory(None).replacen(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\"?><!-- encoding=éx -->",
        1,
    );
    blog.set(feed, "application/rss+xml");
    let (_smtp, _site, app) = site_following(&blog, "/feed").await;
    let report = tick(&app).await;
    let upstream = report.upstream.unwrap();
    assert_eq!(upstream.status, "200 OK", "{:?}", upstream.error);
    assert_eq!(upstream.entries.unwrap().new.len(), 2);
}

/// A feed of `n` entries whose links all end in `post`.
fn same_last_word(n: usize) -> String {
    let titles: Vec<String> = (0..n).map(|i| format!("글 {i}")).collect();
    let links: Vec<String> = (0..n)
        .map(|i| format!("https://blog.example.com/{i}/post"))
        .collect();
    let items: Vec<Item> = (0..n)
        .map(|i| Item {
            title: &titles[i],
            link: &links[i],
            guid: None,
            date: old() - Duration::hours(i as i64),
            description: "<p>본문</p>",
            content: None,
        })
        .collect();
    rss(&items)
}

#[tokio::test(flavor = "multi_thread")]
async fn storing_entries_that_want_the_same_slug_takes_linear_time() {
    let blog = FixtureServer::start().await;
    const N: usize = 500;
    let mut fastest = Vec::new();
    for n in [N, 2 * N] {
        blog.set(same_last_word(n), "application/rss+xml");
        let mut runs = Vec::new();
        for _ in 0..3 {
            let (_smtp, _site, app) = site_following(&blog, "/feed").await;
            let started = std::time::Instant::now();
            let synced = app.tick().sync_upstream(Utc::now()).await.unwrap();
            runs.push(started.elapsed());
            let new = synced.unwrap().entries.unwrap().new;
            let slugs: std::collections::HashSet<&String> = new.iter().collect();
            assert_eq!((new.len(), slugs.len()), (n, n), "a slug each");
            assert!(slugs.contains(&"post".to_string()));
            assert!(slugs.contains(&format!("post-{n}")));
        }
        fastest.push(runs.into_iter().min().unwrap());
    }
    let ratio = fastest[1].as_secs_f64() / fastest[0].as_secs_f64();
    assert!(
        ratio < 3.0,
        "twice the entries took {ratio:.1} times as long ({fastest:?})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_a_private_address_is_refused_before_anything_is_sent() {
    let blog = FixtureServer::start().await;
    // Where the refused redirects point: a working feed, which must see no request.
    let inside = FixtureServer::start().await;
    inside.set(tistory(None), "application/rss+xml");
    let port = inside.port();
    let (_smtp, site, app) = site_following(&blog, "/moved").await;
    let configured = format!("{}/moved", blog.base);
    for (target, kind) in [
        // Loopback first: without the check these would be fetched, and the
        // test stops before any address outside this machine is tried.
        (format!("http://127.0.0.1:{port}/feed"), "loopback"),
        (format!("http://127.1.2.3:{port}/feed"), "loopback"),
        (format!("http://localhost:{port}/feed"), "loopback"),
        (format!("http://[::1]:{port}/feed"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/feed"), "loopback"),
        (format!("http://0.0.0.0:{port}/feed"), "unspecified"),
        ("http://10.1.2.3/feed".into(), "private"),
        ("http://172.16.0.1/feed".into(), "private"),
        ("http://192.168.1.1/feed".into(), "private"),
        ("http://[fd12:3456::1]/feed".into(), "private"),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            "link-local",
        ),
        ("http://[fe80::1]/feed".into(), "link-local"),
        ("http://100.64.0.1/feed".into(), "shared"),
    ] {
        blog.redirect_to(&target);
        let report = tick(&app).await;
        let upstream = report.upstream.unwrap();
        assert_eq!(upstream.status, "error", "{target}");
        let error = upstream.error.unwrap();
        assert!(
            error.contains("refused a redirect") && error.contains(kind),
            "{target}: {error}"
        );
        assert_eq!(
            inside.blog.requests.load(Ordering::SeqCst),
            0,
            "{target}: nothing was sent there"
        );
        let source = app.ledger().sources().await.unwrap()[0].clone();
        assert_eq!(
            (
                source.entries,
                source.etag,
                source.fetch_url,
                source.last_error
            ),
            (0, None, configured.clone(), Some(error)),
            "{target}"
        );
    }
    assert!(app
        .site()
        .snapshot(Utc::now())
        .await
        .unwrap()
        .posts
        .is_empty());
    let sources = site.cli(&["sources"]).await;
    assert!(
        sources.stdout.contains("refused a redirect"),
        "{}",
        sources.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_cannot_write_a_readers_address_into_their_email() {
    let blog = FixtureServer::start().await;
    blog.set(tistory(None), "application/rss+xml");
    let (smtp, _site, app) = site_following(&blog, "/feed").await;
    tick(&app).await;
    blog.set(
        tistory(Some(Item {
            title: "제목\u{E000}name\u{E001}끝",
            link: "https://blog.example.com/fields",
            guid: None,
            date: Utc::now() - Duration::minutes(5),
            description: "<p>앞\u{E000}email\u{E001}뒤 왼\u{E000}unsubscribe\u{E001}오</p>",
            content: None,
        })),
        "application/rss+xml",
    );
    assert_eq!(tick(&app).await.issues.len(), 1);
    assert_eq!(smtp.len(), 2);
    for message in smtp.messages() {
        assert_fields_not_from_content(&message);
    }
}

/// The reader's fields appear where the template puts them, never where the
/// content had a placeholder's characters (`앞…뒤`, `왼…오`, `제목…끝`).
pub fn assert_fields_not_from_content(message: &crate::support::Received) {
    let address = &message.rcpt_to[0];
    let parsed = message.parsed();
    for body in [
        parsed.body_html(0).unwrap().to_string(),
        parsed.body_text(0).unwrap().to_string(),
    ] {
        assert!(body.contains("앞") && body.contains("뒤"), "{body}");
        assert!(!body.contains(&format!("앞{address}뒤")), "{body}");
        assert!(!body.contains("왼http"), "{body}");
        assert!(!body.contains("제목끝"), "{body}");
        assert!(
            body.contains(address.as_str()),
            "the footer names the reader"
        );
    }
}

/// Someone else's clock cannot take the site down: an entry dated in year 9999
/// (or before 1970) is stored with a date posthorn can write in every feed, and
/// the feeds, the archive and `build` go on.
#[tokio::test(flavor = "multi_thread")]
async fn an_entry_from_year_9999_takes_nothing_down() {
    let blog = FixtureServer::start().await;
    let feed = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>먼 미래</title><id>urn:far</id><updated>9999-12-31T23:59:59Z</updated>
<entry><title>끝없는 글</title><id>urn:far:1</id><link rel="alternate" href="https://blog.example.com/far"/>
<published>2020-01-01T00:00:00Z</published><updated>9999-12-31T23:59:59Z</updated><content type="html">&lt;p&gt;본문&lt;/p&gt;</content></entry>
<entry><title>아주 옛 글</title><id>urn:far:2</id><link rel="alternate" href="https://blog.example.com/old"/>
<published>0001-01-01T00:00:00Z</published><content type="html">&lt;p&gt;옛 본문&lt;/p&gt;</content></entry>
</feed>"#;
    blog.set(feed.to_string(), "application/atom+xml");
    let (_smtp, site, app) = site_following(&blog, "/feed").await;
    let report = tick(&app).await;
    let upstream = report.upstream.unwrap();
    assert_eq!(upstream.status, "200 OK", "{:?}", upstream.error);
    assert_eq!(upstream.entries.unwrap().new.len(), 2);
    app.close().await;
    let out = site.cli(&["build"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    for feed in ["feed.xml", "atom.xml", "feed.json"] {
        let text = std::fs::read_to_string(site.path().join("public").join(feed)).unwrap();
        assert!(text.contains("끝없는 글"), "{feed}");
        assert!(!text.contains("9999"), "{feed}: {text}");
    }
}

/// A permanent move is remembered, and checked again at every fetch as the
/// redirect it was: a feed that moved to a public name cannot later point that
/// name at the author's machine.
#[tokio::test(flavor = "multi_thread")]
async fn a_remembered_move_is_checked_at_every_fetch() {
    let blog = FixtureServer::start().await;
    blog.set(tistory(None), "application/rss+xml");
    let (_smtp, site, app) = site_following(&blog, "/feed").await;
    assert_eq!(tick(&app).await.upstream.unwrap().status, "200 OK");
    let requests = blog.blog.requests.load(Ordering::SeqCst);
    // As if the feed had moved to a name that now resolves to this machine.
    let moved = format!("http://localhost:{}/feed", blog.port());
    let changed = site
        .execute(&format!("UPDATE sources SET fetch_url = '{moved}'"))
        .await;
    assert_eq!(changed, 1);
    let upstream = tick(&app).await.upstream.unwrap();
    let error = upstream.error.unwrap_or_default();
    assert!(error.contains("loopback"), "{error}");
    assert_eq!(
        blog.blog.requests.load(Ordering::SeqCst),
        requests,
        "nothing was sent there"
    );
}
