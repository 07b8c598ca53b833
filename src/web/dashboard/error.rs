//! The dashboard's failures: handlers return [`PageError`] with `?`, and the
//! layer [`render`] draws it with the `admin-error.html` template.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::Error;
use crate::web::{error_status, WebState};

/// A dashboard request that failed, answered with the status its error calls for.
#[derive(Debug)]
pub struct PageError(Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError(e)
    }
}

/// What the error page says, left on the response for [`render`]: drawing it
/// takes the site's templates, which an `IntoResponse` cannot reach.
#[derive(Clone, Serialize)]
struct Failure {
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let failure = Failure {
            message: self.0.to_string(),
        };
        // Plain text until the layer draws the page (and if drawing it fails).
        let mut response = (error_status(&self.0), failure.message.clone()).into_response();
        response.extensions_mut().insert(failure);
        response
    }
}

/// The layer that draws the error page of a failed dashboard request.
pub async fn render(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let Some(failure) = response.extensions_mut().remove::<Failure>() else {
        return response;
    };
    let page = serde_json::to_value(&failure)
        .map_err(|e| Error::Internal(format!("the error page: {e}")))
        .and_then(|data| state.app.templates().admin_page("admin-error.html", data));
    match page {
        Ok(html) => {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            *response.body_mut() = html.into();
        }
        Err(e) => tracing::error!(error = %crate::error::chain(&e), "rendering the error page"),
    }
    response
}
