//! A signed-in author: the session cookie, the CSRF token it carries, and the
//! rules of the cookies themselves.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::PageError;
use crate::domain::constant_time_eq;
use crate::error::Error;
use crate::web::WebState;

/// The session cookie, and the login form's own CSRF cookie.
pub const SESSION_COOKIE: &str = "posthorn_admin";
pub const LOGIN_COOKIE: &str = "posthorn_login";

/// A signed-in request: its cookie and the session's CSRF token. The session
/// layer ([`super::sign_in::gate`]) finds it; handlers take it as an argument.
#[derive(Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    /// The form's CSRF token is the session's.
    pub fn allows(&self, given: &str) -> bool {
        constant_time_eq(given.as_bytes(), self.csrf.as_bytes())
    }

    /// The session the layer found for this request.
    pub fn of(parts: &Parts) -> Result<Session, PageError> {
        parts.extensions.get::<Session>().cloned().ok_or_else(|| {
            Error::Internal("a dashboard route outside the session layer".into()).into()
        })
    }
}

impl FromRequestParts<WebState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &WebState) -> Result<Self, PageError> {
        Session::of(parts)
    }
}

pub fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "forbidden: missing or wrong CSRF token, or no session",
    )
        .into_response()
}

/// A cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `Origin`, when the browser sends it, names this host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// A dashboard cookie (`clear` ends it).
pub fn set_cookie(state: &WebState, name: &str, value: &str, clear: bool) -> HeaderValue {
    let secure = if state.app.links().home().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let age = if clear { "; Max-Age=0" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/admin; HttpOnly; SameSite=Strict{secure}{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}
