//! Subscriber-facing pages: subscribe, confirm, unsubscribe. Their words are in
//! the templates (Korean or English, after `site.language`).

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{error_status, retry_after, WebState};
use crate::domain::{one_line, EmailAddress, Preferences};
use crate::error::Error;
use crate::tokens::TokenError;

/// Renders a page template with `site` added to `data`.
fn page(state: &WebState, template: &str, status: StatusCode, data: serde_json::Value) -> Response {
    match state.app.templates().page(template, data) {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %crate::error::chain(&e), "rendering {template}");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn message(state: &WebState, status: StatusCode, kind: &str) -> Response {
    page(state, "message.html", status, json!({ "kind": kind }))
}

fn token_error(state: &WebState, e: TokenError) -> Response {
    match e {
        TokenError::Expired => message(state, StatusCode::GONE, "expired_link"),
        TokenError::Invalid | TokenError::WrongPurpose => {
            message(state, StatusCode::BAD_REQUEST, "invalid_link")
        }
    }
}

fn failed(state: &WebState, e: Error) -> Response {
    let status = error_status(&e);
    let kind = if status == StatusCode::SERVICE_UNAVAILABLE {
        "send_failed"
    } else {
        "bad_request"
    };
    message(state, status, kind)
}

pub async fn subscribe_form(State(state): State<WebState>) -> Response {
    page(&state, "subscribe.html", StatusCode::OK, json!({}))
}

#[derive(Deserialize)]
pub struct SubscribeForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    /// Hidden from people; bots fill it in.
    #[serde(default)]
    website: String,
}

pub async fn subscribe(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<SubscribeForm>, FormRejection>,
) -> Response {
    if let Err(wait) = state.limiter.take(peer.ip()) {
        let mut r = message(&state, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let (name, value) = retry_after(wait);
        r.headers_mut().insert(name, value);
        return r;
    }
    let form = match form {
        Ok(Form(form)) => form,
        // 413 for an oversized body, 400 for one that is not a form, and so on.
        Err(rejection) => return message(&state, rejection.status(), "bad_request"),
    };
    if !form.website.is_empty() {
        // A bot: the same answer as everyone gets, and nothing happens.
        return message(&state, StatusCode::OK, "check_email");
    }
    let email = match EmailAddress::parse(&form.email) {
        Ok(e) if form.name.chars().count() <= 100 => e,
        _ => {
            let shown: String = form.email.chars().take(254).collect();
            let name: String = form.name.chars().take(100).collect();
            return page(
                &state,
                "subscribe.html",
                StatusCode::BAD_REQUEST,
                json!({ "error": true, "email": shown, "name": name }),
            );
        }
    };
    // Handed off: the answer comes as fast, and reads the same, whatever the
    // address's state or the mail server's.
    state
        .app
        .subscriptions()
        .subscribe(email, one_line(&form.name), Utc::now());
    message(&state, StatusCode::OK, "check_email")
}

pub async fn confirm(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    match state.app.subscriptions().confirm(&token, Utc::now()).await {
        Ok(()) => {
            // The welcome is queued: this process's worker sends it now.
            if let Some(worker) = &state.worker {
                worker.wake();
            }
            message(&state, StatusCode::OK, "confirmed")
        }
        Err(Error::Token(e)) => token_error(&state, e),
        Err(e) => failed(&state, e),
    }
}

/// Shows one button. Fetching this page (as link scanners do) changes nothing.
pub async fn unsubscribe_page(
    State(state): State<WebState>,
    Path(token): Path<String>,
) -> Response {
    match state
        .app
        .subscriptions()
        .unsubscribe_action(&token, Utc::now())
    {
        Ok(action) => page(
            &state,
            "unsubscribe.html",
            StatusCode::OK,
            json!({ "action": action }),
        ),
        Err(e) => token_error(&state, e),
    }
}

/// The RFC 8058 one-click target: any body (urlencoded or multipart
/// `List-Unsubscribe=One-Click`), no cookies, 200 without a redirect, idempotent.
pub async fn unsubscribe(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    match state
        .app
        .subscriptions()
        .unsubscribe_by_token(&token, Utc::now())
        .await
    {
        Ok(()) => message(&state, StatusCode::OK, "unsubscribed"),
        Err(Error::Token(e)) => token_error(&state, e),
        Err(e) => failed(&state, e),
    }
}

/// A reader's own page: how often, which topics, and leaving.
pub async fn preferences_page(
    State(state): State<WebState>,
    Path(token): Path<String>,
) -> Response {
    match state
        .app
        .subscriptions()
        .preferences(&token, Utc::now())
        .await
    {
        Ok(view) => preferences_view(&state, &view, None),
        Err(Error::Token(e)) => token_error(&state, e),
        Err(e) => failed(&state, e),
    }
}

/// Saves the page's form: `frequency` (`each` | `digest`), `topics` (`all` |
/// `chosen`) and any number of `topic` fields.
pub async fn save_preferences(
    State(state): State<WebState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let prefs = match read_preferences(&body) {
        Some(p) => p,
        None => return message(&state, StatusCode::BAD_REQUEST, "bad_request"),
    };
    match state
        .app
        .subscriptions()
        .save_preferences(&token, prefs, Utc::now())
        .await
    {
        Ok(saved) => {
            // Posts that waited for the digest go now: this process's worker sends them.
            if saved.caught_up > 0 {
                if let Some(worker) = &state.worker {
                    worker.wake();
                }
            }
            preferences_view(&state, &saved.page, Some(&saved))
        }
        Err(Error::Token(e)) => token_error(&state, e),
        Err(e) => failed(&state, e),
    }
}

fn preferences_view(
    state: &WebState,
    view: &crate::app::PreferencesPage,
    saved: Option<&crate::app::SavedChoices>,
) -> Response {
    let mut data = serde_json::to_value(view).unwrap_or_default();
    data["saved"] = saved.is_some().into();
    data["skipped"] = saved.map_or(0, |s| s.skipped).into();
    data["caught_up"] = saved.map_or(0, |s| s.caught_up).into();
    page(state, "preferences.html", StatusCode::OK, data)
}

/// The form's fields; `None` when a value is not one the page offers.
fn read_preferences(body: &[u8]) -> Option<Preferences> {
    let mut prefs = Preferences::default();
    let mut chosen = Vec::new();
    let mut only_chosen = None;
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "frequency" => prefs.frequency = Some(value.parse().ok()?),
            "topics" => {
                only_chosen = Some(match value.as_ref() {
                    "all" => false,
                    "chosen" => true,
                    _ => return None,
                })
            }
            "topic" => chosen.push(value.into_owned()),
            _ => {}
        }
    }
    // "Everything" wins over boxes left ticked; "only these" with none ticked is
    // everything; without the choice (a form of its own), the boxes decide.
    prefs.topics = match only_chosen {
        Some(false) => None,
        _ if chosen.is_empty() => None,
        _ => Some(chosen),
    };
    Some(prefs)
}
