//! The clerk's page (`GET /`) and the auditor's (`GET /audit`), with their scripts and
//! styles: served by kyso itself, compiled into the binary, calling nothing but the API
//! beside them (the Content-Security-Policy forbids any other origin). They take no
//! credentials to load; the API calls they make ask for the access token.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the pages may load and call: this server only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The pages and their assets: name, media type, contents.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    (
        "audit.html",
        "text/html; charset=utf-8",
        include_str!("page/audit.html"),
    ),
    (
        "kyso.css",
        "text/css; charset=utf-8",
        include_str!("page/kyso.css"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("page/i18n.js"),
    ),
    (
        "clerk.js",
        "text/javascript; charset=utf-8",
        include_str!("page/clerk.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_str!("page/audit.js"),
    ),
];

fn file(name: &str) -> Response {
    let Some((_, media, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let mut response = (*body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A new kyso's pages show at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The clerk's page.
pub(super) async fn clerk() -> Response {
    file("index.html")
}

/// The auditor's page.
pub(super) async fn auditor() -> Response {
    file("audit.html")
}

/// A script or style of the pages.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    match name.rsplit_once('.') {
        Some((_, "js" | "css")) => file(&name),
        _ => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_load_nothing_from_elsewhere() {
        for (name, _, body) in FILES {
            for needle in ["http://", "https://", "//cdn", "@import"] {
                assert!(!body.contains(needle), "{name} refers to {needle}");
            }
        }
        // Every asset a page names is served.
        for (name, _, body) in FILES.iter().filter(|(n, _, _)| n.ends_with(".html")) {
            for part in body.split("/assets/").skip(1) {
                let asset = part.split('"').next().unwrap_or_default();
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == asset),
                    "{name} names /assets/{asset}, which is not served"
                );
            }
        }
    }
}
