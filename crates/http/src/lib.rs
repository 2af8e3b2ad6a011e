//! The broker's HTTP listener (`http.listeners`, `gregor serve --http-listen`): the web
//! console at `/`, the admin API under `/api/v1/` (a console session or basic auth of
//! `console.users`, see [`auth`] and `session.rs`; its OpenAPI document at
//! `/api/v1/openapi.json`), and Prometheus `/metrics` and `/api/v1/health` (open unless
//! `http.metrics.login.required`). It calls the broker through
//! [`gregor_broker::BrokerHandle`], never through a Kafka client over loopback.
#![forbid(unsafe_code)]

mod api;
mod api_groups;
mod api_messages;
pub mod auth;
mod console;
pub mod prometheus;
mod session;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use axum::extract::State;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gregor_broker::BrokerHandle;
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::prometheus::DiskUsage;

/// Prometheus' text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `HOST:PORT` (a host name takes its first address, `localhost` 127.0.0.1).
pub async fn bind(address: &str) -> io::Result<TcpListener> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host(address).await?.collect();
    // IPv4 first: `localhost` resolving to ::1 first would surprise a browser on 127.0.0.1.
    addrs.sort_by_key(|a| !a.is_ipv4());
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, format!("{address} resolves to nothing"));
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Who may log in, and how the listener treats them.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub users: auth::Users,
    /// `console.session.timeout.ms`: idle time that ends a console session.
    pub session_timeout: Duration,
    /// `http.metrics.login.required`: /metrics and /api/v1/health need a login too.
    pub metrics_login_required: bool,
}

const OPENAPI: &str = include_str!("../assets/openapi.json");

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    broker: BrokerHandle,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let state = api::AppState {
        broker,
        sessions: Arc::new(session::Sessions::new(settings.users, settings.session_timeout)),
        metrics_login_required: settings.metrics_login_required,
    };
    let app = Router::new()
        .route("/", get(console::index))
        .route("/console.js", get(console::script))
        .route("/console.css", get(console::styles))
        .route("/metrics", get(metrics))
        .route("/api/v1/health", get(health))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/login", post(api::login))
        .route("/api/v1/logout", post(api::logout))
        .route("/api/v1/session", get(api::whoami))
        .route("/api/v1/cluster", get(api::cluster))
        .route("/api/v1/topics", get(api::topics).post(api::create_topic))
        .route("/api/v1/topics/{name}", get(api::topic).delete(api::delete_topic))
        .route("/api/v1/topics/{name}/configs", get(api_groups::topic_configs).patch(api_groups::alter_topic_configs))
        .route("/api/v1/topics/{name}/messages", get(api_messages::browse).post(api_messages::produce))
        .route("/api/v1/groups", get(api::groups))
        .route("/api/v1/groups/{id}", get(api_groups::group).delete(api_groups::delete_group))
        .route("/api/v1/groups/{id}/reset-offsets", post(api_groups::reset_offsets))
        .route("/api/v1/brokers/{id}/configs", get(api_groups::broker_configs).patch(api_groups::alter_broker_configs))
        .fallback(not_found)
        .with_state(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn not_found(uri: axum::http::Uri) -> Response {
    session::error(StatusCode::NOT_FOUND, "NOT_FOUND", format!("no such page or endpoint: {}", uri.path()))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// With `http.metrics.login.required`, the caller must be logged in.
fn open_endpoint_allowed(state: &api::AppState, headers: &HeaderMap) -> Result<(), Response> {
    if state.metrics_login_required {
        state.sessions.authenticate(headers)?;
    }
    Ok(())
}

async fn health(State(state): State<api::AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = open_endpoint_allowed(&state, &headers) {
        return r;
    }
    let broker = &state.broker;
    Json(serde_json::json!({
        "status": "ok",
        "node_id": broker.node_id(),
        "cluster_id": broker.cluster_id(),
    }))
    .into_response()
}

async fn metrics(State(state): State<api::AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = open_endpoint_allowed(&state, &headers) {
        return r;
    }
    let broker = state.broker.clone();
    // The snapshot reads logs and takes coordinator locks: off the async workers.
    let rendered = tokio::task::spawn_blocking(move || {
        let snapshot = broker.metrics();
        let disk = disk_usage(&snapshot.log_dir);
        prometheus::render(&snapshot, disk)
    })
    .await;
    match rendered {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics failed: {e}\n")).into_response(),
    }
}

/// The log dir's file system; `None` when it cannot be asked (the gauges are left out).
pub(crate) fn disk_usage(dir: &Path) -> Option<DiskUsage> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(DiskUsage {
        free_bytes: st.f_bavail.saturating_mul(st.f_frsize),
        total_bytes: st.f_blocks.saturating_mul(st.f_frsize),
    })
}
