//! The admin API: JSON under `/api`, behind `Authorization: Bearer <admin_token>`.
//! With no token configured the API does not exist (404).

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::WebState;
use crate::delivery::{self, DeliverOptions};
use crate::domain::{DeliveryStatus, SubscriberStatus};
use crate::error::Error;

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<WebState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = &state.app.config.server.admin_token else {
            return Err(StatusCode::NOT_FOUND.into_response());
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if constant_time_eq(given.trim().as_bytes(), expected.expose().as_bytes()) {
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

/// Compares digests, so neither the contents nor the length of the token leak
/// through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn error(e: Error) -> Response {
    let status = match &e {
        Error::PostNotFound(_) | Error::IssueNotFound(_) => StatusCode::NOT_FOUND,
        Error::Invalid(_) => StatusCode::CONFLICT,
        _ => {
            tracing::error!(error = %e, "admin API");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, Json(json!({ "error": e.to_string() }))).into_response()
}

/// `POST /api/posts/{slug}/send`: what `posthorn send SLUG --yes` does. Answers 202
/// at once with the number queued; the sending goes on in the background.
pub async fn send(_: Admin, State(state): State<WebState>, Path(slug): Path<String>) -> Response {
    let app = &state.app;
    let now = Utc::now();
    let queued = async {
        app.sync_posts(now).await?;
        let post = app.post(&slug).await?;
        app.queue_post(&post, now).await
    }
    .await;
    match queued {
        Ok((issue, queued)) => {
            let app = app.clone();
            let issue_id = issue.id;
            tokio::spawn(async move {
                let options = DeliverOptions {
                    issue_id: Some(issue_id),
                    ..Default::default()
                };
                match delivery::deliver_due(&app, now, options).await {
                    Ok(report) => tracing::info!(issue_id, ?report, "admin send finished"),
                    Err(e) => tracing::error!(issue_id, error = %e, "admin send failed"),
                }
            });
            (
                StatusCode::ACCEPTED,
                Json(json!({ "slug": slug, "issue_id": issue_id, "queued": queued })),
            )
                .into_response()
        }
        Err(e) => error(e),
    }
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
) -> Response {
    let status = match q
        .status
        .as_deref()
        .map(str::parse::<DeliveryStatus>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
    };
    let result = async {
        let issue = state.app.issue_of(&slug).await?;
        state.app.store.delivery_log(issue.id, status).await
    }
    .await;
    match result {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => error(e),
    }
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
) -> Response {
    let status = match q
        .status
        .as_deref()
        .map(str::parse::<SubscriberStatus>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    match state
        .app
        .store
        .subscribers_page(status, q.after, limit)
        .await
    {
        Ok(page) => {
            let next = (page.len() as i64 == limit)
                .then(|| page.last().map(|s| s.id))
                .flatten();
            Json(json!({ "subscribers": page, "next_after": next })).into_response()
        }
        Err(e) => error(e),
    }
}

pub async fn status(_: Admin, State(state): State<WebState>) -> Response {
    match state.app.store.issue_statuses(None).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => error(e),
    }
}
