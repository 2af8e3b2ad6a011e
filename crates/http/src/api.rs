//! The admin API under `/api/v1/` (JSON): the cluster, topics (list, describe, create,
//! delete) and consumer groups' lag. Every call but `/health` needs HTTP basic auth of a
//! `console.users` user; changes need the `admin` role (a viewer gets 403 and nothing
//! changes) and are logged with the user. Refusals carry Kafka's error name and code.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::AppendHeaders;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gregor_broker::admin_api::{AdminError, TopicRequest};
use gregor_broker::BrokerHandle;
use serde_json::{json, Value};

use crate::session::{self, error, Sessions};

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) broker: BrokerHandle,
    pub(crate) sessions: Arc<Sessions>,
    /// `http.metrics.login.required`: /metrics and /health behind the login too.
    pub(crate) metrics_login_required: bool,
}

/// How long a failed console login waits before its answer.
const FAILED_LOGIN_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

pub(crate) fn kafka_error(e: &AdminError) -> Response {
    let status = match e.name.as_str() {
        "UNKNOWN_TOPIC_OR_PARTITION" | "GROUP_ID_NOT_FOUND" => StatusCode::NOT_FOUND,
        "TOPIC_ALREADY_EXISTS" | "NON_EMPTY_GROUP" => StatusCode::CONFLICT,
        "TOPIC_DELETION_DISABLED" => StatusCode::FORBIDDEN,
        "NOT_CONTROLLER"
        | "REQUEST_TIMED_OUT"
        | "COORDINATOR_NOT_AVAILABLE"
        | "COORDINATOR_LOAD_IN_PROGRESS"
        | "NOT_ENOUGH_REPLICAS"
        | "NOT_ENOUGH_REPLICAS_AFTER_APPEND" => StatusCode::SERVICE_UNAVAILABLE,
        // The partition or group lives on another node: its console answers.
        "NOT_LEADER_OR_FOLLOWER" | "NOT_COORDINATOR" => StatusCode::MISDIRECTED_REQUEST,
        name if name.starts_with("INVALID_")
            || matches!(name, "POLICY_VIOLATION" | "MESSAGE_TOO_LARGE" | "RECORD_LIST_TOO_LARGE") =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({ "error": e.name, "code": e.code, "message": e.message }))).into_response()
}

pub(crate) fn bad_request(why: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", why)
}

/// The body as JSON, or the 400 to answer.
pub(crate) fn json_body(body: &str) -> Result<Value, Response> {
    serde_json::from_str(body).map_err(|e| bad_request(format!("the body is not JSON: {e}")))
}

/// Runs a blocking broker call off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))
}

pub(crate) async fn cluster(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = state.sessions.authenticate(&headers) {
        return r;
    }
    let broker = state.broker.clone();
    let (c, disk) = match blocking(move || {
        let c = broker.cluster();
        let disk = crate::disk_usage(&c.log_dir);
        (c, disk)
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    Json(json!({
        "cluster_id": c.cluster_id,
        "node_id": c.node_id,
        "active_controller_here": c.active_controller_here,
        "brokers": c.brokers.iter().map(|b| json!({
            "id": b.id, "host": b.host, "port": b.port, "rack": b.rack, "fenced": b.fenced, "epoch": b.epoch,
        })).collect::<Vec<_>>(),
        "topics": c.topics,
        "partitions": c.partitions,
        "under_replicated_partitions": c.under_replicated_partitions,
        "offline_partitions": c.offline_partitions,
        "log_dir": {
            "path": c.log_dir.display().to_string(),
            "size_bytes": c.log_size_bytes,
            "free_bytes": disk.map(|d| d.free_bytes),
            "total_bytes": disk.map(|d| d.total_bytes),
        },
    }))
    .into_response()
}

pub(crate) async fn topics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = state.sessions.authenticate(&headers) {
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
                        "offline_partitions": t.offline_partitions, "size_bytes": t.size_bytes,
                        "messages": t.messages, "messages_in_total": t.messages_in_total,
                        "bytes_in_total": t.bytes_in_total,
                    })
                })
                .collect(),
        ))
        .into_response(),
        Err(r) => r,
    }
}

pub(crate) async fn topic(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Err(r) = state.sessions.authenticate(&headers) {
        return r;
    }
    let broker = state.broker.clone();
    match blocking(move || broker.topic(&name)).await {
        Ok(Ok(t)) => Json(json!({
            "name": t.name, "topic_id": t.topic_id, "internal": t.internal, "configs": t.configs,
            "messages_in_total": t.messages_in_total, "bytes_in_total": t.bytes_in_total,
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
    let user = match state.sessions.authorize_change(&headers) {
        Ok(user) => user,
        Err(r) => return r,
    };
    let parsed = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
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
    let user = match state.sessions.authorize_change(&headers) {
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

/// The groups this node coordinates, with their lag.
pub(crate) async fn groups(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = state.sessions.authenticate(&headers) {
        return r;
    }
    let broker = state.broker.clone();
    // Only the lag: the full metrics snapshot would read every partition's log too.
    let (summaries, lags) = match blocking(move || (broker.group_summaries(), broker.group_lags())).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut partitions: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for l in &lags {
        partitions.entry(&l.group).or_default().push(json!({
            "topic": l.topic, "partition": l.partition, "committed_offset": l.committed_offset,
            "end_offset": l.end_offset, "lag": l.lag,
        }));
    }
    let list: Vec<Value> = summaries
        .iter()
        .map(|g| {
            let partitions = partitions.remove(g.group.as_str()).unwrap_or_default();
            let lag: i64 = partitions.iter().filter_map(|p| p["lag"].as_i64()).sum();
            json!({
                "group": g.group, "state": g.state, "type": g.group_type, "protocol_type": g.protocol_type,
                "members": g.members, "lag": lag, "partitions": partitions,
            })
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

/// `{"user", "password"}`: opens a console session (an HttpOnly, SameSite=Strict cookie).
pub(crate) async fn login(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let parsed = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let field = |k: &str| parsed.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(user), Some(password)) = (field("user"), field("password")) else {
        return bad_request("\"user\" and \"password\" (strings) are required");
    };
    let sessions = state.sessions.clone();
    // argon2 hashes take a while to check: off the async workers.
    let (name, opened) = match blocking(move || {
        let opened = sessions.login(&user, &password);
        (user, opened)
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    match opened {
        Some((token, role)) => {
            tracing::info!(user = %name, "console: logged in");
            let cookie = state.sessions.set_cookie(&token);
            (AppendHeaders([(header::SET_COOKIE, cookie)]), Json(json!({ "user": name, "role": role.name() })))
                .into_response()
        }
        None => {
            tracing::info!(user = %name, "console: failed login");
            // Slows password guessing, as Kafka's connection.failed.authentication.delay.ms.
            tokio::time::sleep(FAILED_LOGIN_DELAY).await;
            session::unauthorized(&headers, "wrong user name or password")
        }
    }
}

pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.sessions.logout(&headers);
    (AppendHeaders([(header::SET_COOKIE, session::clear_cookie())]), Json(json!({ "logged_out": true })))
        .into_response()
}

/// Who the caller is (the console asks at start: 401 shows the login form).
pub(crate) async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.sessions.authenticate(&headers) {
        Ok(p) => Json(json!({ "user": p.user, "role": p.role.name() })).into_response(),
        Err(r) => r,
    }
}
