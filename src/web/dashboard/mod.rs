//! The author's dashboard under `/admin`: server-rendered pages (templates
//! `admin-*.html`) drawn from typed views, a session cookie started with the
//! admin token, and a CSRF token (plus an Origin check) on every request that
//! changes something.
//!
//! Its routes stand behind layers, so a handler only does its own work: the
//! session layer ([`sign_in::gate`]) lets in a signed-in author (handlers take
//! [`session::Session`]), [`csrf::CsrfForm`] checks a change's token, and a
//! handler's [`error::PageError`] becomes the error page ([`error::render`]).

mod bounces;
mod csrf;
mod error;
mod issues;
mod overview;
mod posts;
mod session;
mod sign_in;
mod subscribers;
mod view;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;

use super::webhooks::WEBHOOK_BODY_LIMIT;
use super::{timeout, WebState, LONG_REQUEST_TIMEOUT, REQUEST_TIMEOUT};
use sign_in::Gate;

/// Every route under `/admin`, each behind what its [`Gate`] asks.
pub fn router(state: &WebState) -> Router<WebState> {
    let home = Router::new()
        .route("/admin", get(overview::home))
        .route("/admin/", get(overview::home));
    let sign_in = Router::new().route("/admin/login", post(sign_in::login));
    let pages = Router::new()
        .route("/admin/logout", post(sign_in::logout))
        .route("/admin/posts", get(posts::posts))
        .route("/admin/posts/{slug}", get(posts::post))
        .route("/admin/posts/{slug}/email.html", get(posts::email_html))
        .route(
            "/admin/posts/{slug}/send",
            get(posts::send_confirm).post(posts::send),
        )
        .route("/admin/issues/{slug}", get(issues::issue))
        .route("/admin/issues/{slug}/progress", get(issues::issue_progress))
        .route("/admin/issues/{slug}/retry", post(issues::retry))
        .route("/admin/deliveries/{id}", get(issues::delivery))
        .route(
            "/admin/subscribers",
            get(subscribers::subscribers).post(subscribers::add_subscriber),
        )
        .route("/admin/subscribers/{id}", get(subscribers::subscriber))
        .route(
            "/admin/subscribers/{id}/unsubscribe",
            post(subscribers::unsubscribe),
        )
        .route("/admin/subscribers/{id}/forget", post(subscribers::forget))
        .route("/admin/bounces", get(bounces::bounces));
    // The requests that take the whole list or wait on the mail server.
    let long = Router::new()
        .route("/admin/posts/{slug}/test", post(posts::send_test))
        .route("/admin/subscribers.csv", get(subscribers::export))
        .route(
            "/admin/subscribers/import",
            post(subscribers::import).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT * 4)),
        );
    // A script anyone may fetch: it holds nothing.
    let script = Router::new()
        .route("/admin/issue.js", get(issues::issue_script))
        .route_layer(timeout(REQUEST_TIMEOUT));
    guarded(home, state, Gate::Home, REQUEST_TIMEOUT)
        .merge(guarded(sign_in, state, Gate::On, REQUEST_TIMEOUT))
        .merge(guarded(pages, state, Gate::Page, REQUEST_TIMEOUT))
        .merge(guarded(long, state, Gate::Page, LONG_REQUEST_TIMEOUT))
        .merge(script)
}

/// `routes` behind the session layer and the error page, within `limit`.
fn guarded(
    routes: Router<WebState>,
    state: &WebState,
    gate: Gate,
    limit: Duration,
) -> Router<WebState> {
    routes
        .route_layer(from_fn_with_state((state.clone(), gate), sign_in::gate))
        .route_layer(from_fn_with_state(state.clone(), error::render))
        .route_layer(timeout(limit))
}
