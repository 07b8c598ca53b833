//! What every dashboard page shares: drawing a template with a typed view, and
//! the words and times the views are made of.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::PageError;
use crate::error::Error;
use crate::web::{parse_status, WebState};

/// Rows per page of the log and the subscriber list.
pub const PAGE: i64 = 50;

/// A page's view with the session's CSRF token, which the navigation's sign-out
/// form (and every form) carries.
#[derive(Serialize)]
struct Page<'a, V> {
    csrf: &'a str,
    #[serde(flatten)]
    view: V,
}

/// Draws a dashboard page (`admin-*.html`) with `view`.
pub fn render<V: Serialize>(
    state: &WebState,
    template: &str,
    csrf: &str,
    view: V,
) -> Result<Response, PageError> {
    let data = serde_json::to_value(Page { csrf, view })
        .map_err(|e| Error::Internal(format!("the view of {template}: {e}")))?;
    let html = state.app.templates().admin_page(template, data)?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}

/// A time as the author reads it, in the site's time zone.
pub fn when(state: &WebState, t: DateTime<Utc>) -> String {
    t.with_timezone(&state.app.config().site.timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// One word of the dashboard, in the site's language.
pub fn word(state: &WebState, key: &str) -> String {
    state.app.templates().admin_word(key)
}

/// A value made safe for one segment of a path.
pub fn path_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A status with its word and how many are in it.
#[derive(Serialize)]
pub struct StatusCount {
    pub status: &'static str,
    pub label: String,
    pub count: i64,
}

/// A status as the filter's drop-down offers it.
#[derive(Serialize)]
pub struct StatusOption {
    value: &'static str,
    label: String,
    selected: bool,
}

/// The words for each status, and whether it is the one chosen.
pub fn status_options(
    state: &WebState,
    all: impl Iterator<Item = &'static str>,
    chosen: Option<&str>,
) -> Vec<StatusOption> {
    all.map(|value| StatusOption {
        value,
        label: word(state, value),
        selected: chosen == Some(value),
    })
    .collect()
}

/// The query of the delivery log and the subscriber list: a status, the start
/// of an address, and the last row of the page before.
#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    pub status: Option<String>,
    q: Option<String>,
    #[serde(default)]
    pub after: i64,
    pub done: Option<String>,
}

impl ListQuery {
    pub fn q(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    /// The status asked for, parsed; none when the filter says "all".
    pub fn status<S: std::str::FromStr<Err = String>>(&self) -> Result<Option<S>, Error> {
        parse_status(self.status.as_deref())
    }

    /// The same list from `after`.
    pub fn link(&self, base: &str, after: i64) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = self.status.as_deref().filter(|s| !s.is_empty()) {
            url.append_pair("status", s);
        }
        if let Some(q) = self.q() {
            url.append_pair("q", q);
        }
        if after > 0 {
            url.append_pair("after", &after.to_string());
        }
        let query = url.finish();
        if query.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{query}")
        }
    }

    /// The next page's link when this page is full.
    pub fn next_page(&self, base: &str, rows: usize, last_id: Option<i64>) -> Option<String> {
        (rows as i64 == PAGE)
            .then(|| last_id.map(|id| self.link(base, id)))
            .flatten()
    }
}

/// Archive views day by day, as a line.
pub fn views_chart(state: &WebState, days: &[crate::app::DayViews]) -> String {
    let label = word(state, "views");
    let at = |i: usize| days.get(i).map_or("", |d| d.day.as_str());
    crate::render::charts::lines(
        &word(state, "views_by_day"),
        &[crate::render::charts::Series {
            label: &label,
            color: "#1a7f37",
            values: days.iter().map(|d| d.views).collect(),
        }],
        [at(0), at(days.len() / 2), at(days.len().saturating_sub(1))],
    )
}
