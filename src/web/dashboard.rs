//! The author's dashboard under `/admin`: server-rendered pages (templates
//! `admin-*.html`), a session cookie started with the admin token, and a CSRF
//! token (plus an Origin check) on every request that changes something.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Multipart, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{error_status, retry_after, WebState};
use crate::app::{IssueCounts, GROWTH_DAYS};
use crate::domain::{constant_time_eq, hex, DeliveryStatus, EmailAddress, SubscriberStatus};
use crate::error::Error;
use crate::render::charts::{self, Series};
use crate::store::LogFilter;

/// The session cookie, and the login form's own CSRF cookie.
const SESSION_COOKIE: &str = "posthorn_admin";
const LOGIN_COOKIE: &str = "posthorn_login";
/// Rows per page of the log and the subscriber list.
const PAGE: i64 = 50;

const OUTCOME_COLORS: [(DeliveryStatus, &str); 8] = [
    (DeliveryStatus::Sent, "#1a7f37"),
    (DeliveryStatus::Bounced, "#bc4c00"),
    (DeliveryStatus::Complained, "#cf222e"),
    (DeliveryStatus::Failed, "#8250df"),
    (DeliveryStatus::Queued, "#8c959f"),
    (DeliveryStatus::Sending, "#8c959f"),
    (DeliveryStatus::Retrying, "#8c959f"),
    (DeliveryStatus::Skipped, "#d4a72c"),
];

/// A signed-in request: its cookie and the session's CSRF token.
pub struct Session {
    cookie: String,
    csrf: String,
}

impl FromRequestParts<WebState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let dashboard = state.app.dashboard();
        if !dashboard.enabled() {
            return Err(login_page(
                state,
                StatusCode::FORBIDDEN,
                json!({ "setup": true }),
                None,
            ));
        }
        let cookie = cookie(&parts.headers, SESSION_COOKIE).unwrap_or_default();
        let csrf = match dashboard.session(&cookie, Utc::now()).await {
            Ok(Some(csrf)) => csrf,
            Ok(None) if parts.method == Method::GET => {
                return Err(Redirect::to("/admin").into_response())
            }
            Ok(None) => return Err(forbidden()),
            Err(e) => return Err(failed(state, e)),
        };
        // Anything that changes state must come from our own pages.
        if parts.method != Method::GET && !same_origin(&parts.headers) {
            return Err(forbidden());
        }
        Ok(Session { cookie, csrf })
    }
}

impl Session {
    /// The form's CSRF token is the session's.
    fn allows(&self, given: &str) -> bool {
        constant_time_eq(given.as_bytes(), self.csrf.as_bytes())
    }
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "forbidden: missing or wrong CSRF token, or no session",
    )
        .into_response()
}

/// A cookie's value from the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `Origin`, when the browser sends it, names this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

fn set_cookie(state: &WebState, name: &str, value: &str, clear: bool) -> HeaderValue {
    let secure = if state.app.links().home().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let age = if clear { "; Max-Age=0" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/admin; HttpOnly; SameSite=Strict{secure}{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Renders a dashboard page.
fn render(state: &WebState, template: &str, status: StatusCode, data: Value) -> Response {
    match state.app.templates().admin_page(template, data) {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => failed(state, e),
    }
}

fn failed(state: &WebState, e: Error) -> Response {
    let status = error_status(&e);
    let t = |k: &str| state.app.templates().admin_word(k);
    let body = format!(
        "<!DOCTYPE html><meta charset=utf-8><title>{0}</title><p>{0}: {1}</p><p><a href=\"/admin\">{2}</a></p>",
        handlebars::html_escape(&t("error")),
        handlebars::html_escape(&e.to_string()),
        handlebars::html_escape(&t("back")),
    );
    (status, Html(body)).into_response()
}

fn login_page(
    state: &WebState,
    status: StatusCode,
    mut data: Value,
    csrf: Option<&str>,
) -> Response {
    let token = csrf
        .map(str::to_string)
        .unwrap_or_else(|| hex(&rand::random::<[u8; 16]>()));
    data["csrf"] = json!(token);
    let mut response = render(state, "admin-login.html", status, data);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &token, false),
    );
    response
}

fn when(state: &WebState, t: DateTime<Utc>) -> String {
    t.with_timezone(&state.app.config().site.timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn word(state: &WebState, key: &str) -> String {
    state.app.templates().admin_word(key)
}

/// `/admin`: the overview, the login form, or how to turn the dashboard on.
pub async fn home(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let dashboard = state.app.dashboard();
    if !dashboard.enabled() {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            json!({ "setup": true }),
            None,
        );
    }
    let cookie = cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    match dashboard.session(&cookie, Utc::now()).await {
        Ok(Some(csrf)) => overview(&state, &csrf).await,
        Ok(None) => login_page(&state, StatusCode::OK, json!({}), None),
        Err(e) => failed(&state, e),
    }
}

async fn overview(state: &WebState, csrf: &str) -> Response {
    let now = Utc::now();
    let o = match state.app.dashboard().overview(now).await {
        Ok(o) => o,
        Err(e) => return failed(state, e),
    };
    let subscribers: Vec<Value> = SubscriberStatus::ALL
        .iter()
        .map(|s| {
            json!({ "status": s.as_str(), "label": word(state, s.as_str()),
                    "count": o.subscribers.get(s).copied().unwrap_or(0) })
        })
        .collect();
    let series = [
        (
            "new",
            "#0a58ca",
            o.growth.iter().map(|d| d.new).collect::<Vec<_>>(),
        ),
        (
            "confirmed",
            "#1a7f37",
            o.growth.iter().map(|d| d.confirmed).collect(),
        ),
        (
            "unsubscribed",
            "#8c959f",
            o.growth.iter().map(|d| d.unsubscribed).collect(),
        ),
        (
            "bounced",
            "#bc4c00",
            o.growth.iter().map(|d| d.bounced).collect(),
        ),
    ];
    let labels: Vec<String> = series.iter().map(|(k, _, _)| word(state, k)).collect();
    let lines: Vec<Series> = series
        .iter()
        .zip(&labels)
        .map(|((_, color, values), label)| Series {
            label,
            color,
            values: values.clone(),
        })
        .collect();
    let day = |i: i64| {
        (o.growth_from + chrono::Duration::days(i))
            .with_timezone(&state.app.config().site.timezone)
            .format("%m-%d")
            .to_string()
    };
    let last = GROWTH_DAYS as i64 - 1;
    let growth_chart = charts::lines(
        &word(state, "growth"),
        &lines,
        [&day(0), &day(last / 2), &day(last)],
    );
    let growth_legend: Vec<Value> = series
        .iter()
        .zip(&labels)
        .map(|((_, color, values), label)| {
            json!({ "label": label, "color": color, "total": values.iter().sum::<i64>() })
        })
        .collect();
    let issues: Vec<Value> = o
        .issues
        .iter()
        .map(|i| {
            json!({ "slug": i.slug, "title": i.title, "created": when(state, i.created_at),
                    "total": i.total, "bar": outcome_bar(state, i) })
        })
        .collect();
    let outcome_legend: Vec<Value> = OUTCOME_COLORS
        .iter()
        .filter(|(s, _)| !matches!(s, DeliveryStatus::Sending | DeliveryStatus::Retrying))
        .map(|(s, color)| {
            let key = if *s == DeliveryStatus::Queued {
                "waiting"
            } else {
                s.as_str()
            };
            json!({ "label": word(state, key), "color": color })
        })
        .collect();
    let sources: Vec<Value> = o
        .sources
        .iter()
        .map(|s| {
            json!({ "url": s.url, "last_fetch": s.last_fetch_at.map(|t| when(state, t)),
                    "last_status": s.last_status.map(|x| x.to_string()),
                    "last_error": s.last_error, "entries": s.entries })
        })
        .collect();
    let config = state.app.config();
    let next = crate::config::next_time(&config.schedule.check, config.site.timezone, now)
        .map(|t| when(state, t))
        .unwrap_or_default();
    render(
        state,
        "admin-overview.html",
        StatusCode::OK,
        json!({
            "csrf": csrf,
            "subscribers": subscribers,
            "growth_chart": growth_chart,
            "growth_legend": growth_legend,
            "issues": issues,
            "outcome_legend": outcome_legend,
            "bounce_rate": format!("{:.2}", o.bounce_rate),
            "complaint_rate": format!("{:.2}", o.complaint_rate),
            "complaint_limit": o.complaint_limit,
            "over_limit": o.complaint_rate > o.complaint_limit,
            "sources": sources,
            "next_tick": next,
            "cron": config.schedule.check,
        }),
    )
}

fn outcome_bar(state: &WebState, issue: &IssueCounts) -> String {
    let labels: Vec<String> = OUTCOME_COLORS
        .iter()
        .map(|(s, _)| word(state, s.as_str()))
        .collect();
    let segments: Vec<Series> = OUTCOME_COLORS
        .iter()
        .zip(&labels)
        .map(|((s, color), label)| Series {
            label,
            color,
            values: vec![issue.count(*s)],
        })
        .collect();
    charts::bar(&issue.title, &segments)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

pub async fn login(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let dashboard = state.app.dashboard();
    if !dashboard.enabled() {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            json!({ "setup": true }),
            None,
        );
    }
    // The login form's token must match its cookie (double submit), from our own page.
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty()
        || !constant_time_eq(form.csrf.as_bytes(), expected.as_bytes())
        || !same_origin(&headers)
    {
        return forbidden();
    }
    // Shared with the admin API; a right token gives its try back.
    if let Err(wait) = state.sign_in_limiter.take(peer.ip()) {
        let mut response = login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "limited": true }),
            Some(&expected),
        );
        let (name, value) = retry_after(wait);
        response.headers_mut().insert(name, value);
        return response;
    }
    match dashboard.login(&form.token, Utc::now()).await {
        Ok(Some(session)) => {
            state.sign_in_limiter.give_back(peer.ip());
            let mut response = Redirect::to("/admin").into_response();
            let h = response.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &session.cookie, false),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, LOGIN_COOKIE, "", true),
            );
            response
        }
        Ok(None) => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            json!({ "wrong": true }),
            Some(&expected),
        ),
        Err(e) => failed(&state, e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<WebState>,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return forbidden();
    }
    if let Err(e) = state.app.dashboard().logout(&session.cookie).await {
        return failed(&state, e);
    }
    let mut response = Redirect::to("/admin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", true),
    );
    response
}

/// The state a post is in, as a word.
fn post_state(state: &WebState, draft: bool, email: bool, published_at: DateTime<Utc>) -> String {
    let key = if draft {
        "draft"
    } else if published_at > Utc::now() {
        "scheduled"
    } else if !email {
        "feed_only"
    } else {
        "live"
    };
    word(state, key)
}

pub async fn posts(State(state): State<WebState>, session: Session) -> Response {
    let rows = match state.app.dashboard().posts().await {
        Ok(r) => r,
        Err(e) => return failed(&state, e),
    };
    let posts: Vec<Value> = rows
        .iter()
        .map(|p| {
            json!({ "slug": p.slug, "title": p.title, "published": when(&state, p.published_at),
                    "state": post_state(&state, p.draft, p.email, p.published_at),
                    "imported": p.imported, "issued": p.issued_at.map(|t| when(&state, t)) })
        })
        .collect();
    render(
        &state,
        "admin-posts.html",
        StatusCode::OK,
        json!({ "csrf": session.csrf, "posts": posts }),
    )
}

async fn post_page(
    state: &WebState,
    session: &Session,
    slug: &str,
    notice: Option<String>,
) -> Response {
    let publishing = state.app.publishing();
    let post = match publishing.post(slug).await {
        Ok(p) => p,
        Err(e) => return failed(state, e),
    };
    let text = match publishing
        .preview(slug, crate::app::PreviewFormat::Text)
        .await
    {
        Ok(t) => t,
        Err(e) => return failed(state, e),
    };
    let issued = publishing
        .issue_of(slug)
        .await
        .ok()
        .map(|i| when(state, i.created_at));
    render(
        state,
        "admin-post.html",
        StatusCode::OK,
        json!({
            "csrf": session.csrf,
            "post": { "slug": post.slug.as_str(), "title": post.title,
                      "published": when(state, post.published_at),
                      "state": post_state(state, post.draft, post.email, post.published_at),
                      "issued": issued },
            "sendable": post.unsendable(Utc::now()).is_none(),
            "text": text,
            "notice": notice,
        }),
    )
}

pub async fn post(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
) -> Response {
    post_page(&state, &session, &slug, None).await
}

/// The email's HTML, exactly as a subscriber gets it, for the sandboxed frame.
pub async fn email_html(
    State(state): State<WebState>,
    _: Session,
    Path(slug): Path<String>,
) -> Response {
    match state
        .app
        .publishing()
        .preview(&slug, crate::app::PreviewFormat::Html)
        .await
    {
        Ok(html) => (
            [
                (
                    header::CONTENT_SECURITY_POLICY,
                    "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline'; \
                     frame-ancestors 'self'",
                ),
                (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            Html(html),
        )
            .into_response(),
        Err(e) => failed(&state, e),
    }
}

#[derive(Deserialize)]
pub struct TestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
}

pub async fn send_test(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
    Form(form): Form<TestForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return forbidden();
    }
    let result = async {
        let to = EmailAddress::parse(&form.to).map_err(Error::Invalid)?;
        let post = state.app.publishing().post(&slug).await?;
        state.app.publishing().send_test_copy(&post, &to).await
    }
    .await;
    let notice = match result {
        Ok(_) => word(&state, "test_sent"),
        Err(e) => format!("{}: {e}", word(&state, "error")),
    };
    post_page(&state, &session, &slug, Some(notice)).await
}

pub async fn send_confirm(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
) -> Response {
    let now = Utc::now();
    let publishing = state.app.publishing();
    let plan = async {
        let post = publishing.find(&slug, now).await?;
        let plan = publishing.plan(&post, now).await?;
        Ok::<_, Error>((post, plan))
    }
    .await;
    match plan {
        Ok((post, plan)) => render(
            &state,
            "admin-send.html",
            StatusCode::OK,
            json!({ "csrf": session.csrf, "slug": slug, "title": post.title,
                    "recipients": plan.new_recipients }),
        ),
        Err(e) => failed(&state, e),
    }
}

pub async fn send(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return forbidden();
    }
    let now = Utc::now();
    let publishing = state.app.publishing();
    let queued = async {
        let post = publishing.find(&slug, now).await?;
        publishing.enqueue(&post, now).await
    }
    .await;
    match queued {
        Ok(_) => {
            if let Some(worker) = &state.worker {
                worker.wake();
            }
            Redirect::to(&format!("/admin/issues/{}", path_part(&slug))).into_response()
        }
        Err(e) => failed(&state, e),
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    #[serde(default)]
    after: i64,
    done: Option<String>,
}

impl ListQuery {
    fn q(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    /// The same list from `after`.
    fn link(&self, base: &str, after: i64) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = self.status.as_deref().filter(|s| !s.is_empty()) {
            url.append_pair("status", s);
        }
        if let Some(q) = self.q() {
            url.append_pair("q", q);
        }
        if after > 0 {
            url.append_pair("after", &after.to_string());
        }
        let query = url.finish();
        if query.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{query}")
        }
    }
}

fn path_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The words for a status, and whether it is the one chosen.
fn status_options(
    state: &WebState,
    all: impl Iterator<Item = &'static str>,
    chosen: Option<&str>,
) -> Vec<Value> {
    all.map(|v| json!({ "value": v, "label": word(state, v), "selected": chosen == Some(v) }))
        .collect()
}

/// Progress of an issue: what the relay took, the rate, and the time left.
fn progress(state: &WebState, issue: &IssueCounts, rate_per_minute: Option<f64>) -> Value {
    let waiting = issue.waiting();
    let left = if waiting == 0 {
        word(state, "done")
    } else {
        match rate_per_minute.filter(|r| *r > 0.0) {
            Some(rate) => {
                let seconds = (waiting as f64 / rate * 60.0).ceil() as i64;
                format!(
                    "{}m {}s {}",
                    seconds / 60,
                    seconds % 60,
                    word(state, "time_left")
                )
            }
            None => format!("{waiting} {}", word(state, "waiting")),
        }
    };
    let counts: serde_json::Map<String, Value> = DeliveryStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), json!(issue.count(*s))))
        .collect();
    json!({
        "accepted": issue.accepted(),
        "rate": rate_per_minute.map(|r| format!("{r:.0}")).unwrap_or_else(|| "—".into()),
        "left": left,
        "done": waiting == 0,
        "counts": counts,
    })
}

pub async fn issue(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let dashboard = state.app.dashboard();
    let status = match query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<DeliveryStatus>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return failed(&state, Error::Invalid(e)),
    };
    let filter = LogFilter {
        status,
        email_prefix: query.q().map(str::to_string),
    };
    let counted = async {
        let issue = dashboard.issue(&slug).await?;
        let rows = dashboard.log(&slug, &filter, query.after, PAGE).await?;
        Ok::<_, Error>((issue, rows))
    }
    .await;
    let (issue, rows) = match counted {
        Ok(x) => x,
        Err(e) => return failed(&state, e),
    };
    let counts: Vec<Value> = DeliveryStatus::ALL
        .iter()
        .map(|s| json!({ "status": s.as_str(), "label": word(&state, s.as_str()), "count": issue.count(*s) }))
        .collect();
    let base = format!("/admin/issues/{}", path_part(&slug));
    let next_page = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| query.link(&base, r.id)))
        .flatten();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({ "id": r.id, "email": r.email, "status": r.status.as_str(),
                    "status_label": word(&state, r.status.as_str()), "attempts": r.attempts,
                    "reply": r.last_error.as_deref().or(r.smtp_reply.as_deref()),
                    "updated": when(&state, r.updated_at) })
        })
        .collect();
    let notice = query.done.as_deref().map(|n| {
        n.strip_prefix("retried:")
            .map(|k| format!("{k} {}", word(&state, "retried")))
            .unwrap_or_default()
    });
    render(
        &state,
        "admin-issue.html",
        StatusCode::OK,
        json!({
            "csrf": session.csrf,
            "issue": { "slug": issue.slug, "title": issue.title, "created": when(&state, issue.created_at), "total": issue.total },
            "counts": counts,
            "progress": progress(&state, &issue, None),
            "failed": issue.count(DeliveryStatus::Failed) > 0,
            "statuses": status_options(&state, DeliveryStatus::ALL.iter().map(|s| s.as_str()), status.map(|s| s.as_str())),
            "q": query.q(),
            "rows": rows,
            "after": query.after > 0,
            "first_page": query.link(&base, 0),
            "next_page": next_page,
            "notice": notice,
        }),
    )
}

/// Live progress of an issue, as Server-Sent Events: one `progress` event a
/// second until nothing is left to send.
pub async fn issue_progress(
    State(state): State<WebState>,
    _: Session,
    Path(slug): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Step {
        state: WebState,
        slug: String,
        last: Option<(Instant, i64)>,
        finished: bool,
    }
    let start = Step {
        state,
        slug,
        last: None,
        finished: false,
    };
    let stream = futures_util::stream::unfold(start, |mut step| async move {
        if step.finished {
            return None;
        }
        if step.last.is_some() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let issue = match step.state.app.dashboard().issue(&step.slug).await {
            Ok(i) => i,
            Err(e) => {
                step.finished = true;
                return Some((
                    Ok(Event::default().event("error").data(e.to_string())),
                    step,
                ));
            }
        };
        let now = Instant::now();
        let accepted = issue.accepted();
        let rate = step.last.map(|(at, before)| {
            let minutes = now.duration_since(at).as_secs_f64() / 60.0;
            ((accepted - before).max(0) as f64 / minutes.max(1e-6)).round()
        });
        step.last = Some((now, accepted));
        let data = progress(&step.state, &issue, rate);
        step.finished = data["done"].as_bool().unwrap_or(false);
        Some((
            Ok(Event::default().event("progress").data(data.to_string())),
            step,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The issue page's script (live progress), a file of its own so that the
/// dashboard's policy allows no inline script.
pub async fn issue_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("issue.js"),
    )
        .into_response()
}

pub async fn retry(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return forbidden();
    }
    match state.app.publishing().retry_failed(&slug, Utc::now()).await {
        Ok(n) => {
            if let Some(worker) = &state.worker {
                worker.wake();
            }
            Redirect::to(&format!(
                "/admin/issues/{}?done=retried:{n}",
                path_part(&slug)
            ))
            .into_response()
        }
        Err(e) => failed(&state, e),
    }
}

pub async fn delivery(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<i64>,
) -> Response {
    let (row, history) = match state.app.dashboard().delivery(id).await {
        Ok(x) => x,
        Err(e) => return failed(&state, e),
    };
    let history: Vec<Value> = history
        .iter()
        .map(|e| json!({ "at": when(&state, e.at), "kind": e.kind, "outcome": e.outcome, "detail": e.detail }))
        .collect();
    render(
        &state,
        "admin-delivery.html",
        StatusCode::OK,
        json!({
            "csrf": session.csrf,
            "row": { "email": row.email, "status": row.status.as_str(), "status_label": word(&state, row.status.as_str()),
                     "attempts": row.attempts, "subscriber_id": row.subscriber_id },
            "history": history,
        }),
    )
}

async fn subscribers_page(
    state: &WebState,
    session: &Session,
    query: &ListQuery,
    import: Option<Value>,
) -> Response {
    let status = match query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<SubscriberStatus>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return failed(state, Error::Invalid(e)),
    };
    let rows = match state
        .app
        .dashboard()
        .subscribers(query.q(), status, query.after, PAGE)
        .await
    {
        Ok(r) => r,
        Err(e) => return failed(state, e),
    };
    let base = "/admin/subscribers";
    let next_page = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| query.link(base, r.id)))
        .flatten();
    let rows: Vec<Value> = rows
        .iter()
        .map(|s| {
            json!({ "id": s.id, "email": s.email.as_str(), "name": s.name, "status": s.status.as_str(),
                    "status_label": word(state, s.status.as_str()), "since": when(state, s.created_at) })
        })
        .collect();
    let notice = query
        .done
        .as_deref()
        .filter(|d| matches!(*d, "added"))
        .map(|d| word(state, d));
    render(
        state,
        "admin-subscribers.html",
        StatusCode::OK,
        json!({
            "csrf": session.csrf,
            "statuses": status_options(state, SubscriberStatus::ALL.iter().map(|s| s.as_str()), status.map(|s| s.as_str())),
            "q": query.q(),
            "rows": rows,
            "after": query.after > 0,
            "first_page": query.link(base, 0),
            "next_page": next_page,
            "notice": notice,
            "import": import,
        }),
    )
}

pub async fn subscribers(
    State(state): State<WebState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Response {
    subscribers_page(&state, &session, &query, None).await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
}

pub async fn add_subscriber(
    State(state): State<WebState>,
    session: Session,
    Form(form): Form<AddForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return forbidden();
    }
    let added = async {
        let email = EmailAddress::parse(&form.email).map_err(Error::Invalid)?;
        let name = crate::domain::one_line(&form.name);
        state
            .app
            .subscriptions()
            .add(&email, &name, Utc::now())
            .await
    }
    .await;
    match added {
        Ok(_) => Redirect::to("/admin/subscribers?done=added").into_response(),
        Err(e) => failed(&state, e),
    }
}

#[derive(Deserialize)]
pub struct CsrfQuery {
    #[serde(default)]
    csrf: String,
}

/// A CSV upload (multipart); the CSRF token rides in the query string.
pub async fn import(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<CsrfQuery>,
    mut multipart: Multipart,
) -> Response {
    if !session.allows(&q.csrf) {
        return forbidden();
    }
    let mut data = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => match field.bytes().await {
                Ok(b) => data = b.to_vec(),
                Err(e) => return failed(&state, Error::Invalid(format!("the upload: {e}"))),
            },
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) => return failed(&state, Error::Invalid(format!("the upload: {e}"))),
        }
    }
    match state
        .app
        .subscriptions()
        .import_csv(data.as_slice(), Utc::now())
        .await
    {
        Ok(report) => {
            let import = serde_json::to_value(&report).unwrap_or(Value::Null);
            subscribers_page(&state, &session, &ListQuery::default(), Some(import)).await
        }
        Err(e) => failed(&state, e),
    }
}

pub async fn export(State(state): State<WebState>, _: Session) -> Response {
    let mut csv = Vec::new();
    match state.app.subscriptions().export_csv(&mut csv).await {
        Ok(()) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"subscribers.csv\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            csv,
        )
            .into_response(),
        Err(e) => failed(&state, e),
    }
}

pub async fn subscriber(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<i64>,
) -> Response {
    let (s, deliveries) = match state.app.dashboard().subscriber(id).await {
        Ok(Some(x)) => x,
        Ok(None) => return failed(&state, Error::Invalid(format!("no subscriber {id}"))),
        Err(e) => return failed(&state, e),
    };
    let deliveries: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            json!({ "slug": d.slug, "title": d.title, "status": d.status.as_str(),
                    "status_label": word(&state, d.status.as_str()), "attempts": d.attempts,
                    "last_error": d.last_error, "updated": when(&state, d.updated_at) })
        })
        .collect();
    render(
        &state,
        "admin-subscriber.html",
        StatusCode::OK,
        json!({
            "csrf": session.csrf,
            "subscriber": { "id": s.id, "email": s.email.as_str(), "name": s.name, "status": s.status.as_str(),
                            "status_label": word(&state, s.status.as_str()), "since": when(&state, s.created_at),
                            "can_unsubscribe": matches!(s.status, SubscriberStatus::Active | SubscriberStatus::Pending),
                            "frequency": word(&state, s.preferences.frequency_or(state.app.config().schedule.mode).as_str()),
                            "topics": s.preferences.topics.as_ref().map(|t| t.join(", ")) },
            "deliveries": deliveries,
        }),
    )
}

pub async fn unsubscribe(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return forbidden();
    }
    match state
        .app
        .subscriptions()
        .unsubscribe_id(id, Utc::now())
        .await
    {
        Ok(()) => Redirect::to(&format!("/admin/subscribers/{id}")).into_response(),
        Err(e) => failed(&state, e),
    }
}

pub async fn forget(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return forbidden();
    }
    match state.app.subscriptions().forget_id(id, Utc::now()).await {
        Ok(_) => Redirect::to("/admin/subscribers").into_response(),
        Err(e) => failed(&state, e),
    }
}

pub async fn bounces(State(state): State<WebState>, session: Session) -> Response {
    let rows = match state.app.bounces().list(200).await {
        Ok(r) => r,
        Err(e) => return failed(&state, e),
    };
    let view = |r: &crate::store::ReportRow| {
        json!({ "received": when(&state, r.received_at), "kind": r.kind, "recipient": r.recipient,
                "status": r.status, "effect": r.effect, "issue": r.issue, "source": r.source,
                "matched_by": r.matched_by, "diagnostic": r.diagnostic })
    };
    let unmatched: Vec<Value> = rows
        .iter()
        .filter(|r| r.effect == "unmatched")
        .map(view)
        .collect();
    let reports: Vec<Value> = rows.iter().map(view).collect();
    render(
        &state,
        "admin-bounces.html",
        StatusCode::OK,
        json!({ "csrf": session.csrf, "reports": reports, "unmatched": unmatched }),
    )
}
