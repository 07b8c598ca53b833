//! Following an existing blog: fetch its RSS or Atom feed with a conditional GET,
//! and turn each entry into a post, keyed so that it is recognised forever.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use sha2::{Digest, Sha256};
use url::{Host, Url};

use super::html::sanitize;
use crate::domain::{hex, one_line, FeedEntry, Slug};
use crate::links::WebUrl;

/// Largest feed body we read.
pub const MAX_FEED_BYTES: usize = 10 * 1024 * 1024;

/// How many redirects one fetch follows.
const MAX_REDIRECTS: usize = 5;

/// What a conditional GET returned.
#[derive(Debug)]
pub enum Fetch {
    NotModified,
    Body {
        bytes: Vec<u8>,
        charset: Option<String>,
        etag: Option<String>,
        last_modified: Option<String>,
        /// Where the feed now lives, if it moved permanently (301/308).
        moved_to: Option<Url>,
    },
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
    Ok(Fetch::Body {
        bytes,
        charset,
        etag,
        last_modified,
        moved_to,
    })
}

/// Whether a redirect may take the fetch from `start` to `to`, and the addresses
/// to connect to if `to` names its host. A feed cannot send posthorn to the
/// author's own machine or network: a redirect may stay on the origin of the
/// URL the author chose (on the server that answered it, `first_server`), or go
/// to an http(s) host whose every address is public. Checked before anything
/// is sent there.
async fn redirect_addresses(
    start: &Url,
    first_server: Option<SocketAddr>,
    to: &Url,
) -> Result<Option<(String, Vec<SocketAddr>)>, String> {
    if !matches!(to.scheme(), "http" | "https") {
        return Err(format!("refused a redirect to {to}: not http or https"));
    }
    if to.origin() == start.origin() {
        return Ok(match (to.host(), first_server) {
            (Some(Host::Domain(name)), Some(server)) => Some((name.to_string(), vec![server])),
            _ => None,
        });
    }
    let refuse = |ip: IpAddr| match non_public(ip) {
        Some(kind) => Err(format!(
            "refused a redirect to {to}: {ip} is a {kind} address"
        )),
        None => Ok(()),
    };
    match to.host() {
        Some(Host::Ipv4(ip)) => refuse(ip.into()).map(|()| None),
        Some(Host::Ipv6(ip)) => refuse(ip.into()).map(|()| None),
        Some(Host::Domain(name)) => {
            let port = to.port_or_known_default().unwrap_or(80);
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("redirected to {to}: {name} does not resolve ({e})"))?
                .collect();
            if addresses.is_empty() {
                return Err(format!("redirected to {to}: {name} has no address"));
            }
            for address in &addresses {
                refuse(address.ip())?;
            }
            Ok(Some((name.to_string(), addresses)))
        }
        None => Err(format!("refused a redirect to {to}: no host")),
    }
}

/// What kind of address `ip` is if it is not on the public internet: loopback,
/// private (RFC 1918, unique local), link-local, unspecified, or shared (CGNAT).
/// IPv6 forms that carry an IPv4 address are judged by that address.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, _, _] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if a == 0 {
                Some("unspecified")
            } else if a == 100 && b & 0xc0 == 64 {
                Some("shared (CGNAT)")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if let Some(v4) = v6.to_ipv4() {
                // ::a.b.c.d and ::ffff:a.b.c.d
                non_public(v4.into())
            } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64: the last 32 bits are the IPv4 address reached.
                let [.., hi, lo] = s;
                non_public(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)).into())
            } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
                Some("private")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

/// The feed as UTF-8 text, whatever it was sent in: the HTTP charset wins, then the
/// XML declaration's `encoding` (EUC-KR is still common on Korean blogs).
pub fn decode(bytes: &[u8], http_charset: Option<&str>) -> Result<String, String> {
    let declared = || {
        let range = declared_encoding(bytes)?;
        std::str::from_utf8(bytes.get(range)?).ok()
    };
    let label = http_charset.or_else(declared);
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.trim().as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let (text, _, malformed) = encoding.decode(bytes);
    if malformed && encoding == encoding_rs::UTF_8 {
        return Err("the feed is not valid UTF-8 and declares no other encoding".into());
    }
    let text = text.into_owned();
    // The text is UTF-8 now: its declaration says so, or the XML parser would
    // decode it again.
    match declared_encoding(text.as_bytes()) {
        Some(range)
            if !text
                .get(range.clone())
                .is_some_and(|e| e.eq_ignore_ascii_case("utf-8")) =>
        {
            match (text.get(..range.start), text.get(range.end..)) {
                (Some(head), Some(tail)) => Ok(format!("{head}UTF-8{tail}")),
                _ => Ok(text),
            }
        }
        _ => Ok(text),
    }
}

/// Where the XML declaration at the very start of `bytes` names its encoding:
/// the byte range of the name. Only the declaration is read (`<?xml … ?>`, after
/// a UTF-8 byte order mark if there is one), byte by byte.
fn declared_encoding(bytes: &[u8]) -> Option<Range<usize>> {
    let start = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let after = start + b"<?xml".len();
    if !bytes.get(start..)?.starts_with(b"<?xml") {
        return None;
    }
    let end = after + memchr::memmem::find(bytes.get(after..)?, b"?>")?;
    let declaration = bytes.get(..end)?;
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    // `encoding` as a pseudo-attribute: after white space, then `=`, then a quote.
    let mut from = after;
    let name_at = loop {
        let at = from + memchr::memmem::find(declaration.get(from..)?, b"encoding")?;
        from = at + b"encoding".len();
        if declaration.get(at - 1).is_some_and(space) {
            break from;
        }
    };
    let mut i = name_at;
    let skip_space = |mut i: usize| {
        while declaration.get(i).is_some_and(space) {
            i += 1;
        }
        i
    };
    i = skip_space(i);
    if declaration.get(i) != Some(&b'=') {
        return None;
    }
    i = skip_space(i + 1);
    let quote = *declaration.get(i).filter(|q| matches!(q, b'"' | b'\''))?;
    let value_start = i + 1;
    let len = declaration
        .get(value_start..)?
        .iter()
        .position(|&b| b == quote)?;
    let value = declaration.get(value_start..value_start + len)?;
    // EncName: [A-Za-z] ([A-Za-z0-9._] | '-')*
    let well_formed = value.first().is_some_and(u8::is_ascii_alphabetic)
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    well_formed.then_some(value_start..value_start + len)
}

/// Marks an entry with no guid/id, so that our own fallback chain applies.
const NO_ID: &str = "\u{0}posthorn:no-id";

/// Parses RSS 0.9x/1.0/2.0 or Atom into entries, newest first as in the feed.
pub fn parse(text: &str, feed_url: &Url) -> Result<Vec<FeedEntry>, String> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        .id_generator(|_, _, _| NO_ID.to_string())
        .build();
    let feed = parser
        .parse(text.as_bytes())
        .map_err(|e| format!("not a valid feed: {e}"))?;
    let feed_base = WebUrl::try_from(feed_url.clone()).ok();
    let mut entries = Vec::with_capacity(feed.entries.len());
    for entry in feed.entries {
        let link = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .or_else(|| entry.links.first())
            .and_then(|l| feed_url.join(l.href.trim()).ok())
            // Where the post is read: a web page, never a script or a data URL.
            .and_then(|url| WebUrl::try_from(url).ok());
        let title = entry
            .title
            .as_ref()
            .map(|t| {
                if t.content_type.essence().to_string() == "text/html" {
                    html_text(&t.content)
                } else {
                    one_line(&t.content)
                }
            })
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "(untitled)".into());
        // Someone else's clock: a date before 1970 or more than a day ahead is
        // no date at all (a year 9999 would schedule the post forever, and
        // leave the range some formats can write).
        let latest = Utc::now() + chrono::Duration::days(1);
        let plausible = |d: &DateTime<Utc>| d.year() >= 1970 && *d <= latest;
        let entry_published = entry.published.filter(plausible);
        let entry_updated = entry.updated.filter(plausible);
        let published = entry_published.or(entry_updated);
        let key = if entry.id != NO_ID && !entry.id.trim().is_empty() {
            entry.id.trim().to_string()
        } else if let Some(link) = &link {
            link.to_string()
        } else {
            let mut h = Sha256::new();
            h.update(title.as_bytes());
            h.update(published.map(|d| d.to_rfc3339()).unwrap_or_default());
            format!("sha256:{}", hex(&h.finalize()))
        };
        // Full content when the feed has it (content:encoded, Atom content), else the description.
        let raw = entry
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .or_else(|| entry.summary.as_ref().map(|s| s.content.clone()))
            .unwrap_or_default();
        // Relative URLs in the entry are relative to its page, else to the feed.
        let content_html = sanitize(&raw, link.as_ref().or(feed_base.as_ref()));
        let summary = entry
            .summary
            .as_ref()
            .map(|s| html_text(&s.content))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| html_text(&content_html));
        let summary = super::markdown::cut_at_sentence(&summary, super::markdown::SUMMARY_CHARS);
        let tags: Vec<String> = entry
            .categories
            .iter()
            .map(|c| one_line(c.label.as_deref().unwrap_or(&c.term)))
            .filter(|t| !t.is_empty())
            .collect();
        let slug = link
            .as_ref()
            .and_then(|l| {
                l.as_url()
                    .path_segments()?
                    .rfind(|s| !s.is_empty())
                    .map(str::to_string)
            })
            .map(|s| {
                percent_encoding::percent_decode_str(&s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .map(|s| {
                s.trim_end_matches(".html")
                    .trim_end_matches(".htm")
                    .to_string()
            })
            .and_then(|s| Slug::from_file_stem(&s).ok())
            .filter(|s| !s.as_str().chars().all(|c| c.is_ascii_digit()) || s.as_str().len() > 3)
            .or_else(|| Slug::from_file_stem(&title).ok())
            .or_else(|| Slug::parse(&format!("entry-{}", &key_hash(&key)[..12])).ok())
            .ok_or_else(|| "no slug for an entry".to_string())?;
        let mut hash = Sha256::new();
        for part in [&title, &summary, &content_html, &tags.join("\u{1f}")] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update(published.map(|d| d.to_rfc3339()).unwrap_or_default());
        entries.push(FeedEntry {
            key,
            link: link.map(|l| l.to_string()),
            slug,
            title,
            published: published.unwrap_or_else(Utc::now),
            updated: entry_updated.filter(|u| Some(*u) != entry_published),
            summary,
            content_html,
            tags,
            content_hash: hex(&hash.finalize()),
        });
    }
    Ok(entries)
}

fn key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// The text of an HTML fragment, on one line, without markup or decoration.
fn html_text(html: &str) -> String {
    let text = html2text::config::plain_no_decorate()
        .string_from_read(html.as_bytes(), 100_000)
        .unwrap_or_default();
    one_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euc_kr_feeds_are_decoded() {
        let (bytes, _, _) = encoding_rs::EUC_KR.encode("<?xml version=\"1.0\" encoding=\"euc-kr\"?><rss><channel><title>한글</title></channel></rss>");
        let text = decode(&bytes, None).unwrap();
        assert!(text.contains("<title>한글</title>"));
        assert!(text.contains("encoding=\"UTF-8\""));
        assert!(decode(&[0xff, 0xfe, 0x41], None).is_err());
    }

    #[test]
    fn scripts_and_handlers_are_removed() {
        let clean = sanitize(
            r#"<p onclick="x()">글<script>alert(1)</script><iframe src="https://evil.example/"></iframe><img src="a.png" onerror="x()"></p>"#,
            WebUrl::parse("https://blog.example.com/").ok().as_ref(),
        );
        assert!(
            !clean.contains("script")
                && !clean.contains("onclick")
                && !clean.contains("onerror")
                && !clean.contains("iframe"),
            "{clean}"
        );
        assert!(
            clean.contains("글") && clean.contains("<img src=\"https://blog.example.com/a.png\">"),
            "{clean}"
        );
    }

    #[test]
    fn an_entry_linking_to_a_script_is_read_on_no_page_and_resolves_against_the_feed() {
        let feed_url = Url::parse("https://blog.example.com/feed.xml").unwrap();
        let rss = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>a</title><link>javascript:alert(document.domain)</link><guid>1</guid>
<description><![CDATA[<a href="next.html">next</a><img src="pics/a.png">]]></description></item>
<item><title>b</title><link> JaVaScRiPt:alert(1)//x/post</link><guid>2</guid><description>b</description></item>
<item><title>c</title><link>data:text/html,x</link><guid>3</guid><description>c</description></item>
</channel></rss>"#;
        let entries = parse(rss, &feed_url).unwrap();
        assert_eq!(entries.len(), 3);
        for entry in &entries {
            assert_eq!(entry.link, None, "{entry:?}");
            assert!(
                !entry.content_html.to_lowercase().contains("script:"),
                "{entry:?}"
            );
        }
        assert_eq!(
            entries[0].content_html,
            "<a href=\"https://blog.example.com/next.html\" rel=\"noopener noreferrer\">next</a><img src=\"https://blog.example.com/pics/a.png\">"
        );
        assert_eq!(entries[1].slug.as_str(), "b", "no slug from a script URL");
    }

    #[test]
    fn a_multibyte_character_after_the_declaration_is_not_cut() {
        let bytes = "<?xml version=\"1.0\"?><!-- encoding=éx --><rss/>".as_bytes();
        assert_eq!(
            decode(bytes, None).unwrap(),
            "<?xml version=\"1.0\"?><!-- encoding=éx --><rss/>"
        );
        // Only the declaration names the encoding, in quotes.
        let (bytes, _, _) = encoding_rs::EUC_KR.encode(
            "<?xml version='1.0' encoding = 'EUC-KR' standalone='yes'?><t>한글</t><!-- encoding=\"x\" -->",
        );
        assert_eq!(
            decode(&bytes, None).unwrap(),
            "<?xml version='1.0' encoding = 'UTF-8' standalone='yes'?><t>한글</t><!-- encoding=\"x\" -->"
        );
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(
            head in proptest::sample::select(vec![
                "",
                "<?xml",
                "<?xml version=\"1.0\" encoding=\"",
                "<?xml encoding='",
                "\u{feff}<?xml version=\"1.0\" encoding=",
                "<?xml version=\"1.0\"?><!-- encoding=",
            ]),
            bytes in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..300),
            charset in proptest::option::of("[a-zA-Z0-9_ -]{0,12}"),
        ) {
            let mut all = head.as_bytes().to_vec();
            all.extend_from_slice(&bytes);
            let _ = decode(&all, charset.as_deref());
            let _ = decode(&bytes, None);
        }
    }
}
