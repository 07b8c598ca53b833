//! The site over real HTTP: media types, validators, 304s, HEAD, gzip, pages.

use std::io::Read;
use std::time::Duration;

use crate::support::{RunningServer, TestSite};
use chrono::Utc;
use reqwest::header;

async fn start(site: &TestSite) -> RunningServer {
    RunningServer::start(site, false).await
}

fn essay_site() -> TestSite {
    let site = TestSite::new(None);
    site.write_post("slow-reading.md", "+++\ntitle = \"느리게 읽기\"\ndate = \"2026-11-02 21:30\"\ntags = [\"독서\"]\n+++\n\n천천히 읽는다. ![그림](a.png)\n");
    site.write_post(
        "draft.md",
        "+++\ntitle = \"초안\"\ndate = \"2026-11-01\"\ndraft = true\n+++\n비밀\n",
    );
    site
}

#[tokio::test(flavor = "multi_thread")]
async fn feeds_are_served_with_media_types_validators_and_304s() {
    let site = essay_site();
    let s = start(&site).await;
    for (path, media_type) in [
        ("/feed.xml", "application/rss+xml; charset=utf-8"),
        ("/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/feed.json", "application/feed+json; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
    ] {
        let url = format!("{}{path}", s.base);
        let r = s.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()[header::CONTENT_TYPE], media_type);
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_string();
        let modified = r.headers()[header::LAST_MODIFIED]
            .to_str()
            .unwrap()
            .to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert!(httpdate::parse_http_date(&modified).is_ok());
        let body = r.text().await.unwrap();
        assert!(body.contains("느리게 읽기"), "{path}");
        assert!(!body.contains("초안"), "{path}: drafts are not published");

        let r = s
            .client
            .get(&url)
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path} If-None-Match");
        assert_eq!(r.headers()[header::ETAG], etag.as_str());
        assert!(r.bytes().await.unwrap().is_empty());

        let r = s
            .client
            .get(&url)
            .header(header::IF_MODIFIED_SINCE, &modified)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path} If-Modified-Since");

        // If-None-Match wins when both are present.
        let r = s
            .client
            .get(&url)
            .header(header::IF_NONE_MATCH, "\"something-else\"")
            .header(header::IF_MODIFIED_SINCE, &modified)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "{path}: a mismatching ETag beats a matching date"
        );

        let r = s.client.head(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[header::ETAG], etag.as_str());
        assert!(r.bytes().await.unwrap().is_empty(), "HEAD has no body");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_when_asked_and_the_cache_follows_the_posts() {
    let site = essay_site();
    let s = start(&site).await;
    let url = format!("{}/feed.xml", s.base);
    let plain = s
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let r = s
        .client
        .get(&url)
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
    let gz_etag = r.headers()[header::ETAG].to_str().unwrap().to_string();
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&r.bytes().await.unwrap()[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain);
    let r = s
        .client
        .get(&url)
        .header(header::ACCEPT_ENCODING, "gzip")
        .header(header::IF_NONE_MATCH, &gz_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // A new post: after the refresh step, the feed has it and a new ETag.
    let old_etag = s.client.get(&url).send().await.unwrap().headers()[header::ETAG].clone();
    assert!(!s.site.refresh().await.unwrap(), "nothing changed yet");
    site.write_post(
        "new.md",
        "+++\ntitle = \"새 글\"\ndate = \"2026-11-10\"\n+++\n새 글 본문\n",
    );
    s.app.tick().sync_posts(Utc::now()).await.unwrap();
    assert!(s.site.refresh().await.unwrap());
    let r = s
        .client
        .get(&url)
        .header(header::IF_NONE_MATCH, old_etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_ne!(r.headers()[header::ETAG], old_etag);
    assert!(r.text().await.unwrap().contains("새 글"));
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_pages_discover_feeds_and_unknown_pages_are_404() {
    let site = essay_site();
    let s = start(&site).await;
    let index = s.text("/").await;
    assert!(index.contains("<html lang=\"ko\">"));
    for feed in [
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
    ] {
        assert!(
            index.contains(&format!("rel=\"alternate\" type=\"{feed}\"")),
            "{feed}"
        );
    }
    assert!(index.contains("https://essays.example.com/subscribe"));
    assert!(index.contains("https://essays.example.com/posts/slow-reading/"));

    for path in [
        "/posts/slow-reading",
        "/posts/slow-reading/",
        "/posts/slow-reading/index.html",
    ] {
        let r = s
            .client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let page = r.text().await.unwrap();
        assert!(page.contains("<h1>느리게 읽기</h1>"));
        assert!(page.contains("src=\"https://essays.example.com/posts/slow-reading/a.png\""));
        assert!(page.contains("application/atom+xml"));
    }
    let korean = s
        .client
        .get(format!("{}/posts/{}", s.base, "%EC%97%86%EB%8A%94"))
        .send()
        .await
        .unwrap();
    assert_eq!(korean.status(), 404);
    assert_eq!(
        s.client
            .get(format!("{}/posts/draft", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.client
            .get(format!("{}/nothing", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let health = s
        .client
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_posts_own_images_are_served_where_its_links_point() {
    let site = essay_site();
    // A bundle (essay/index.md + images/) and a flat post with a folder beside it.
    site.write_post(
        "bundle/index.md",
        "+++\ntitle = \"묶음\"\ndate = \"2026-11-05\"\n+++\n![그림](images/a.png)\n",
    );
    let png: &[u8] = b"\x89PNG\r\n\x1a\n fake image bytes";
    std::fs::create_dir_all(site.path().join("posts/bundle/images")).unwrap();
    std::fs::write(site.path().join("posts/bundle/images/a.png"), png).unwrap();
    std::fs::write(site.path().join("posts/bundle/.secret"), "no").unwrap();
    std::fs::create_dir_all(site.path().join("posts/slow-reading")).unwrap();
    std::fs::write(site.path().join("posts/slow-reading/b.jpg"), b"jpeg").unwrap();
    std::fs::create_dir_all(site.path().join("posts/draft")).unwrap();
    std::fs::write(site.path().join("posts/draft/c.png"), b"draft").unwrap();
    let s = start(&site).await;

    let page = s.text("/posts/bundle/").await;
    assert!(page.contains("src=\"https://essays.example.com/posts/bundle/images/a.png\""));
    let r = s
        .client
        .get(s.url("/posts/bundle/images/a.png"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "image/png");
    assert!(
        r.headers().get(header::CONTENT_ENCODING).is_none(),
        "images are not gzipped again"
    );
    let etag = r.headers()[header::ETAG].clone();
    assert_eq!(&r.bytes().await.unwrap()[..], png);
    let again = s
        .client
        .get(s.url("/posts/bundle/images/a.png"))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let flat = s
        .client
        .get(s.url("/posts/slow-reading/b.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            flat.status().as_u16(),
            flat.headers()[header::CONTENT_TYPE].to_str().unwrap()
        ),
        (200, "image/jpeg")
    );

    for path in [
        "/posts/bundle/.secret",
        "/posts/bundle/index.md",
        "/posts/bundle/images/missing.png",
        "/posts/bundle/..%2F..%2Fconfig.toml",
        "/posts/bundle/images/..%2F..%2F..%2Fconfig.toml",
        "/posts/draft/c.png",
    ] {
        assert_eq!(
            s.client.get(s.url(path)).send().await.unwrap().status(),
            404,
            "{path}"
        );
    }
}

/// Reads until the server closes the connection (or resets it), for at most
/// `bound`; what it sent before closing.
async fn until_closed(stream: &mut tokio::net::TcpStream, bound: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(bound, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was still open after {bound:?}"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn half_sent_and_silent_requests_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let site = essay_site();
    let s = start(&site).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    // Some seconds of slack over the server's limit, for a loaded machine.
    let bound = posthorn::web::HEADER_READ_TIMEOUT + Duration::from_secs(10);

    // Half a head: the request line and one header, never the blank line.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: essays.example.com\r\n")
        .await
        .unwrap();
    // Connected, and not a byte sent.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    // One whole request, then the connection kept alive and idle.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: essays.example.com\r\n\r\n")
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let (half_answer, silent_answer, idle_answer) = tokio::join!(
        until_closed(&mut half, bound),
        until_closed(&mut silent, bound),
        until_closed(&mut idle, bound),
    );
    assert!(
        started.elapsed() >= posthorn::web::HEADER_READ_TIMEOUT - Duration::from_millis(500),
        "closed before the limit: {:?}",
        started.elapsed()
    );
    for answer in [&half_answer, &silent_answer] {
        assert!(!answer.contains(" 200 "), "{answer}");
    }
    assert!(
        idle_answer.starts_with("HTTP/1.1 200") && idle_answer.contains(r#""status":"ok""#),
        "{idle_answer}"
    );

    // The server still answers everyone else.
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_whose_body_never_comes_gets_408() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let site = essay_site();
    let s = start(&site).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /subscribe HTTP/1.1\r\nHost: essays.example.com\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=slow",
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let answer = until_closed(
        &mut stream,
        posthorn::web::REQUEST_TIMEOUT + Duration::from_secs(15),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= posthorn::web::REQUEST_TIMEOUT - Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_public_answer_carries_the_security_headers() {
    let site = essay_site();
    let s = start(&site).await;
    site.add_subscribers(&s.app, &["reader@example.com"]).await;
    let reader = site.subscriber(&s.app, "reader@example.com").await.unwrap();
    let links = s.app.links();
    let at_home = |url: String| url.replace("https://essays.example.com", &s.base);

    let get = |url: String| {
        let client = s.client.clone();
        async move { client.get(&url).send().await.unwrap() }
    };
    let check = |r: &reqwest::Response, referrer: &str| {
        let h = r.headers();
        let url = r.url().to_string();
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{url}");
        assert_eq!(h[header::REFERRER_POLICY], referrer, "{url}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{url}");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "frame-ancestors 'none'",
            "script-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            // The pages' own <style>, and links and forms to base_url.
            "style-src 'self' https://essays.example.com 'unsafe-inline'",
            "form-action 'self' https://essays.example.com",
        ] {
            assert!(csp.contains(directive), "{url}: {directive} in {csp}");
        }
    };

    // The archive, the form, feeds, a post's image, a page that is not there.
    std::fs::create_dir_all(site.path().join("posts/slow-reading")).unwrap();
    std::fs::write(site.path().join("posts/slow-reading/a.png"), b"png").unwrap();
    for (path, status) in [
        ("/", 200),
        ("/posts/slow-reading/", 200),
        ("/posts/slow-reading/a.png", 200),
        ("/subscribe", 200),
        ("/feed.xml", 200),
        ("/nothing", 404),
    ] {
        let r = get(s.url(path)).await;
        assert_eq!(r.status(), status, "{path}");
        check(&r, "strict-origin-when-cross-origin");
        if path == "/" || path == "/posts/slow-reading/" || path == "/subscribe" {
            assert!(!r.text().await.unwrap().contains("<script"), "{path}");
        }
    }
    let r = s
        .client
        .post(s.url("/subscribe"))
        .form(&[("email", "new@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check(&r, "strict-origin-when-cross-origin");

    // Pages whose address holds a token send no Referer at all, answered or refused.
    let confirm = links.confirm(reader.id, Utc::now() + chrono::Duration::days(1));
    for url in [
        links.unsubscribe(reader.id),
        links.preferences(reader.id),
        confirm,
        s.url("/confirm/forged.token"),
        s.url("/unsubscribe/forged.token"),
    ] {
        let r = get(at_home(url)).await;
        assert!(
            r.status() == 200 || r.status().is_client_error(),
            "{}",
            r.url()
        );
        check(&r, "no-referrer");
    }
    let r = s
        .client
        .post(at_home(links.unsubscribe(reader.id)))
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check(&r, "no-referrer");
}
