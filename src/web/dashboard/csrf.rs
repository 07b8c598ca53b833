//! The CSRF token every change carries: in the form for forms, in the query
//! string for the CSV upload (a multipart body is read by its handler).

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::session::{forbidden, Session};
use crate::web::WebState;

/// A form whose `csrf` field is the session's token, and its other fields.
pub struct CsrfForm<T = ()>(pub T);

#[derive(Deserialize)]
struct Fields<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<WebState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let session = Session::of(&parts).map_err(IntoResponse::into_response)?;
        let Form(fields) = Form::<Fields<T>>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !session.allows(&fields.csrf) {
            return Err(forbidden());
        }
        Ok(CsrfForm(fields.form))
    }
}

/// Proof that the query string's `csrf` is the session's token.
pub struct CsrfQuery;

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

impl FromRequestParts<WebState> for CsrfQuery {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let session = Session::of(parts).map_err(IntoResponse::into_response)?;
        let Query(token) = Query::<Token>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !session.allows(&token.csrf) {
            return Err(forbidden());
        }
        Ok(CsrfQuery)
    }
}
