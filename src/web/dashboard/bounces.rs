//! The bounce and complaint reports, and those that matched no one.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use super::error::PageError;
use super::session::Session;
use super::view::{render, when};
use crate::store::ReportRow;
use crate::web::WebState;

#[derive(Serialize)]
struct Bounces<'a> {
    reports: Vec<Report<'a>>,
    unmatched: Vec<Report<'a>>,
}

#[derive(Serialize, Clone)]
struct Report<'a> {
    received: String,
    kind: &'a str,
    recipient: Option<&'a str>,
    status: Option<&'a str>,
    reason: Option<&'a str>,
    effect: &'a str,
    issue: Option<&'a str>,
    source: &'a str,
    matched_by: Option<&'a str>,
    diagnostic: Option<&'a str>,
}

impl<'a> Report<'a> {
    fn of(state: &WebState, r: &'a ReportRow) -> Report<'a> {
        Report {
            received: when(state, r.received_at),
            kind: &r.kind,
            recipient: r.recipient.as_deref(),
            status: r.status.as_deref(),
            reason: r.reason.as_deref(),
            effect: &r.effect,
            issue: r.issue.as_deref(),
            source: &r.source,
            matched_by: r.matched_by.as_deref(),
            diagnostic: r.diagnostic.as_deref(),
        }
    }
}

pub async fn bounces(
    State(state): State<WebState>,
    session: Session,
) -> Result<Response, PageError> {
    let rows = state.app.bounces().list(200).await?;
    let reports: Vec<Report> = rows.iter().map(|r| Report::of(&state, r)).collect();
    let unmatched = reports
        .iter()
        .filter(|r| r.effect == "unmatched")
        .cloned()
        .collect();
    let view = Bounces { reports, unmatched };
    render(&state, "admin-bounces.html", &session.csrf, view)
}
