//! `/admin`: the overview, with its charts drawn on the server.

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use serde::Serialize;

use super::error::PageError;
use super::session::Session;
use super::view::{render, views_chart, when, word, StatusCount};
use crate::app::{IssueCounts, GROWTH_DAYS};
use crate::delivery::RelayState;
use crate::domain::{DeliveryStatus, SubscriberStatus};
use crate::render::charts::{self, Series};
use crate::store::DayCounts;
use crate::web::WebState;

const OUTCOME_COLORS: [(DeliveryStatus, &str); 8] = [
    (DeliveryStatus::Sent, "#1a7f37"),
    (DeliveryStatus::Bounced, "#bc4c00"),
    (DeliveryStatus::Complained, "#cf222e"),
    (DeliveryStatus::Failed, "#8250df"),
    (DeliveryStatus::Queued, "#8c959f"),
    (DeliveryStatus::Sending, "#8c959f"),
    (DeliveryStatus::Retrying, "#8c959f"),
    (DeliveryStatus::Skipped, "#d4a72c"),
];

/// Which of a day's counts a line of the growth chart draws.
type DayField = fn(&DayCounts) -> i64;

/// The growth chart's lines: a word, a colour, and the field of a day's counts.
const GROWTH_LINES: [(&str, &str, DayField); 4] = [
    ("new", "#0a58ca", |d| d.new),
    ("confirmed", "#1a7f37", |d| d.confirmed),
    ("unsubscribed", "#8c959f", |d| d.unsubscribed),
    ("bounced", "#bc4c00", |d| d.bounced),
];

#[derive(Serialize)]
struct Overview {
    subscribers: Vec<StatusCount>,
    growth_chart: String,
    growth_legend: Vec<Legend>,
    issues: Vec<IssueRow>,
    outcome_legend: Vec<Legend>,
    bounce_rate: String,
    complaint_rate: String,
    complaint_limit: f64,
    over_limit: bool,
    sources: Vec<SourceRow>,
    relays: Vec<RelayRow>,
    next_tick: String,
    cron: String,
    views_chart: String,
    followers: i64,
    followers_chart: Option<String>,
}

/// One relay as this process has found it.
#[derive(Serialize)]
struct RelayRow {
    name: String,
    weight: u32,
    standby: bool,
    up: bool,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct Legend {
    label: String,
    color: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
}

#[derive(Serialize)]
struct IssueRow {
    slug: String,
    title: String,
    created: String,
    total: i64,
    bar: String,
}

#[derive(Serialize)]
struct SourceRow {
    url: String,
    last_fetch: Option<String>,
    last_status: Option<String>,
    last_error: Option<String>,
    entries: i64,
}

/// `/admin` for a signed-in author (the session layer shows the sign-in, or
/// how to turn the dashboard on, to anyone else).
pub async fn home(State(state): State<WebState>, session: Session) -> Result<Response, PageError> {
    let state = &state;
    let now = Utc::now();
    let o = state.app.dashboard().overview(now).await?;
    let subscribers = SubscriberStatus::ALL
        .iter()
        .map(|s| StatusCount {
            status: s.as_str(),
            label: word(state, s.as_str()),
            count: o.subscribers.get(s).copied().unwrap_or(0),
        })
        .collect();
    let labels: Vec<String> = GROWTH_LINES
        .iter()
        .map(|(k, _, _)| word(state, k))
        .collect();
    let lines: Vec<Series> = GROWTH_LINES
        .iter()
        .zip(&labels)
        .map(|((_, color, field), label)| Series {
            label,
            color,
            values: o.growth.iter().map(field).collect(),
        })
        .collect();
    let day = |i: i64| {
        (o.growth_from + chrono::Duration::days(i))
            .with_timezone(&state.app.config().site.timezone)
            .format("%m-%d")
            .to_string()
    };
    let last = GROWTH_DAYS as i64 - 1;
    let growth_chart = charts::lines(
        &word(state, "growth"),
        &lines,
        [&day(0), &day(last / 2), &day(last)],
    );
    let growth_legend = lines
        .iter()
        .zip(GROWTH_LINES)
        .map(|(line, (_, color, _))| Legend {
            label: line.label.to_string(),
            color,
            total: Some(line.values.iter().sum()),
        })
        .collect();
    let issues = o
        .issues
        .iter()
        .map(|i| IssueRow {
            slug: i.slug.clone(),
            title: i.title.clone(),
            created: when(state, i.created_at),
            total: i.total,
            bar: outcome_bar(state, i),
        })
        .collect();
    let outcome_legend = OUTCOME_COLORS
        .iter()
        .filter(|(s, _)| !matches!(s, DeliveryStatus::Sending | DeliveryStatus::Retrying))
        .map(|(s, color)| {
            let key = if *s == DeliveryStatus::Queued {
                "waiting"
            } else {
                s.as_str()
            };
            Legend {
                label: word(state, key),
                color,
                total: None,
            }
        })
        .collect();
    let sources = o
        .sources
        .iter()
        .map(|s| SourceRow {
            url: s.url.clone(),
            last_fetch: s.last_fetch_at.map(|t| when(state, t)),
            last_status: s.last_status.map(|x| x.to_string()),
            last_error: s.last_error.clone(),
            entries: s.entries,
        })
        .collect();
    let relays = state
        .app
        .relays()
        .into_iter()
        .map(|r| RelayRow {
            name: r.name.to_string(),
            weight: r.weight,
            standby: r.weight == 0,
            up: r.state == RelayState::Up,
            last_error: r.last_error,
        })
        .collect();
    let analytics = state.app.analytics();
    let views_chart = views_chart(
        state,
        &analytics.views_by_day(GROWTH_DAYS as i64, now).await?,
    );
    let followers = analytics.followers().await?;
    let services: Vec<(&str, i64)> = followers
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.followers))
        .collect();
    let followers_chart = (!services.is_empty())
        .then(|| charts::bars(&word(state, "followers"), &services, "#0a58ca"));
    let config = state.app.config();
    let next_tick = crate::config::next_time(&config.schedule.check, config.site.timezone, now)
        .map(|t| when(state, t))
        .unwrap_or_default();
    let view = Overview {
        subscribers,
        growth_chart,
        growth_legend,
        issues,
        outcome_legend,
        bounce_rate: format!("{:.2}", o.bounce_rate),
        complaint_rate: format!("{:.2}", o.complaint_rate),
        complaint_limit: o.complaint_limit,
        over_limit: o.complaint_rate > o.complaint_limit,
        sources,
        relays,
        next_tick,
        cron: config.schedule.check.to_string(),
        views_chart,
        followers: followers.total,
        followers_chart,
    };
    render(state, "admin-overview.html", &session.csrf, view)
}

/// One issue's outcomes as a stacked bar.
fn outcome_bar(state: &WebState, issue: &IssueCounts) -> String {
    let labels: Vec<String> = OUTCOME_COLORS
        .iter()
        .map(|(s, _)| word(state, s.as_str()))
        .collect();
    let segments: Vec<Series> = OUTCOME_COLORS
        .iter()
        .zip(&labels)
        .map(|((s, color), label)| Series {
            label,
            color,
            values: vec![issue.count(*s)],
        })
        .collect();
    charts::bar(&issue.title, &segments)
}
