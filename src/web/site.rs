//! The public site served from memory: each file is rendered and gzipped once per
//! change of the posts, and answered with ETag, Last-Modified and 304s.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sha2::{Digest, Sha256};

use super::WebState;
use crate::domain::hex;
use crate::error::Error;
use crate::links::{ATOM_PATH, JSON_PATH, RSS_PATH};
use crate::site::{Page, Site};

/// One file as served: both encodings and the validators, computed once.
#[derive(Debug)]
pub struct Served {
    content_type: HeaderValue,
    body: Bytes,
    gzip: Option<Bytes>,
    etag: String,
    last_modified: SystemTime,
}

impl Served {
    fn new(page: Page) -> Served {
        let digest = Sha256::digest(&page.body);
        let etag = format!("\"{}\"", hex(&digest[..12]));
        // Text compresses; images and other media are compressed already.
        let compressible = page.content_type.starts_with("text/")
            || ["xml", "json", "svg"]
                .iter()
                .any(|t| page.content_type.contains(t));
        let gzip = compressible.then(|| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Writing to a Vec cannot fail.
            let _ = gz.write_all(&page.body);
            Bytes::from(gz.finish().unwrap_or_default())
        });
        Served {
            content_type: HeaderValue::from_static(page.content_type),
            body: Bytes::from(page.body),
            gzip,
            etag,
            last_modified: page.last_modified.into(),
        }
    }
}

impl Served {
    /// A file served straight from disk, read per request: its validator comes from
    /// its size and modification time (as nginx's does), not from hashing it.
    fn file(content_type: &'static str, body: Vec<u8>, modified: SystemTime) -> Served {
        let nanos = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Served {
            content_type: HeaderValue::from_static(content_type),
            etag: format!("\"{:x}-{:x}\"", body.len(), nanos),
            body: Bytes::from(body),
            gzip: None,
            last_modified: modified,
        }
    }
}

struct Cached {
    version: String,
    files: HashMap<&'static str, Arc<Served>>,
    /// Post pages rendered so far in this version.
    posts: Mutex<HashMap<String, Arc<Served>>>,
}

/// The current version of the site, rebuilt only when the posts change.
pub struct SiteCache {
    site: Site,
    current: RwLock<Arc<Cached>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl SiteCache {
    pub async fn new(site: Site) -> Result<SiteCache, Error> {
        let cached = build(&site).await?;
        Ok(SiteCache {
            site,
            current: RwLock::new(Arc::new(cached)),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    fn current(&self) -> Arc<Cached> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds if the posts changed (or one reached its publication time).
    /// Returns whether anything changed. Cheap when nothing did: one query.
    pub async fn refresh(&self) -> Result<bool, Error> {
        let _one_at_a_time = self.refreshing.lock().await;
        let version = self.site.version(Utc::now()).await?;
        if self.current().version == version {
            return Ok(false);
        }
        let cached = build(&self.site).await?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cached);
        Ok(true)
    }

    fn file(&self, path: &str) -> Option<Arc<Served>> {
        self.current().files.get(path).cloned()
    }

    async fn post(&self, slug: &str) -> Result<Option<Arc<Served>>, Error> {
        let cached = self.current();
        if let Some(hit) = cached
            .posts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
        {
            return Ok(Some(hit.clone()));
        }
        let Some(post) = self.site.published(slug, Utc::now()).await? else {
            return Ok(None);
        };
        let served = Arc::new(Served::new(self.site.post_page(&post)?));
        cached
            .posts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slug.to_string(), served.clone());
        Ok(Some(served))
    }
}

async fn build(site: &Site) -> Result<Cached, Error> {
    let snapshot = site.snapshot(Utc::now()).await?;
    let mut files = HashMap::new();
    for page in snapshot.pages {
        let key = match page.path.as_str() {
            RSS_PATH => RSS_PATH,
            ATOM_PATH => ATOM_PATH,
            JSON_PATH => JSON_PATH,
            _ => "index.html",
        };
        files.insert(key, Arc::new(Served::new(page)));
    }
    Ok(Cached {
        version: snapshot.version,
        files,
        posts: Mutex::new(HashMap::new()),
    })
}

pub async fn index(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve_file(&state, "index.html", &headers)
}

pub async fn rss(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve_feed(&state, RSS_PATH, &headers)
}

pub async fn atom(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve_feed(&state, ATOM_PATH, &headers)
}

pub async fn json_feed(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve_feed(&state, JSON_PATH, &headers)
}

/// A feed, and the readers its fetcher says it has, if it says.
fn serve_feed(state: &WebState, feed: &str, headers: &HeaderMap) -> Response {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    state.app.analytics().feed_fetched(feed, agent, Utc::now());
    serve_file(state, feed, headers)
}

pub async fn post(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.site.post(&slug).await {
        Ok(Some(served)) => {
            let visit = super::visit(&method, &headers, peer);
            state.app.analytics().viewed(&slug, &visit);
            respond(&served, &headers)
        }
        Ok(None) => not_found().await,
        Err(e) => {
            tracing::error!(error = %crate::error::chain(&e), slug, "rendering a post page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not render this page",
            )
                .into_response()
        }
    }
}

/// `GET /posts/{slug}/{*path}`: a file of the post's assets folder (its images).
pub async fn asset(
    State(state): State<WebState>,
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    Path((slug, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if path == "index.html" {
        return post(State(state), peer, method, Path(slug), headers).await;
    }
    // Only plain names: no `..`, no absolute paths, nothing hidden.
    let parts: Vec<&str> = path.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.starts_with('.') || p.contains('\\'))
    {
        return not_found().await;
    }
    let found = async {
        let site = &state.site.site;
        let post = site.published(&slug, Utc::now()).await.ok()??;
        let dir = site.assets_dir(&post)?;
        let file = parts.iter().fold(dir.clone(), |p, part| p.join(part));
        if !crate::posts::is_asset(&file) {
            return None;
        }
        let bytes = tokio::fs::read(&file).await.ok()?;
        let modified = tokio::fs::metadata(&file).await.ok()?.modified().ok()?;
        Some(Served::file(
            crate::posts::asset_type(&file),
            bytes,
            modified,
        ))
    }
    .await;
    match found {
        Some(served) => respond(&served, &headers),
        None => not_found().await,
    }
}

pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html><meta charset=\"utf-8\"><title>404</title><p>Not found. <a href=\"/\">Home</a></p>",
    )
        .into_response()
}

fn serve_file(state: &WebState, path: &str, headers: &HeaderMap) -> Response {
    match state.site.file(path) {
        Some(served) => respond(&served, headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// 200 or 304 with validators; gzip when the client takes it.
fn respond(served: &Served, request: &HeaderMap) -> Response {
    let gzip = served.gzip.as_ref().filter(|_| accepts_gzip(request));
    let etag = if gzip.is_some() {
        format!("{}-gz\"", served.etag.trim_end_matches('"'))
    } else {
        served.etag.clone()
    };
    let last_modified = httpdate::fmt_http_date(served.last_modified);
    // If-None-Match wins over If-Modified-Since when both are sent (RFC 9110 §13.2.2).
    let not_modified = match request.get(header::IF_NONE_MATCH) {
        Some(value) => etag_matches(value, &served.etag),
        None => request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| truncate_to_seconds(served.last_modified) <= since),
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else if let Some(gzip) = gzip {
        let mut r = gzip.clone().into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        served.body.clone().into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, served.content_type.clone());
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

/// `If-None-Match: "a", W/"b"` or `*`; weak comparison, either encoding's tag.
fn etag_matches(value: &HeaderValue, etag: &str) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let bare = etag.trim_matches('"');
    value.split(',').map(str::trim).any(|candidate| {
        let candidate = candidate.trim_start_matches("W/").trim_matches('"');
        candidate == "*" || candidate == bare || candidate.strip_suffix("-gz") == Some(bare)
    })
}

fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                matches!(
                    p.replace(' ', "").as_str(),
                    "q=0" | "q=0.0" | "q=0.00" | "q=0.000"
                )
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// HTTP dates have whole seconds; compare at that precision.
fn truncate_to_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_weakly_and_across_encodings() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(etag_matches(&v("\"abc\""), "\"abc\""));
        assert!(etag_matches(&v("W/\"abc\""), "\"abc\""));
        assert!(etag_matches(&v("\"x\", \"abc-gz\""), "\"abc\""));
        assert!(etag_matches(&v("*"), "\"abc\""));
        assert!(!etag_matches(&v("\"abd\""), "\"abc\""));
    }

    #[test]
    fn gzip_is_used_only_when_accepted() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
    }
}
