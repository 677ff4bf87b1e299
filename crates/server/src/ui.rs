//! The web UI: one HTML page, one script and one style sheet, written by hand and compiled
//! into the binary (no Node.js to build or run it). The page holds no data: the script reads
//! everything through the public REST API with the caller's token, so the UI can do nothing
//! the API would not let that caller do.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("../ui/index.html");
const SCRIPT: &str = include_str!("../ui/app.js");
const STYLE: &str = include_str!("../ui/app.css");

/// Only this origin's script, style and API; no framing (clickjacking), no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `/`: to the web UI.
pub async fn root() -> Redirect {
    Redirect::to("/ui/")
}

/// The web UI's page.
pub async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}

/// The web UI's script.
pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// The web UI's style sheet.
pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}
