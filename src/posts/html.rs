//! HTML clean-up shared by local and upstream posts. Every URL attribute goes
//! through [`link_url`]: made absolute (feed readers and mail clients have no base
//! URL, so a relative link there is a broken link) and dropped unless its scheme
//! is one of [`LINK_SCHEMES`].

use std::borrow::Cow;

use lol_html::{element, rewrite_str, RewriteStrSettings};

use crate::links::{link_url, WebUrl, LINK_SCHEMES};

/// Attributes whose value is one URL a browser follows or loads.
const URL_ATTRIBUTES: [&str; 7] = [
    "href",
    "src",
    "poster",
    "cite",
    "action",
    "formaction",
    "xlink:href",
];

/// Someone else's HTML (a followed blog's entry): no scripts, no event handlers,
/// no iframes, no styles that could hide or restyle the page; links open normally
/// and carry `noopener`. Relative URLs are resolved against `base` in the same
/// pass, so nothing is joined after the check; without a base they are dropped.
pub fn sanitize(html: &str, base: Option<&WebUrl>) -> String {
    let filter_base = base.cloned();
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer"))
        .url_schemes(LINK_SCHEMES.into_iter().collect())
        .url_relative(match base {
            Some(base) => ammonia::UrlRelative::RewriteWithBase(base.as_url().clone()),
            None => ammonia::UrlRelative::Deny,
        })
        // ammonia checks the attributes it knows to be URLs with the same schemes;
        // the filter applies the rule to the others (`cite`) as well, and writes
        // every URL it keeps as the URL parser does.
        .attribute_filter(move |element, attribute, value| {
            url_attribute(element, attribute, value, filter_base.as_ref())
        })
        .clean(html)
        .to_string()
}

/// The author's own HTML (rendered Markdown, raw HTML included) with every URL
/// attribute (`href`, `src`, `srcset`, `poster`, …) made absolute against `base`,
/// the post's own page, and any that is not http, https or mailto removed.
pub fn absolutize_urls(html: &str, base: &WebUrl) -> Result<String, String> {
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![element!("*", |el| {
                let tag = el.tag_name();
                let mut found: Vec<(String, String, usize)> = Vec::new();
                for a in el.attributes() {
                    let name = a.name();
                    if !is_url_attribute(&tag, &name) {
                        continue;
                    }
                    match found.iter_mut().find(|(n, _, _)| *n == name) {
                        Some((_, _, count)) => *count += 1,
                        None => found.push((name, a.value(), 1)),
                    }
                }
                for (name, raw, count) in found {
                    // A browser reads the first of repeated attributes; other
                    // parsers may not, so only that one is kept.
                    if count > 1 {
                        el.remove_attribute(&name);
                    }
                    // The rewriter hands attributes over as written: decide on what a
                    // browser reads, and write back exactly what was decided.
                    let value = decode_references(&raw);
                    match url_attribute(&tag, &name, &value, Some(base)) {
                        Some(kept) => el.set_attribute(&name, &kept.replace('&', "&amp;"))?,
                        None => el.remove_attribute(&name),
                    }
                }
                Ok(())
            })],
            ..RewriteStrSettings::new()
        },
    )
    .map_err(|e| e.to_string())
}

/// `html` with the `href` of every link (`<a>`, `<area>`) that is an http or
/// https URL replaced by what `rewrite` makes of it; `mailto:` and anything
/// `rewrite` declines (`None`) stay as they are. For the counted links of an
/// email: the same HTML is kept as it was for the feeds and the archive.
pub fn rewrite_links(
    html: &str,
    rewrite: impl Fn(&url::Url) -> Option<String>,
) -> Result<String, String> {
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![element!("a[href], area[href]", |el| {
                let Some(raw) = el.get_attribute("href") else {
                    return Ok(());
                };
                let value = decode_references(&raw);
                let Ok(url) = url::Url::parse(value.trim()) else {
                    return Ok(());
                };
                if !matches!(url.scheme(), "http" | "https") {
                    return Ok(());
                }
                if let Some(new) = rewrite(&url) {
                    el.set_attribute("href", &new.replace('&', "&amp;"))?;
                }
                Ok(())
            })],
            ..RewriteStrSettings::new()
        },
    )
    .map_err(|e| e.to_string())
}

fn is_url_attribute(element: &str, attribute: &str) -> bool {
    URL_ATTRIBUTES.contains(&attribute)
        || attribute == "srcset"
        || (element == "object" && attribute == "data")
}

/// An attribute as it may be written: a URL through the links rule, a `srcset`
/// candidate by candidate, anything else as it is. `None` drops the attribute.
fn url_attribute<'v>(
    element: &str,
    attribute: &str,
    value: &'v str,
    base: Option<&WebUrl>,
) -> Option<Cow<'v, str>> {
    if attribute == "srcset" {
        srcset(value, base).map(Cow::Owned)
    } else if is_url_attribute(element, attribute) {
        link_url(value, base).map(|url| Cow::Owned(url.into()))
    } else {
        Some(Cow::Borrowed(value))
    }
}

/// `a.png 1x, b.png 2x` → each candidate's URL through the links rule,
/// descriptors kept; `None` when no candidate is left.
fn srcset(srcset: &str, base: Option<&WebUrl>) -> Option<String> {
    let candidates: Vec<String> = srcset
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .filter_map(|candidate| {
            let (url, descriptor) = candidate
                .split_once(char::is_whitespace)
                .unwrap_or((candidate, ""));
            let url = String::from(link_url(url, base)?);
            Some(match descriptor.trim() {
                "" => url,
                descriptor => format!("{url} {descriptor}"),
            })
        })
        .collect();
    (!candidates.is_empty()).then(|| candidates.join(", "))
}

/// An attribute value with its character references decoded: numeric ones, and
/// the named ones URLs use or that could spell a scheme. Any other named
/// reference stays as text, which is safe: the value is escaped again when
/// written, so a browser reads what was checked.
fn decode_references(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match reference(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character a reference at the start of `text` (which starts with `&`)
/// stands for, and the reference's length in bytes.
fn reference(text: &str) -> Option<(char, usize)> {
    const NAMED: [(&str, char); 8] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&apos;", '\''),
        ("&colon;", ':'),
        ("&Tab;", '\t'),
        ("&NewLine;", '\n'),
    ];
    if let Some((name, c)) = NAMED.iter().find(|(name, _)| text.starts_with(name)) {
        return Some((*c, name.len()));
    }
    let number = text.strip_prefix("&#")?;
    let (radix, digits_from) = match number.as_bytes().first() {
        Some(b'x' | b'X') => (16, 1),
        _ => (10, 0),
    };
    let digits = number[digits_from..]
        .bytes()
        .take_while(|b| b.is_ascii_hexdigit() && (radix == 16 || b.is_ascii_digit()))
        .count();
    if digits == 0 {
        return None;
    }
    let end = digits_from + digits;
    // As browsers do: too large, zero or a surrogate reads as U+FFFD.
    let c = u32::from_str_radix(&number[digits_from..end], radix)
        .ok()
        .filter(|&n| n != 0)
        .and_then(char::from_u32)
        .unwrap_or(char::REPLACEMENT_CHARACTER);
    let semicolon = usize::from(number[end..].starts_with(';'));
    Some((c, 2 + end + semicolon))
}

/// The http(s) URLs of the images an imported post shows (`<img src>`), each
/// once, in the order they appear. `html` is sanitized: its URLs are absolute.
pub fn image_urls(html: &str) -> Result<Vec<url::Url>, String> {
    let mut urls = Vec::new();
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![element!("img[src]", |el| {
                let raw = el.get_attribute("src").unwrap_or_default();
                if let Ok(url) = url::Url::parse(decode_references(&raw).trim()) {
                    if matches!(url.scheme(), "http" | "https") && !urls.contains(&url) {
                        urls.push(url);
                    }
                }
                Ok(())
            })],
            ..RewriteStrSettings::new()
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(urls)
}

/// An imported post's sanitized HTML made ready for Markdown: each image's
/// `src` that `local` names becomes that file (in the post's bundle), and the
/// attributes Markdown cannot say and the old site needed (`srcset`, `sizes`,
/// `class`, `width`, `loading`, a link's `rel`…) come off, so that images and
/// links convert to Markdown instead of staying HTML.
pub fn for_markdown(
    html: &str,
    local: &impl Fn(&url::Url) -> Option<String>,
) -> Result<String, String> {
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![
                element!("img", |el| {
                    keep_only(el, &["src", "alt", "title"]);
                    let raw = el.get_attribute("src").unwrap_or_default();
                    if let Ok(url) = url::Url::parse(decode_references(&raw).trim()) {
                        if let Some(file) = local(&url) {
                            el.set_attribute("src", &file)?;
                        }
                    }
                    Ok(())
                }),
                element!("a", |el| {
                    keep_only(el, &["href", "title"]);
                    Ok(())
                }),
            ],
            ..RewriteStrSettings::new()
        },
    )
    .map_err(|e| e.to_string())
}

/// Removes every attribute of `el` but those `kept`.
fn keep_only(el: &mut lol_html::html_content::Element, kept: &[&str]) {
    let names: Vec<String> = el.attributes().iter().map(|a| a.name()).collect();
    for name in names.iter().filter(|n| !kept.contains(&n.as_str())) {
        el.remove_attribute(name);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn base() -> WebUrl {
        WebUrl::parse("https://essays.example.com/posts/walk/").unwrap()
    }

    #[test]
    fn every_kind_of_relative_url_becomes_absolute() {
        let html = r##"<a href="../other/">o</a><a href="#fn1">1</a><img src="img/a.png" srcset="a.png 1x, /b.png 2x"><a href="mailto:x@y.z">m</a><a href="https://elsewhere.org/x?a=1&amp;b=2">e</a>"##;
        let out = absolutize_urls(html, &base()).unwrap();
        assert!(
            out.contains(r#"href="https://essays.example.com/posts/other/""#),
            "{out}"
        );
        assert!(
            out.contains(r#"href="https://essays.example.com/posts/walk/#fn1""#),
            "{out}"
        );
        assert!(
            out.contains(r#"src="https://essays.example.com/posts/walk/img/a.png""#),
            "{out}"
        );
        assert!(out.contains(r#"srcset="https://essays.example.com/posts/walk/a.png 1x, https://essays.example.com/b.png 2x""#), "{out}");
        assert!(out.contains(r#"href="mailto:x@y.z""#));
        assert!(
            out.contains(r#"href="https://elsewhere.org/x?a=1&amp;b=2""#),
            "{out}"
        );
    }

    #[test]
    fn script_urls_are_removed_from_the_authors_html_too() {
        let html = r#"<a href="javascript:alert(1)">a</a><a href=" JaVa&#x09;ScRiPt&colon;alert(1)">b</a><img src="data:image/svg+xml,x" srcset="javascript:x 1x, ok.png 2x"><a href="&#106;avascript:alert(1)">c</a>"#;
        let out = absolutize_urls(html, &base()).unwrap();
        assert_eq!(
            out,
            r#"<a>a</a><a>b</a><img srcset="https://essays.example.com/posts/walk/ok.png 2x"><a>c</a>"#
        );
    }

    #[test]
    fn relative_urls_in_a_feed_entry_resolve_against_its_page_before_the_check() {
        let entry = WebUrl::parse("https://blog.example.com/2026/walk.html").unwrap();
        let out = sanitize(
            r#"<a href="next.html">n</a><img src="pics/a.png"><blockquote cite="javascript:alert(1)">q</blockquote><a href="vbscript:x">v</a>"#,
            Some(&entry),
        );
        assert_eq!(
            out,
            r#"<a href="https://blog.example.com/2026/next.html" rel="noopener noreferrer">n</a><img src="https://blog.example.com/2026/pics/a.png"><blockquote>q</blockquote><a rel="noopener noreferrer">v</a>"#
        );
        // Without a page to resolve against, a relative URL goes.
        assert_eq!(
            sanitize(r#"<a href="next.html">n</a>"#, None),
            r#"<a rel="noopener noreferrer">n</a>"#
        );
    }

    /// Pieces of HTML that try to smuggle a script URL past the rule.
    const FRAGMENTS: &[&str] = &[
        "<a href=\"",
        "<a href='",
        "<a href=",
        "<img src=\"",
        "<img srcset=\"",
        "<blockquote cite=\"",
        "<video poster=\"",
        "<form action=\"",
        "<button formaction=\"",
        "<object data=\"",
        "<svg><a xlink:href=\"",
        "\"",
        "'",
        ">",
        "</a>",
        " ",
        "javascript:",
        "java&#x09;script:",
        "java&#9;script:",
        "java\tscript:",
        "java\nscript:",
        "JaVaScRiPt:",
        "&#106;avascript:",
        "&#x6A;avascript&#x3A;",
        "&#0000106",
        "javascript&colon;",
        "java&Tab;script:",
        "data:text/html,",
        "vbscript:",
        "&amp;",
        "&",
        "#",
        "\u{0}",
        "\u{1}",
        "\u{8}",
        "\u{1f}",
        "\u{a0}",
        "\u{feff}",
        "\t",
        "\n",
        "\r",
        "alert(1)",
        "next.html",
        "//x",
        "/",
        "http://a.example/",
        "https:",
        "mailto:x@y.z",
        " 1x, ",
    ];

    fn html_ish() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24).prop_map(|v| v.concat())
    }

    /// Every URL attribute of `html` as a browser's tokenizer reads it: (name, raw value).
    fn url_attributes(html: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        rewrite_str(
            html,
            RewriteStrSettings {
                element_content_handlers: vec![element!("*", |el| {
                    let tag = el.tag_name();
                    for a in el.attributes() {
                        let name = a.name();
                        let url = URL_ATTRIBUTES.contains(&name.as_str())
                            || name == "srcset"
                            || (tag == "object" && name == "data");
                        if url {
                            found.push((name, a.value()));
                        }
                    }
                    Ok(())
                })],
                ..RewriteStrSettings::new()
            },
        )
        .unwrap();
        found
    }

    /// Each URL of an attribute must start, literally, with `http://`, `https://`
    /// or `mailto:`: no character reference, leading blank or letter case can make
    /// a browser read another scheme into such a value.
    fn assert_only_web_urls(html: &str) -> Result<(), TestCaseError> {
        for (name, value) in url_attributes(html) {
            let urls: Vec<&str> = if name == "srcset" {
                value.split(", ").collect()
            } else {
                vec![value.as_str()]
            };
            for url in urls {
                let ok = ["http://", "https://", "mailto:"]
                    .iter()
                    .any(|p| url.starts_with(p));
                let read = decode_references(url)
                    .trim_matches(|c: char| c <= ' ')
                    .replace(['\t', '\n', '\r'], "")
                    .to_lowercase();
                let scheme_ok = LINK_SCHEMES
                    .iter()
                    .any(|s| read.starts_with(&format!("{s}:")));
                prop_assert!(ok && scheme_ok, "{name}={value:?} in {html:?}");
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn no_other_scheme_survives_sanitising(html in html_ish()) {
            assert_only_web_urls(&sanitize(&html, Some(&base())))?;
            assert_only_web_urls(&sanitize(&html, None))?;
        }

        #[test]
        fn no_other_scheme_survives_the_authors_html(html in html_ish()) {
            if let Ok(out) = absolutize_urls(&html, &base()) {
                assert_only_web_urls(&out)?;
            }
        }
    }

    #[test]
    fn only_web_links_are_rewritten() {
        let html = "<p><a href=\"https://e.x/a?b=1&amp;c=2\">a</a> \
                    <a href=\"mailto:me@e.x\">m</a> <img src=\"https://e.x/i.png\"> \
                    <a href=\"http://e.x/skip\">s</a></p>";
        let out = rewrite_links(html, |url| {
            (!url.path().contains("skip"))
                .then(|| format!("https://site/c/{}", url.query().unwrap_or("")))
        })
        .unwrap();
        assert!(out.contains("href=\"https://site/c/b=1&amp;c=2\""), "{out}");
        assert!(out.contains("href=\"mailto:me@e.x\""), "{out}");
        assert!(out.contains("src=\"https://e.x/i.png\""), "{out}");
        assert!(out.contains("href=\"http://e.x/skip\""), "{out}");
    }
}
