//! What every answer tells the browser: not to guess its type, where the page
//! may load things from and who may frame it (`Content-Security-Policy`, and
//! `X-Frame-Options` for older browsers), and how much of its address a link
//! passes on (`Referrer-Policy`). A handler that sets one of these itself (the
//! email preview's sandbox) keeps its own.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use url::Url;

/// The policies, built once from the site's address.
pub struct Policies {
    public: HeaderValue,
    admin: HeaderValue,
}

/// The dashboard: its own script file, styles in its pages (`<style>` and
/// `style` attributes), its own frames (the email preview) and events (the
/// live progress); framed by nobody.
const ADMIN_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

impl Policies {
    /// The archive and the readers' pages run no script. Their styles are in
    /// the page (`head.html.hbs`); their links, images and forms point at
    /// `home` (`base_url`), which may be another origin than the one serving
    /// (behind a proxy). A post's images may live anywhere on https, as in
    /// the email (an imported post keeps its blog's images).
    pub fn new(home: &Url) -> Policies {
        let origin = home.origin();
        let site = if origin.is_tuple() {
            format!("'self' {}", origin.ascii_serialization())
        } else {
            "'self'".to_string()
        };
        let public = format!(
            "default-src {site}; img-src {site} https: data:; media-src {site} https:; \
             style-src {site} 'unsafe-inline'; script-src 'none'; object-src 'none'; \
             base-uri 'none'; form-action {site}; frame-ancestors 'none'"
        );
        Policies {
            public: HeaderValue::from_str(&public).unwrap_or_else(|_| {
                HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'")
            }),
            admin: HeaderValue::from_static(ADMIN_POLICY),
        }
    }
}

/// Which kind of page a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Admin,
    /// Its address holds a token that must not leave in a `Referer`.
    Token,
    Public,
}

impl Kind {
    fn of(path: &str) -> Kind {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/admin") {
            Kind::Admin
        } else if under("/preferences")
            || under("/unsubscribe")
            || under("/confirm")
            || under("/c")
            || under("/o")
        {
            Kind::Token
        } else {
            Kind::Public
        }
    }

    fn referrer_policy(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Kind::Token => "no-referrer",
            // Still sends `Origin` on the dashboard's own posts, which check it.
            Kind::Admin => "same-origin",
            Kind::Public => "strict-origin-when-cross-origin",
        })
    }
}

/// The middleware: adds the headers to every answer that lacks them.
pub async fn add(State(policies): State<Arc<Policies>>, request: Request, next: Next) -> Response {
    let kind = Kind::of(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(match kind {
            Kind::Admin => policies.admin.clone(),
            Kind::Token | Kind::Public => policies.public.clone(),
        });
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(kind.referrer_policy());
    // For browsers older than `frame-ancestors`.
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sorted_by_what_they_hold() {
        for (path, kind) in [
            ("/admin", Kind::Admin),
            ("/admin/", Kind::Admin),
            ("/admin/posts/x/email.html", Kind::Admin),
            ("/administrivia", Kind::Public),
            ("/preferences/abc.def", Kind::Token),
            ("/unsubscribe/abc.def", Kind::Token),
            ("/confirm/abc.def", Kind::Token),
            ("/c/abc.def", Kind::Token),
            ("/o/abc", Kind::Token),
            ("/css/x", Kind::Public),
            ("/posts/confirm", Kind::Public),
            ("/", Kind::Public),
        ] {
            assert_eq!(Kind::of(path), kind, "{path}");
        }
    }

    #[test]
    fn the_public_policy_names_the_sites_origin() {
        let p = Policies::new(&Url::parse("https://essays.example.com/blog/").unwrap());
        let public = p.public.to_str().unwrap();
        assert!(
            public.contains("form-action 'self' https://essays.example.com;"),
            "{public}"
        );
        assert!(public.contains("script-src 'none'"), "{public}");
        assert!(public.ends_with("frame-ancestors 'none'"), "{public}");
    }
}
