//! Signing in and out, and the session layer that stands before every other
//! dashboard page.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::csrf::CsrfForm;
use super::error::PageError;
use super::session::{
    cookie, forbidden, same_origin, set_cookie, Session, LOGIN_COOKIE, SESSION_COOKIE,
};
use super::view::render;
use crate::domain::{constant_time_eq, hex};
use crate::web::{retry_after, WebState};

/// What a route needs before its handler runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The dashboard turned on (the sign-in itself).
    On,
    /// A session, or else the sign-in form in its place (`/admin`).
    Home,
    /// A session, or else a redirect to the sign-in (a page) or `403` (a change).
    Page,
}

/// The session layer: with the dashboard off, how to turn it on; then what
/// [`Gate`] asks. A found session rides on the request as [`Session`], and
/// anything that changes state must come from our own pages.
pub async fn gate(
    State((state, gate)): State<(WebState, Gate)>,
    mut request: Request,
    next: Next,
) -> Result<Response, PageError> {
    let dashboard = state.app.dashboard();
    if !dashboard.enabled() {
        return page(&state, StatusCode::FORBIDDEN, Login::SETUP, None);
    }
    if gate == Gate::On {
        return Ok(next.run(request).await);
    }
    let cookie = cookie(request.headers(), SESSION_COOKIE).unwrap_or_default();
    let Some(csrf) = dashboard.session(&cookie, Utc::now()).await? else {
        return match gate {
            Gate::Home => page(&state, StatusCode::OK, Login::default(), None),
            _ if request.method() == Method::GET => Ok(Redirect::to("/admin").into_response()),
            _ => Ok(forbidden()),
        };
    };
    if request.method() != Method::GET && !same_origin(request.headers()) {
        return Ok(forbidden());
    }
    request.extensions_mut().insert(Session { cookie, csrf });
    Ok(next.run(request).await)
}

/// The sign-in page's view.
#[derive(Serialize, Default)]
struct Login {
    /// The dashboard is off: how to turn it on, in place of the form.
    setup: bool,
    wrong: bool,
    limited: bool,
}

impl Login {
    const SETUP: Login = Login {
        setup: true,
        wrong: false,
        limited: false,
    };
}

/// The sign-in page, with its CSRF token in a cookie of its own (a new one
/// unless the form is shown again).
fn page(
    state: &WebState,
    status: StatusCode,
    view: Login,
    csrf: Option<&str>,
) -> Result<Response, PageError> {
    let token = csrf
        .map(str::to_string)
        .unwrap_or_else(|| hex(&rand::random::<[u8; 16]>()));
    let mut response = (status, render(state, "admin-login.html", &token, view)?).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &token, false),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

pub async fn login(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    // The login form's token must match its cookie (double submit), from our own page.
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty()
        || !constant_time_eq(form.csrf.as_bytes(), expected.as_bytes())
        || !same_origin(&headers)
    {
        return Ok(forbidden());
    }
    // Shared with the admin API; a right token gives its try back.
    if let Err(wait) = state.sign_in_limiter.take(peer.ip()) {
        let limited = Login {
            limited: true,
            ..Login::default()
        };
        let mut response = page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            limited,
            Some(&expected),
        )?;
        let (name, value) = retry_after(wait);
        response.headers_mut().insert(name, value);
        return Ok(response);
    }
    let Some(session) = state.app.dashboard().login(&form.token, Utc::now()).await? else {
        let wrong = Login {
            wrong: true,
            ..Login::default()
        };
        return page(&state, StatusCode::UNAUTHORIZED, wrong, Some(&expected));
    };
    state.sign_in_limiter.give_back(peer.ip());
    let mut response = Redirect::to("/admin").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &session.cookie, false),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_COOKIE, "", true),
    );
    Ok(response)
}

pub async fn logout(
    State(state): State<WebState>,
    session: Session,
    CsrfForm(()): CsrfForm,
) -> Result<Response, PageError> {
    state.app.dashboard().logout(&session.cookie).await?;
    let mut response = Redirect::to("/admin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", true),
    );
    Ok(response)
}
