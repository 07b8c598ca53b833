//! HTML clean-up shared by local and upstream posts.

use lol_html::{element, rewrite_str, RewriteStrSettings};
use url::Url;

/// Rewrites every URL attribute (`href`, `src`, `srcset`, `poster`, …) to an absolute
/// URL against `base`, the post's own page. Feed readers and mail clients have no
/// base URL, so a relative link in either is a broken link.
pub fn absolutize_urls(html: &str, base: &Url) -> Result<String, String> {
    let resolve = move |value: &str| -> String {
        let v = value.trim();
        base.join(v)
            .map(String::from)
            .unwrap_or_else(|_| v.to_string())
    };
    let single = |attr: &'static str| {
        element!(format!("[{attr}]"), move |el| {
            if let Some(v) = el.get_attribute(attr) {
                el.set_attribute(attr, &resolve(&v))?;
            }
            Ok(())
        })
    };
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![
                single("href"),
                single("src"),
                single("poster"),
                single("cite"),
                element!("[srcset]", move |el| {
                    if let Some(v) = el.get_attribute("srcset") {
                        el.set_attribute("srcset", &resolve_srcset(&v, resolve))?;
                    }
                    Ok(())
                }),
            ],
            ..RewriteStrSettings::new()
        },
    )
    .map_err(|e| e.to_string())
}

/// `a.png 1x, b.png 2x` → each candidate's URL resolved, descriptors kept.
fn resolve_srcset(srcset: &str, resolve: impl Fn(&str) -> String) -> String {
    srcset
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(
            |candidate| match candidate.split_once(char::is_whitespace) {
                Some((url, descriptor)) => format!("{} {}", resolve(url), descriptor.trim()),
                None => resolve(candidate),
            },
        )
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_relative_url_becomes_absolute() {
        let base = Url::parse("https://essays.example.com/posts/walk/").unwrap();
        let html = r##"<a href="../other/">o</a><a href="#fn1">1</a><img src="img/a.png" srcset="a.png 1x, /b.png 2x"><a href="mailto:x@y.z">m</a><a href="https://elsewhere.org/x">e</a>"##;
        let out = absolutize_urls(html, &base).unwrap();
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
        assert!(out.contains(r#"href="https://elsewhere.org/x""#));
    }
}
