//! The web console at `/`: one HTML page, its script and its styles, embedded in the
//! binary (nothing fetched from the internet, no build step beyond Cargo). The page
//! logs in through `/api/v1/login` and draws every view from the admin API.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/console.js");
const STYLES: &str = include_str!("../assets/console.css");

/// The console must not be framed by another site (clickjacking) nor cached stale.
const PAGE_HEADERS: [(header::HeaderName, &str); 3] = [
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CACHE_CONTROL, "no-cache"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

pub(crate) async fn index() -> Response {
    (PAGE_HEADERS, Html(INDEX)).into_response()
}

pub(crate) async fn script() -> Response {
    (PAGE_HEADERS, [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

pub(crate) async fn styles() -> Response {
    (PAGE_HEADERS, [(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLES).into_response()
}
