//! An issue: its delivery log, its live progress, retrying what failed, and one
//! delivery's history.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use futures_util::Stream;
use serde::Serialize;

use super::csrf::CsrfForm;
use super::error::PageError;
use super::session::Session;
use super::view::{
    path_part, render, status_options, when, word, ListQuery, StatusCount, StatusOption, PAGE,
};
use crate::app::IssueCounts;
use crate::app::Worker as _;
use crate::domain::DeliveryStatus;
use crate::store::LogFilter;
use crate::web::WebState;

/// Progress of an issue: what the relay took, the rate, and the time left.
#[derive(Serialize)]
struct Progress {
    accepted: i64,
    rate: String,
    left: String,
    done: bool,
    counts: BTreeMap<&'static str, i64>,
}

impl Progress {
    fn of(state: &WebState, issue: &IssueCounts, rate_per_minute: Option<f64>) -> Progress {
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
        Progress {
            accepted: issue.accepted(),
            rate: rate_per_minute.map_or_else(|| "—".into(), |r| format!("{r:.0}")),
            left,
            done: waiting == 0,
            counts: DeliveryStatus::ALL
                .iter()
                .map(|s| (s.as_str(), issue.count(*s)))
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct IssuePage {
    issue: IssueView,
    counts: Vec<StatusCount>,
    progress: Progress,
    failed: bool,
    statuses: Vec<StatusOption>,
    q: Option<String>,
    rows: Vec<LogRow>,
    after: bool,
    first_page: String,
    next_page: Option<String>,
    notice: Option<String>,
}

#[derive(Serialize)]
struct IssueView {
    slug: String,
    title: String,
    created: String,
    total: i64,
}

#[derive(Serialize)]
struct LogRow {
    id: i64,
    email: String,
    status: &'static str,
    status_label: String,
    attempts: i64,
    reply: Option<String>,
    updated: String,
}

pub async fn issue(
    State(state): State<WebState>,
    session: Session,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let dashboard = state.app.dashboard();
    let status = query.status::<DeliveryStatus>()?;
    let filter = LogFilter {
        status,
        email_prefix: query.q().map(str::to_string),
    };
    let issue = dashboard.issue(&slug).await?;
    let rows = dashboard.log(&slug, &filter, query.after, PAGE).await?;
    let counts = DeliveryStatus::ALL
        .iter()
        .map(|s| StatusCount {
            status: s.as_str(),
            label: word(&state, s.as_str()),
            count: issue.count(*s),
        })
        .collect();
    let base = format!("/admin/issues/{}", path_part(&slug));
    let next_page = query.next_page(&base, rows.len(), rows.last().map(|r| r.id));
    let rows = rows
        .into_iter()
        .map(|r| LogRow {
            id: r.id,
            email: r.email,
            status: r.status.as_str(),
            status_label: word(&state, r.status.as_str()),
            attempts: r.attempts,
            reply: r.last_error.or(r.smtp_reply),
            updated: when(&state, r.updated_at),
        })
        .collect();
    let notice = query.done.as_deref().map(|n| {
        n.strip_prefix("retried:")
            .map(|k| format!("{k} {}", word(&state, "retried")))
            .unwrap_or_default()
    });
    let statuses = DeliveryStatus::ALL.iter().map(|s| s.as_str());
    let view = IssuePage {
        issue: IssueView {
            slug: issue.slug.clone(),
            title: issue.title.clone(),
            created: when(&state, issue.created_at),
            total: issue.total,
        },
        counts,
        progress: Progress::of(&state, &issue, None),
        failed: issue.count(DeliveryStatus::Failed) > 0,
        statuses: status_options(&state, statuses, status.map(|s| s.as_str())),
        q: query.q().map(str::to_string),
        rows,
        after: query.after > 0,
        first_page: query.link(&base, 0),
        next_page,
        notice,
    };
    render(&state, "admin-issue.html", &session.csrf, view)
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
        let progress = Progress::of(&step.state, &issue, rate);
        step.finished = progress.done;
        let data = serde_json::to_string(&progress).unwrap_or_default();
        Some((Ok(Event::default().event("progress").data(data)), step))
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
    Path(slug): Path<String>,
    CsrfForm(()): CsrfForm,
) -> Result<Response, PageError> {
    let n = state
        .app
        .publishing()
        .retry_failed(&slug, Utc::now())
        .await?;
    state.worker.wake();
    let to = format!("/admin/issues/{}?done=retried:{n}", path_part(&slug));
    Ok(Redirect::to(&to).into_response())
}

#[derive(Serialize)]
struct DeliveryPage {
    row: DeliveryView,
    history: Vec<HistoryRow>,
}

#[derive(Serialize)]
struct DeliveryView {
    email: String,
    status: &'static str,
    status_label: String,
    attempts: i64,
    subscriber_id: i64,
}

#[derive(Serialize)]
struct HistoryRow {
    at: String,
    kind: String,
    outcome: String,
    reason: Option<String>,
    detail: Option<String>,
}

pub async fn delivery(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let (row, history) = state.app.dashboard().delivery(id).await?;
    let history = history
        .into_iter()
        .map(|e| HistoryRow {
            at: when(&state, e.at),
            kind: e.kind,
            outcome: e.outcome,
            reason: e.reason,
            detail: e.detail,
        })
        .collect();
    let view = DeliveryPage {
        row: DeliveryView {
            email: row.email,
            status: row.status.as_str(),
            status_label: word(&state, row.status.as_str()),
            attempts: row.attempts,
            subscriber_id: row.subscriber_id,
        },
        history,
    };
    render(&state, "admin-delivery.html", &session.csrf, view)
}
