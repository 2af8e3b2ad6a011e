//! The broker's HTTP listener (`http.listeners`, `gregor serve --http-listen`): Prometheus
//! `/metrics`, `/api/v1/health` (both open), and the admin API under `/api/v1/` (basic
//! auth of `console.users`, see [`auth`] and `api.rs`); the web console will join them
//! (issue 19). It calls the broker through [`gregor_broker::BrokerHandle`], never through
//! a Kafka client over loopback.
#![forbid(unsafe_code)]

mod api;
pub mod auth;
pub mod prometheus;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
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

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    broker: BrokerHandle,
    users: auth::Users,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let state = api::AppState { broker, users: Arc::new(users) };
    let app = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/api/v1/health", get(health))
        .route("/api/v1/cluster", get(api::cluster))
        .route("/api/v1/topics", get(api::topics).post(api::create_topic))
        .route("/api/v1/topics/{name}", get(api::topic).delete(api::delete_topic))
        .route("/api/v1/groups", get(api::groups))
        .with_state(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn index(State(state): State<api::AppState>) -> Html<String> {
    let broker = &state.broker;
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Gregor node {id}</title></head>\
         <body><h1>Gregor node {id}</h1><p>Cluster {cluster}.</p>\
         <ul><li><a href=\"/metrics\">/metrics</a> (Prometheus)</li>\
         <li><a href=\"/api/v1/health\">/api/v1/health</a></li></ul></body></html>",
        id = broker.node_id(),
        cluster = broker.cluster_id(),
    ))
}

async fn health(State(state): State<api::AppState>) -> Json<serde_json::Value> {
    let broker = &state.broker;
    Json(serde_json::json!({
        "status": "ok",
        "node_id": broker.node_id(),
        "cluster_id": broker.cluster_id(),
    }))
}

async fn metrics(State(state): State<api::AppState>) -> Response {
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
fn disk_usage(dir: &Path) -> Option<DiskUsage> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(DiskUsage {
        free_bytes: st.f_bavail.saturating_mul(st.f_frsize),
        total_bytes: st.f_blocks.saturating_mul(st.f_frsize),
    })
}
