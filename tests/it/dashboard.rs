//! The dashboard over real HTTP: sign-in, cookie flags, CSRF, sessions that
//! expire, nothing without a session, HTML escaped everywhere, and every page
//! reached by following links from `/admin` answers 200.

use std::collections::{BTreeSet, VecDeque};

use chrono::{Duration, Utc};
use posthorn::delivery::Stop;
use regex::Regex;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};

use crate::support::{Action, RunningServer, SmtpServer, TestSite};

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
    let smtp = SmtpServer::start().await;
    smtp.set_rule(|rcpt| {
        if rcpt.starts_with("gone") {
            Action::RcptReply(550, "5.1.1 no such user".into())
        } else {
            Action::Accept
        }
    });
    let site = TestSite::new(Some(smtp.port));
    site.append_config(&format!("\n[server]\nadmin_token = \"{TOKEN}\"\n"));
    let app = site.app().await;
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
