//! The readers' forms: subscribe, confirm, unsubscribe and their own choices.
//! Their words are in the templates (Korean or English, after `site.language`).
//! The archive's pages are drawn elsewhere (`render::pages`).
//!
//! A handler's answer that is a short message, and every failure, is a
//! [`Message`]: the layer [`messages`] draws it with `message.html`.

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{error_status, retry_after, WebState};
use crate::app::Worker as _;
use crate::domain::{one_line, EmailAddress, Preferences};
use crate::error::Error;
use crate::tokens::TokenError;

/// The readers' routes, their messages drawn by [`messages`].
pub fn router(state: &WebState) -> Router<WebState> {
    Router::new()
        .route("/subscribe", get(subscribe_form).post(subscribe))
        .route("/confirm/{token}", get(confirm))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(
            "/preferences/{token}",
            get(preferences_page).post(save_preferences),
        )
        .route_layer(from_fn_with_state(state.clone(), messages))
}

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

/// One of `message.html`'s messages (its `kind`), with a status.
#[derive(Clone, Copy)]
pub struct Message {
    status: StatusCode,
    kind: &'static str,
}

impl Message {
    const fn new(status: StatusCode, kind: &'static str) -> Message {
        Message { status, kind }
    }
}

impl IntoResponse for Message {
    fn into_response(self) -> Response {
        // The kind until the layer draws the page with the site's templates,
        // which an `IntoResponse` cannot reach.
        let mut response = (self.status, self.kind).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The layer that draws each [`Message`] with `message.html`.
async fn messages(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let Some(message) = response.extensions_mut().remove::<Message>() else {
        return response;
    };
    let drawn = page(
        &state,
        "message.html",
        message.status,
        json!({ "kind": message.kind }),
    );
    let (parts, body) = drawn.into_parts();
    response.headers_mut().extend(parts.headers);
    *response.status_mut() = parts.status;
    *response.body_mut() = body;
    response
}

/// A reader's request that failed: a link that no longer works, or an error.
pub enum FormError {
    Link(TokenError),
    Failed(Error),
}

impl From<TokenError> for FormError {
    fn from(e: TokenError) -> Self {
        FormError::Link(e)
    }
}

impl From<Error> for FormError {
    fn from(e: Error) -> Self {
        match e {
            Error::Token(e) => FormError::Link(e),
            e => FormError::Failed(e),
        }
    }
}

impl IntoResponse for FormError {
    fn into_response(self) -> Response {
        let message = match self {
            FormError::Link(TokenError::Expired) => Message::new(StatusCode::GONE, "expired_link"),
            FormError::Link(TokenError::Invalid | TokenError::WrongPurpose) => {
                Message::new(StatusCode::BAD_REQUEST, "invalid_link")
            }
            FormError::Failed(e) => match error_status(&e) {
                StatusCode::SERVICE_UNAVAILABLE => {
                    Message::new(StatusCode::SERVICE_UNAVAILABLE, "send_failed")
                }
                status => Message::new(status, "bad_request"),
            },
        };
        message.into_response()
    }
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
        let limited = Message::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        return ([retry_after(wait)], limited).into_response();
    }
    let form = match form {
        Ok(Form(form)) => form,
        // 413 for an oversized body, 400 for one that is not a form, and so on.
        Err(rejection) => return Message::new(rejection.status(), "bad_request").into_response(),
    };
    if !form.website.is_empty() {
        // A bot: the same answer as everyone gets, and nothing happens.
        return CHECK_EMAIL.into_response();
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
    CHECK_EMAIL.into_response()
}

/// What everyone who asks to subscribe is told.
const CHECK_EMAIL: Message = Message::new(StatusCode::OK, "check_email");

pub async fn confirm(
    State(state): State<WebState>,
    Path(token): Path<String>,
) -> Result<Message, FormError> {
    state
        .app
        .subscriptions()
        .confirm(&token, Utc::now())
        .await?;
    // The welcome is queued: this process's worker sends it now.
    state.worker.wake();
    Ok(Message::new(StatusCode::OK, "confirmed"))
}

/// Shows one button. Fetching this page (as link scanners do) changes nothing.
pub async fn unsubscribe_page(
    State(state): State<WebState>,
    Path(token): Path<String>,
) -> Result<Response, FormError> {
    let action = state
        .app
        .subscriptions()
        .unsubscribe_action(&token, Utc::now())?;
    Ok(page(
        &state,
        "unsubscribe.html",
        StatusCode::OK,
        json!({ "action": action }),
    ))
}

/// The RFC 8058 one-click target: any body (urlencoded or multipart
/// `List-Unsubscribe=One-Click`), no cookies, 200 without a redirect, idempotent.
pub async fn unsubscribe(
    State(state): State<WebState>,
    Path(token): Path<String>,
) -> Result<Message, FormError> {
    state
        .app
        .subscriptions()
        .unsubscribe_by_token(&token, Utc::now())
        .await?;
    Ok(Message::new(StatusCode::OK, "unsubscribed"))
}

/// A reader's own page: how often, which topics, and leaving.
pub async fn preferences_page(
    State(state): State<WebState>,
    Path(token): Path<String>,
) -> Result<Response, FormError> {
    let view = state
        .app
        .subscriptions()
        .preferences(&token, Utc::now())
        .await?;
    Ok(preferences_view(&state, &view, None))
}

/// Saves the page's form: `frequency` (`each` | `digest`), `topics` (`all` |
/// `chosen`) and any number of `topic` fields.
pub async fn save_preferences(
    State(state): State<WebState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, FormError> {
    let Some(prefs) = read_preferences(&body) else {
        return Ok(Message::new(StatusCode::BAD_REQUEST, "bad_request").into_response());
    };
    let saved = state
        .app
        .subscriptions()
        .save_preferences(&token, prefs, Utc::now())
        .await?;
    // Posts that waited for the digest go now: this process's worker sends them.
    if saved.caught_up > 0 {
        state.worker.wake();
    }
    Ok(preferences_view(&state, &saved.page, Some(&saved)))
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
