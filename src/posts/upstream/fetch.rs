//! One conditional GET of a feed, following redirects one request at a time and
//! reading at most [`MAX_FEED_BYTES`].

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use super::redirect::redirect_addresses;

/// Largest feed body we read.
pub const MAX_FEED_BYTES: usize = 10 * 1024 * 1024;

/// How many redirects one fetch follows.
const MAX_REDIRECTS: usize = 5;

/// What a conditional GET returned.
#[derive(Debug)]
pub enum Fetch {
    NotModified,
    Body(Fetched),
}

/// A feed's body and what the answer said about it.
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// The `charset` of the `Content-Type`, if it named one.
    pub charset: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Where the feed now lives, if it moved permanently (301/308).
    pub moved_to: Option<Url>,
}

/// Fetches `url`, sending the validators of the last good fetch. `chosen` is
/// the author's choice and may be any address; `url` is where the feed now
/// lives (`chosen`, or where a permanent redirect moved it). A redirect, and a
/// remembered one on every fetch, is followed only where
/// [`redirect_addresses`] allows. `timeout` bounds the whole fetch, redirects
/// and body included.
pub async fn fetch(
    chosen: &Url,
    url: &Url,
    etag: Option<&str>,
    last_modified: Option<&str>,
    timeout: Duration,
    user_agent: &str,
) -> Result<Fetch, String> {
    tokio::time::timeout(
        timeout,
        follow(chosen, url, etag, last_modified, user_agent),
    )
    .await
    .unwrap_or_else(|_| Err("timed out".into()))
}

/// The requests of one fetch: redirects are followed here, one request each, so
/// that every target is checked before anything is sent to it.
async fn follow(
    chosen: &Url,
    url: &Url,
    etag: Option<&str>,
    last_modified: Option<&str>,
    user_agent: &str,
) -> Result<Fetch, String> {
    let mut target = url.clone();
    // A host name's checked addresses, so that connecting cannot look it up
    // again. A remembered move is checked as the redirect it was, each time:
    // its host's addresses may have changed since.
    let mut pinned: Option<(String, Vec<SocketAddr>)> = if url == chosen {
        None
    } else {
        redirect_addresses(chosen, None, url).await?
    };
    // Where the first answer came from: a redirect within its origin stays there.
    let mut first_server = None;
    let mut moved_to = None;
    for hop in 0..=MAX_REDIRECTS {
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent);
        if let Some((host, addresses)) = &pinned {
            client = client.resolve_to_addrs(host, addresses);
        }
        let client = client.build().map_err(|e| format!("HTTP client: {e}"))?;
        let mut request = client.get(target.clone()).header(
            reqwest::header::ACCEPT,
            "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5",
        );
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(since) = last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, since);
        }
        let response = request.send().await.map_err(|e| describe(&e))?;
        if hop == 0 {
            first_server = response.remote_addr();
        }
        let status = response.status().as_u16();
        if !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return read(response, moved_to).await;
        }
        if hop == MAX_REDIRECTS {
            break;
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("HTTP {} without a Location", response.status()))?;
        let next = target
            .join(location)
            .map_err(|e| format!("redirected to `{location}`, not a URL: {e}"))?;
        pinned = redirect_addresses(chosen, first_server, &next).await?;
        // Remember a permanent redirect of the first hop, to use the new address next time.
        if hop == 0 && matches!(status, 301 | 308) {
            moved_to = Some(next.clone());
        }
        target = next;
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

/// A final answer: 304, an error status, or the feed's body.
async fn read(mut response: reqwest::Response, moved_to: Option<Url>) -> Result<Fetch, String> {
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetch::NotModified);
    }
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header(reqwest::header::ETAG);
    let last_modified = header(reqwest::header::LAST_MODIFIED);
    let charset = header(reqwest::header::CONTENT_TYPE).and_then(|ct| {
        ct.split(';')
            .filter_map(|p| p.trim().strip_prefix("charset="))
            .next()
            .map(|c| c.trim_matches('"').to_string())
    });
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if bytes.len() + chunk.len() > MAX_FEED_BYTES {
            return Err(format!(
                "the feed is larger than {} MB",
                MAX_FEED_BYTES / 1024 / 1024
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Fetch::Body(Fetched {
        bytes,
        charset,
        etag,
        last_modified,
        moved_to,
    }))
}

/// A transport failure in words an author can act on.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}
