//! The subscribers: the list, one person, adding, the CSV in and out,
//! unsubscribing and forgetting.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::csrf::{CsrfForm, CsrfQuery};
use super::error::PageError;
use super::session::Session;
use super::view::{render, status_options, when, word, ListQuery, StatusOption, PAGE};
use crate::app::ImportSummary;
use crate::domain::{EmailAddress, SubscriberStatus};
use crate::error::Error;
use crate::store::Subscriber;
use crate::web::WebState;

#[derive(Serialize)]
struct SubscribersPage<'a> {
    statuses: Vec<StatusOption>,
    q: Option<&'a str>,
    rows: Vec<SubscriberRow>,
    after: bool,
    first_page: String,
    next_page: Option<String>,
    notice: Option<String>,
    import: Option<ImportSummary>,
}

/// A subscriber as the list shows them (and their own page, with more).
#[derive(Serialize)]
struct SubscriberRow {
    id: i64,
    email: String,
    name: String,
    status: &'static str,
    status_label: String,
    since: String,
}

impl SubscriberRow {
    fn of(state: &WebState, s: &Subscriber) -> SubscriberRow {
        SubscriberRow {
            id: s.id,
            email: s.email.as_str().to_string(),
            name: s.name.clone(),
            status: s.status.as_str(),
            status_label: word(state, s.status.as_str()),
            since: when(state, s.created_at),
        }
    }
}

async fn subscribers_page(
    state: &WebState,
    session: &Session,
    query: &ListQuery,
    import: Option<ImportSummary>,
) -> Result<Response, PageError> {
    let status = query.status::<SubscriberStatus>()?;
    let rows = state
        .app
        .ledger()
        .subscribers(query.q(), status, query.after, PAGE)
        .await?;
    let base = "/admin/subscribers";
    let next_page = query.next_page(base, rows.len(), rows.last().map(|r| r.id));
    let rows = rows.iter().map(|s| SubscriberRow::of(state, s)).collect();
    let notice = query
        .done
        .as_deref()
        .filter(|d| matches!(*d, "added"))
        .map(|d| word(state, d));
    let statuses = SubscriberStatus::ALL.iter().map(|s| s.as_str());
    let view = SubscribersPage {
        statuses: status_options(state, statuses, status.map(|s| s.as_str())),
        q: query.q(),
        rows,
        after: query.after > 0,
        first_page: query.link(base, 0),
        next_page,
        notice,
        import,
    };
    render(state, "admin-subscribers.html", &session.csrf, view)
}

pub async fn subscribers(
    State(state): State<WebState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    subscribers_page(&state, &session, &query, None).await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
}

pub async fn add_subscriber(
    State(state): State<WebState>,
    CsrfForm(form): CsrfForm<AddForm>,
) -> Result<Response, PageError> {
    let email = EmailAddress::parse(&form.email).map_err(Error::Invalid)?;
    let name = crate::domain::one_line(&form.name);
    state
        .app
        .subscriptions()
        .add(&email, &name, Utc::now())
        .await?;
    Ok(Redirect::to("/admin/subscribers?done=added").into_response())
}

/// A CSV upload (multipart); the CSRF token rides in the query string.
pub async fn import(
    State(state): State<WebState>,
    session: Session,
    _: CsrfQuery,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let upload = |e| Error::Invalid(format!("the upload: {e}"));
    let mut data = Vec::new();
    let mut name = String::from("upload");
    while let Some(field) = multipart.next_field().await.map_err(upload)? {
        if field.name() == Some("file") {
            if let Some(file) = field.file_name() {
                name = crate::domain::one_line(file);
            }
            data = field.bytes().await.map_err(upload)?.to_vec();
        }
    }
    let report = state
        .app
        .subscriptions()
        .import_file(std::io::Cursor::new(data), &name, None, Utc::now())
        .await?;
    subscribers_page(&state, &session, &ListQuery::default(), Some(report)).await
}

pub async fn export(State(state): State<WebState>, _: Session) -> Result<Response, PageError> {
    let mut csv = Vec::new();
    state.app.subscriptions().export_csv(&mut csv).await?;
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
        (
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"subscribers.csv\"",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    Ok((headers, csv).into_response())
}

#[derive(Serialize)]
struct SubscriberPage {
    subscriber: SubscriberView,
    deliveries: Vec<DeliveryRow>,
}

#[derive(Serialize)]
struct SubscriberView {
    #[serde(flatten)]
    row: SubscriberRow,
    can_unsubscribe: bool,
    frequency: String,
    topics: Option<String>,
}

#[derive(Serialize)]
struct DeliveryRow {
    slug: String,
    title: String,
    status: &'static str,
    status_label: String,
    attempts: i64,
    last_error: Option<String>,
    updated: String,
}

pub async fn subscriber(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let (s, deliveries) = state
        .app
        .dashboard()
        .subscriber(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no subscriber {id}")))?;
    let deliveries = deliveries
        .into_iter()
        .map(|d| DeliveryRow {
            status: d.status.as_str(),
            status_label: word(&state, d.status.as_str()),
            updated: when(&state, d.updated_at),
            slug: d.slug,
            title: d.title,
            attempts: d.attempts,
            last_error: d.last_error,
        })
        .collect();
    let frequency = s.preferences.frequency_or(state.app.config().schedule.mode);
    let view = SubscriberPage {
        subscriber: SubscriberView {
            row: SubscriberRow::of(&state, &s),
            can_unsubscribe: matches!(
                s.status,
                SubscriberStatus::Active | SubscriberStatus::Pending
            ),
            frequency: word(&state, frequency.as_str()),
            topics: s.preferences.topics.as_ref().map(|t| t.join(", ")),
        },
        deliveries,
    };
    render(&state, "admin-subscriber.html", &session.csrf, view)
}

pub async fn unsubscribe(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    CsrfForm(()): CsrfForm,
) -> Result<Response, PageError> {
    state
        .app
        .subscriptions()
        .unsubscribe_id(id, Utc::now())
        .await?;
    Ok(Redirect::to(&format!("/admin/subscribers/{id}")).into_response())
}

pub async fn forget(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    CsrfForm(()): CsrfForm,
) -> Result<Response, PageError> {
    state.app.subscriptions().forget_id(id, Utc::now()).await?;
    Ok(Redirect::to("/admin/subscribers").into_response())
}
