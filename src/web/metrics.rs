//! `GET /metrics`: OpenMetrics text (what Prometheus scrapes), behind the
//! admin token. Database counts are kept as rows change (no scan of the log);
//! the rest is this process's since it started.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::admin::{bearer, Admin, ApiError};
use super::WebState;
use crate::domain::DeliveryStatus;

/// A request as counted: the route it matched (or `other`) and its answer.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    code: u16,
}

/// Requests answered since start, by route and code.
#[derive(Debug, Clone, Default)]
pub struct HttpMeters(Family<HttpLabels, Counter>);

/// Counts every answer. Outermost, so a 404, a 408 and a 413 count too.
pub async fn count(State(meters): State<HttpMeters>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |p| p.as_str())
        .to_string();
    let code = response.status().as_u16();
    meters.0.get_or_create(&HttpLabels { route, code }).inc();
    response
}

/// Hands the matched route to [`count`], which runs outside the router.
pub async fn keep_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    kind: String,
    effect: String,
}

/// `GET /metrics` with the metrics token (`server.metrics_token`, which reads
/// this and nothing else, and is not slowed by failed sign-ins elsewhere) or
/// the admin token.
pub async fn metrics(
    State(state): State<WebState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = request.into_parts();
    let given = bearer(&parts.headers);
    let metrics_token = state.app.config().server.metrics_token.as_ref();
    let scraper = metrics_token
        .is_some_and(|t| crate::domain::constant_time_eq(given.as_bytes(), t.expose().as_bytes()));
    // Only a request without the metrics token goes through the admin check,
    // so a scraper never spends the failed sign-ins of its address.
    if !scraper {
        use axum::extract::FromRequestParts;
        if let Err(refused) = Admin::from_request_parts(&mut parts, &state).await {
            // With only a metrics token set, a wrong one is a 401, not the
            // admin API's "off".
            return Ok(
                if metrics_token.is_some() && refused.status() == StatusCode::NOT_FOUND {
                    (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, "Bearer")],
                    )
                        .into_response()
                } else {
                    refused
                },
            );
        }
    }
    let mut registry = Registry::with_prefix("posthorn");
    let counts = state.app.ledger().log_counts().await?;

    let deliveries = Family::<StatusLabel, Gauge>::default();
    let mut queued = 0;
    for (status, n) in &counts.deliveries {
        deliveries
            .get_or_create(&StatusLabel {
                status: status.clone(),
            })
            .set(*n);
        if status
            .parse::<DeliveryStatus>()
            .is_ok_and(DeliveryStatus::is_waiting)
        {
            queued += n;
        }
    }
    registry.register("deliveries", "Deliveries in the log, by status", deliveries);
    let queue = Gauge::<i64>::default();
    queue.set(queued);
    registry.register(
        "queue_depth",
        "Deliveries waiting to be sent (queued or retrying)",
        queue,
    );
    let reports = Family::<ReportLabels, Counter>::default();
    for (kind, effect, n) in &counts.reports {
        reports
            .get_or_create(&ReportLabels {
                kind: kind.clone(),
                effect: effect.clone(),
            })
            .inc_by(u64::try_from(*n).unwrap_or(0));
    }
    registry.register(
        "reports",
        "Bounces, complaints, delays and delivery reports received, by kind and what they did",
        reports,
    );

    if let Some(smtp) = state.app.smtp_meters() {
        registry.register(
            "smtp_messages",
            "Messages handed to each relay since start: sent, refused for the reader, or the relay's fault",
            smtp.messages,
        );
        registry.register(
            "smtp_seconds",
            "Time a message takes on the wire, per relay",
            smtp.seconds,
        );
    }
    if let Some(worker) = &state.worker {
        let ticks = worker.ticks();
        let run = Counter::<u64>::default();
        run.inc_by(ticks.ticks);
        registry.register("ticks", "Scheduler ticks run since start", run);
        let failed = Counter::<u64>::default();
        failed.inc_by(ticks.failures);
        registry.register(
            "tick_failures",
            "Scheduler ticks that failed since start",
            failed,
        );
        if let Some(at) = ticks.last_success {
            let last = Gauge::<i64>::default();
            last.set(at.timestamp());
            registry.register(
                "last_tick_success_timestamp_seconds",
                "When a tick last succeeded, in seconds since 1970",
                last,
            );
        }
    }
    registry.register(
        "http_requests",
        "HTTP requests answered since start, by route and code",
        state.http.0.clone(),
    );

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| crate::error::Error::Internal(format!("writing metrics: {e}")))?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
