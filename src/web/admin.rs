//! The admin API: JSON under `/api`, behind `Authorization: Bearer <admin_token>`.
//! With no token configured the API does not exist (404). Failed attempts share
//! the dashboard sign-in's limiter: past it, `429` before the token is looked at.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{error_status, parse_status, retry_after, WebState};
use crate::domain::{constant_time_eq, DeliveryStatus, SubscriberStatus};
use crate::error::Error;

/// The bearer token a request carries (`Authorization: Bearer …`), or "".
pub fn bearer(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim()
}

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<WebState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = &state.app.config().server.admin_token else {
            return Err(StatusCode::NOT_FOUND.into_response());
        };
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        // Every attempt takes its token first, so attempts at once cannot pass
        // the limit; the right token gives it back.
        if let Err(wait) = state.sign_in_limiter.take(peer.ip()) {
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                [retry_after(wait)],
                Json(json!({ "error": "too many failed attempts from this address; try again later" })),
            )
                .into_response());
        }
        if constant_time_eq(
            bearer(&parts.headers).as_bytes(),
            expected.expose().as_bytes(),
        ) {
            state.sign_in_limiter.give_back(peer.ip());
            Ok(Admin)
        } else {
            Err((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({ "error": "missing or wrong bearer token" })),
            )
                .into_response())
        }
    }
}

/// An admin API request that failed, answered as `{"error": "…"}` with the
/// status the error calls for.
pub struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = error_status(&self.0);
        (status, Json(json!({ "error": self.0.to_string() }))).into_response()
    }
}

/// `POST /api/posts/{slug}/send`: queues the post as `posthorn send SLUG --yes`
/// does, answers 202 with the number queued, and wakes this process's worker,
/// which delivers it (with no worker here, the next tick of any worker does).
pub async fn send(
    _: Admin,
    State(state): State<WebState>,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let enqueued = state
        .app
        .publishing()
        .queue(&slug, Utc::now(), &state.worker)
        .await?;
    let body = json!({ "slug": slug, "issue_id": enqueued.issue_id, "queued": enqueued.queued });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Deserialize)]
pub struct DeliveriesQuery {
    status: Option<String>,
}

pub async fn deliveries(
    _: Admin,
    State(state): State<WebState>,
    Path(slug): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Response, ApiError> {
    let status = parse_status::<DeliveryStatus>(q.status.as_deref())?;
    let rows = state.app.ledger().delivery_log(&slug, status).await?;
    Ok(Json(rows).into_response())
}

#[derive(Deserialize)]
pub struct SubscribersQuery {
    status: Option<String>,
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
}

/// Subscribers in pages: `?status=active&after=ID&limit=N` (at most 1,000 a page).
pub async fn subscribers(
    _: Admin,
    State(state): State<WebState>,
    Query(q): Query<SubscribersQuery>,
) -> Result<Response, ApiError> {
    let status = parse_status::<SubscriberStatus>(q.status.as_deref())?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let page = state
        .app
        .ledger()
        .subscribers(None, status, q.after, limit)
        .await?;
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|s| s.id))
        .flatten();
    Ok(Json(json!({ "subscribers": page, "next_after": next })).into_response())
}

/// `GET /api/posts/{slug}/stats`: what `posthorn stats SLUG --json` prints.
pub async fn stats(
    _: Admin,
    State(state): State<WebState>,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let stats = state.app.analytics().stats(Some(&slug)).await?;
    Ok(Json(stats).into_response())
}

pub async fn status(_: Admin, State(state): State<WebState>) -> Result<Response, ApiError> {
    let statuses = state.app.ledger().issue_statuses(None).await?;
    Ok(Json(statuses).into_response())
}

#[derive(Deserialize)]
pub struct ForgetRequest {
    email: String,
}

/// `POST /api/subscribers/forget` with `{"email": "…"}`: erases a person, as
/// `posthorn subscribers forget` does.
pub async fn forget(
    _: Admin,
    State(state): State<WebState>,
    Json(body): Json<ForgetRequest>,
) -> Result<Response, ApiError> {
    let email = crate::domain::EmailAddress::parse(&body.email).map_err(Error::Invalid)?;
    let forgotten = state.app.subscriptions().forget(&email, Utc::now()).await?;
    Ok(Json(forgotten).into_response())
}
