//! `POST /webhooks/{provider}`: providers' bounce and complaint events.
//! 401 when the request fails authentication (nothing changes), 404 for a
//! provider that is not set up, 503 when the database cannot take it (the
//! provider retries).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{error_status, WebState};
use crate::app::WebhookFailure;
use crate::bounces::webhooks::WebhookError;
use crate::domain::ReportSource;

/// The largest webhook body (SendGrid batches its events).
pub const WEBHOOK_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Webhook bodies read at once: anyone can post to the webhooks, so what they
/// can make the server hold in memory is bounded (this many bodies at most).
pub const WEBHOOK_BODIES_AT_ONCE: usize = 8;

pub async fn receive(
    State(state): State<WebState>,
    Path(provider): Path<String>,
    request: Request,
) -> Response {
    let provider = match provider.parse::<ReportSource>() {
        Ok(
            p @ (ReportSource::Ses
            | ReportSource::Postmark
            | ReportSource::Mailgun
            | ReportSource::Sendgrid),
        ) if state.app.bounces().webhook_set_up(p) => p,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    // Waiting here holds a connection, not a body; the request timeout bounds it.
    let Ok(_reading) = state.webhook_bodies.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let body = match axum::body::to_bytes(body, WEBHOOK_BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match state.app.bounces().webhook(provider, header, &body).await {
        Ok(reply) => Json(reply).into_response(),
        Err(failure) => {
            let status = match &failure {
                WebhookFailure::Refused(WebhookError::Unauthorized(why)) => {
                    tracing::warn!(%provider, %why, "a webhook request failed authentication");
                    StatusCode::UNAUTHORIZED
                }
                WebhookFailure::Refused(WebhookError::NotConfigured(_)) => StatusCode::NOT_FOUND,
                WebhookFailure::Refused(WebhookError::BadRequest(_)) => StatusCode::BAD_REQUEST,
                WebhookFailure::Refused(WebhookError::Upstream(why)) => {
                    tracing::warn!(%provider, %why, "a webhook needed Amazon and could not reach it");
                    StatusCode::BAD_GATEWAY
                }
                WebhookFailure::Store(e) => match error_status(e) {
                    StatusCode::INTERNAL_SERVER_ERROR => StatusCode::SERVICE_UNAVAILABLE,
                    other => other,
                },
            };
            (status, Json(json!({ "error": failure.to_string() }))).into_response()
        }
    }
}
