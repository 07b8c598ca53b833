//! `GET /c/{token}` (a counted link) and `GET /o/{token}` (the open pixel).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{visit, WebState};

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /c/{token}`: 302 to the link the token names, or 404. Never a
/// redirect anywhere else: the link comes out of the token's MAC.
pub async fn click(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    // The request itself, not its headers copied out: this is the hot path.
    let visit = visit(request.method(), request.headers(), peer);
    let Some(url) = state.app.analytics().click(&token, &visit) else {
        return super::site::not_found().await;
    };
    match HeaderValue::from_str(&url) {
        Ok(location) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => super::site::not_found().await,
    }
}

/// `GET /o/{token}`: the pixel, or 404.
pub async fn open(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visit = visit(request.method(), request.headers(), peer);
    if !state.app.analytics().open(&token, &visit) {
        return super::site::not_found().await;
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        PIXEL,
    )
        .into_response()
}
