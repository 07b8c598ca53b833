//! The posts: the list, a post's preview and test copy, and sending it.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::csrf::CsrfForm;
use super::error::PageError;
use super::session::Session;
use super::view::{path_part, render, views_chart, when, word};
use crate::app::{last_days, PreviewFormat};
use crate::domain::EmailAddress;
use crate::error::Error;
use crate::render::charts;
use crate::web::WebState;

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

#[derive(Serialize)]
struct Posts {
    posts: Vec<PostRow>,
}

#[derive(Serialize)]
struct PostRow {
    slug: String,
    title: String,
    published: String,
    state: String,
    imported: bool,
    issued: Option<String>,
}

pub async fn posts(State(state): State<WebState>, session: Session) -> Result<Response, PageError> {
    let rows = state.app.dashboard().posts().await?;
    let posts = rows
        .iter()
        .map(|p| PostRow {
            slug: p.slug.clone(),
            title: p.title.clone(),
            published: when(&state, p.published_at),
            state: post_state(&state, p.draft, p.email, p.published_at),
            imported: p.imported,
            issued: p.issued_at.map(|t| when(&state, t)),
        })
        .collect();
    render(&state, "admin-posts.html", &session.csrf, Posts { posts })
}

#[derive(Serialize)]
struct PostPage {
    post: PostView,
    sendable: bool,
    text: String,
    notice: Option<String>,
    numbers: Numbers,
}

/// What happened after the send, as the post's page shows it.
#[derive(Serialize)]
struct Numbers {
    delivered: i64,
    clicks: i64,
    unique_clicks: u64,
    opens: Option<crate::app::Opens>,
    views: i64,
    /// SVG: clicks per link, most first.
    links_chart: Option<String>,
    /// SVG: archive views over the last 30 days.
    views_chart: Option<String>,
}

/// Days of views on a post's page.
const VIEW_DAYS: i64 = 30;

fn numbers(state: &WebState, stats: &crate::app::PostStats) -> Numbers {
    let links: Vec<(&str, i64)> = stats
        .links
        .iter()
        .map(|l| (l.url.as_str(), l.clicks))
        .collect();
    let links_chart = (!links.is_empty())
        .then(|| charts::bars(&word(state, "clicks_by_link"), &links, "#0969da"));
    let views_chart = (!stats.views_by_day.is_empty()).then(|| {
        let today = Utc::now()
            .with_timezone(&state.app.config().site.timezone)
            .date_naive();
        views_chart(state, &last_days(&stats.views_by_day, VIEW_DAYS, today))
    });
    Numbers {
        delivered: stats.delivered,
        clicks: stats.clicks,
        unique_clicks: stats.unique_clicks,
        opens: stats.opens.clone(),
        views: stats.views,
        links_chart,
        views_chart,
    }
}

#[derive(Serialize)]
struct PostView {
    slug: String,
    title: String,
    published: String,
    state: String,
    issued: Option<String>,
}

async fn post_page(
    state: &WebState,
    session: &Session,
    slug: &str,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let publishing = state.app.publishing();
    let post = publishing.post(slug).await?;
    let text = publishing.preview(slug, PreviewFormat::Text).await?;
    let issued = publishing
        .issue_of(slug)
        .await
        .ok()
        .map(|i| when(state, i.created_at));
    let stats = state.app.analytics().posts(Some(slug)).await?;
    let numbers = stats
        .first()
        .map(|p| numbers(state, p))
        .ok_or_else(|| Error::PostNotFound(slug.to_string()))?;
    let view = PostPage {
        numbers,
        post: PostView {
            slug: post.slug.as_str().to_string(),
            title: post.title.clone(),
            published: when(state, post.published_at),
            state: post_state(state, post.draft, post.email, post.published_at),
            issued,
        },
        sendable: post.unsendable(Utc::now()).is_none(),
        text,
        notice,
    };
    render(state, "admin-post.html", &session.csrf, view)
}

pub async fn post(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    post_page(&state, &session, &slug, None).await
}

/// The email's HTML, exactly as a subscriber gets it, for the sandboxed frame.
pub async fn email_html(
    State(state): State<WebState>,
    _: Session,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let html = state
        .app
        .publishing()
        .preview(&slug, PreviewFormat::Html)
        .await?;
    let headers = [
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline'; \
             frame-ancestors 'self'",
        ),
        (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    Ok((headers, Html(html)).into_response())
}

#[derive(Deserialize)]
pub struct TestForm {
    #[serde(default)]
    to: String,
}

/// Sends a test copy; how it went shows on the post's page.
pub async fn send_test(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<TestForm>,
) -> Result<Response, PageError> {
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

#[derive(Serialize)]
struct SendConfirm {
    slug: String,
    title: String,
    recipients: i64,
}

pub async fn send_confirm(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let now = Utc::now();
    let publishing = state.app.publishing();
    let post = publishing.find(&slug, now).await?;
    let plan = publishing.plan(&post, now).await?;
    let view = SendConfirm {
        title: post.title.clone(),
        slug,
        recipients: plan.new_recipients,
    };
    render(&state, "admin-send.html", &session.csrf, view)
}

pub async fn send(
    State(state): State<WebState>,
    Path(slug): Path<String>,
    CsrfForm(()): CsrfForm,
) -> Result<Response, PageError> {
    state
        .app
        .publishing()
        .queue(&slug, Utc::now(), &state.worker)
        .await?;
    Ok(Redirect::to(&format!("/admin/issues/{}", path_part(&slug))).into_response())
}
