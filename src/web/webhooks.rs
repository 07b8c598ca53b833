//! `POST /webhooks/{provider}`: providers' bounce and complaint events.
//! 401 when the request fails authentication (nothing changes), 404 for a
//! provider that is not set up, 503 when the database cannot take it (the
//! provider retries).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{error_status, WebState};
use crate::app::WebhookFailure;
use crate::bounces::webhooks::WebhookError;
use crate::domain::ReportSource;

pub async fn receive(
    State(state): State<WebState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let provider = match provider.parse::<ReportSource>() {
        Ok(
            p @ (ReportSource::Ses
            | ReportSource::Postmark
            | ReportSource::Mailgun
            | ReportSource::Sendgrid),
        ) => p,
        _ => return StatusCode::NOT_FOUND.into_response(),
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
