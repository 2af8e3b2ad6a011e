//! The admin API under `/api/v1/` (JSON): the cluster, topics (list, describe, create,
//! delete) and consumer groups' lag. Every call but `/health` needs HTTP basic auth of a
//! `console.users` user; changes need the `admin` role (a viewer gets 403 and nothing
//! changes) and are logged with the user. Refusals carry Kafka's error name and code.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use gregor_broker::admin_api::{AdminError, TopicRequest};
use gregor_broker::BrokerHandle;
use serde_json::{json, Value};

use crate::auth::{Role, Users};

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) broker: BrokerHandle,
    pub(crate) users: Arc<Users>,
}

/// A JSON error: `{"error": NAME, "message": ...}` (and Kafka's `code` when it has one).
fn error(status: StatusCode, name: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": name, "message": message.into() }))).into_response()
}

fn kafka_error(e: &AdminError) -> Response {
    let status = match e.name.as_str() {
        "UNKNOWN_TOPIC_OR_PARTITION" | "GROUP_ID_NOT_FOUND" => StatusCode::NOT_FOUND,
        "TOPIC_ALREADY_EXISTS" => StatusCode::CONFLICT,
        "TOPIC_DELETION_DISABLED" => StatusCode::FORBIDDEN,
        "NOT_CONTROLLER" | "REQUEST_TIMED_OUT" | "COORDINATOR_NOT_AVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        name if name.starts_with("INVALID_") || name == "POLICY_VIOLATION" => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({ "error": e.name, "code": e.code, "message": e.message }))).into_response()
}

/// The caller's name and role from HTTP basic auth, or the 401 to answer.
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<(String, Role), Response> {
    let unauthorized = |why: &str| {
        let mut response = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", why);
        let _ =
            response.headers_mut().insert(header::WWW_AUTHENTICATE, "Basic realm=\"gregor\"".parse().expect("static"));
        response
    };
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(unauthorized("log in: HTTP basic auth with a console user"));
    };
    let decoded = value
        .strip_prefix("Basic ")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let Some((name, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Err(unauthorized("malformed basic auth header"));
    };
    match state.users.verify(name, password) {
        Some(role) => Ok((name.to_owned(), role)),
        None => Err(unauthorized("wrong user name or password")),
    }
}

/// As `authenticate`, and the caller must be an admin.
fn authorize_change(state: &AppState, headers: &HeaderMap) -> Result<String, Response> {
    let (user, role) = authenticate(state, headers)?;
    if role != Role::Admin {
        return Err(error(StatusCode::FORBIDDEN, "FORBIDDEN", format!("user '{user}' is a viewer: read only")));
    }
    Ok(user)
}

/// Runs a blocking broker call off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))
}

pub(crate) async fn cluster(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&state, &headers) {
        return r;
    }
    let broker = state.broker.clone();
    match blocking(move || broker.cluster()).await {
        Ok(c) => Json(json!({
            "cluster_id": c.cluster_id,
            "node_id": c.node_id,
            "active_controller_here": c.active_controller_here,
            "brokers": c.brokers.iter().map(|b| json!({
                "id": b.id, "host": b.host, "port": b.port, "rack": b.rack, "fenced": b.fenced, "epoch": b.epoch,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(r) => r,
    }
}

pub(crate) async fn topics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&state, &headers) {
        return r;
    }
    let broker = state.broker.clone();
    match blocking(move || broker.topics()).await {
        Ok(topics) => Json(Value::Array(
            topics
                .into_iter()
                .map(|t| {
                    json!({
                        "name": t.name, "topic_id": t.topic_id, "internal": t.internal,
                        "partitions": t.partitions, "replication_factor": t.replication_factor,
                        "under_replicated_partitions": t.under_replicated_partitions,
                        "offline_partitions": t.offline_partitions,
                    })
                })
                .collect(),
        ))
        .into_response(),
        Err(r) => r,
    }
}

pub(crate) async fn topic(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Err(r) = authenticate(&state, &headers) {
        return r;
    }
    let broker = state.broker.clone();
    match blocking(move || broker.topic(&name)).await {
        Ok(Ok(t)) => Json(json!({
            "name": t.name, "topic_id": t.topic_id, "internal": t.internal, "configs": t.configs,
            "partitions": t.partitions.iter().map(|p| json!({
                "partition": p.partition, "leader": p.leader, "leader_epoch": p.leader_epoch,
                "replicas": p.replicas, "isr": p.isr, "log_start_offset": p.log_start_offset,
                "high_watermark": p.high_watermark, "log_end_offset": p.log_end_offset, "size_bytes": p.size_bytes,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}

/// `{"name": ..., "partitions": n?, "replication_factor": n?, "configs": {k: v}?}`.
fn topic_request(body: &Value) -> Result<TopicRequest, Response> {
    let bad = |why: &str| error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", why);
    let name = body.get("name").and_then(Value::as_str).ok_or_else(|| bad("\"name\" (a string) is required"))?;
    let int = |key: &str| -> Result<Option<i32>, Response> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| bad(&format!("\"{key}\" must be an integer"))),
        }
    };
    let configs = match body.get("configs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Ok((k.clone(), other.to_string())),
            })
            .collect::<Result<Vec<_>, Response>>()?,
        Some(_) => return Err(bad("\"configs\" must be an object of strings")),
    };
    Ok(TopicRequest {
        name: name.to_owned(),
        partitions: int("partitions")?,
        replication_factor: int("replication_factor")?,
        configs,
    })
}

pub(crate) async fn create_topic(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let user = match authorize_change(&state, &headers) {
        Ok(user) => user,
        Err(r) => return r,
    };
    let parsed: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", format!("the body is not JSON: {e}")),
    };
    let request = match topic_request(&parsed) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let broker = state.broker.clone();
    let name = request.name.clone();
    match blocking(move || broker.create_topic(&request)).await {
        Ok(Ok(())) => {
            tracing::info!(%user, topic = %name, "admin API: topic created");
            (StatusCode::CREATED, Json(json!({ "created": name }))).into_response()
        }
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}

pub(crate) async fn delete_topic(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let user = match authorize_change(&state, &headers) {
        Ok(user) => user,
        Err(r) => return r,
    };
    let broker = state.broker.clone();
    let topic = name.clone();
    match blocking(move || broker.delete_topic(&topic)).await {
        Ok(Ok(())) => {
            tracing::info!(%user, topic = %name, "admin API: topic deleted");
            Json(json!({ "deleted": name })).into_response()
        }
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}

/// Lag of the groups this broker coordinates, per group.
pub(crate) async fn groups(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&state, &headers) {
        return r;
    }
    let broker = state.broker.clone();
    // Only the lag: the full metrics snapshot would read every partition's log too.
    let lags = match blocking(move || broker.group_lags()).await {
        Ok(lags) => lags,
        Err(r) => return r,
    };
    let mut groups: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for l in &lags {
        groups.entry(&l.group).or_default().push(json!({
            "topic": l.topic, "partition": l.partition, "committed_offset": l.committed_offset,
            "end_offset": l.end_offset, "lag": l.lag,
        }));
    }
    let list: Vec<Value> = groups
        .into_iter()
        .map(|(group, partitions)| {
            let lag: i64 = partitions.iter().filter_map(|p| p["lag"].as_i64()).sum();
            json!({ "group": group, "lag": lag, "partitions": partitions })
        })
        .collect();
    Json(Value::Array(list)).into_response()
}
