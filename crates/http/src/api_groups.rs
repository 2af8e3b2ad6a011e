//! `/api/v1/groups/{id}` (describe, delete), `/api/v1/groups/{id}/reset-offsets`, and the
//! config endpoints of topics and brokers.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gregor_broker::admin_api::configs::{ConfigChange, ConfigEntryView};
use gregor_broker::admin_api::groups::{GroupView, ResetRow, ResetStrategy};
use gregor_broker::admin_api::{time, AdminError};
use serde_json::{json, Value};

use crate::api::{bad_request, blocking, json_body, kafka_error, AppState};

fn group_json(g: &GroupView) -> Value {
    let lag: i64 = g.offsets.iter().filter_map(|o| o.lag).sum();
    json!({
        "group": g.group,
        "state": g.state,
        "type": g.group_type,
        "protocol_type": g.protocol_type,
        "protocol": g.protocol,
        "lag": lag,
        "members": g.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
            "assignment": m.assignment.iter().map(|(t, ps)| json!({ "topic": t, "partitions": ps })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "offsets": g.offsets.iter().map(|o| json!({
            "topic": o.topic, "partition": o.partition, "committed_offset": o.committed_offset,
            "log_start_offset": o.log_start_offset, "end_offset": o.end_offset, "lag": o.lag,
        })).collect::<Vec<_>>(),
    })
}

pub(crate) async fn group(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = state.sessions.authenticate(&headers) {
        return r;
    }
    let broker = state.broker.clone();
    match blocking(move || broker.group(&id)).await {
        Ok(Ok(g)) => Json(group_json(&g)).into_response(),
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}

pub(crate) async fn delete_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match state.sessions.authorize_change(&headers) {
        Ok(user) => user,
        Err(r) => return r,
    };
    let broker = state.broker.clone();
    let group = id.clone();
    match blocking(move || broker.delete_group(&group)).await {
        Ok(Ok(())) => {
            tracing::info!(%user, group = %id, "admin API: group deleted");
            Json(json!({ "deleted": id })).into_response()
        }
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}

/// `"strategy"` and `"value"` as `gregor groups reset-offsets` takes them.
fn strategy(body: &Value) -> Result<ResetStrategy, Response> {
    let value = body.get("value");
    let text = value.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).unwrap_or_default();
    let integer =
        || text.trim().parse::<i64>().map_err(|_| bad_request(format!("'value' must be an integer, not '{text}'")));
    let name = body.get("strategy").and_then(Value::as_str).unwrap_or_default();
    Ok(match name {
        "to_earliest" => ResetStrategy::Earliest,
        "to_latest" => ResetStrategy::Latest,
        "to_offset" => ResetStrategy::Offset(integer()?),
        "shift_by" => ResetStrategy::Shift(integer()?),
        "to_datetime" => ResetStrategy::Time(time::parse_datetime(text.trim()).map_err(bad_request)?),
        "by_duration" => {
            let ms = time::parse_duration(text.trim()).map_err(bad_request)?;
            ResetStrategy::Time(time::now_ms().saturating_sub(ms))
        }
        other => {
            return Err(bad_request(format!(
            "'strategy' is one of to_earliest, to_latest, to_offset, to_datetime, by_duration, shift_by, not '{other}'"
        )))
        }
    })
}

/// `"topics": ["orders", "payments:0,1"]` (none with `"all_topics": true`).
fn targets(body: &Value) -> Result<Vec<(String, Vec<i32>)>, Response> {
    let all = body.get("all_topics").and_then(Value::as_bool).unwrap_or(false);
    let specs: Vec<&str> = match body.get("topics") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().ok_or_else(|| bad_request("'topics' must be strings")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad_request("'topics' must be a list like [\"orders\", \"payments:0,1\"]")),
    };
    if all != specs.is_empty() {
        return Err(bad_request("give \"all_topics\": true or a list of \"topics\", one of them"));
    }
    specs
        .into_iter()
        .map(|spec| {
            let (name, list) = spec.split_once(':').unwrap_or((spec, ""));
            let partitions = list
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    p.trim().parse::<i32>().map_err(|_| bad_request(format!("'{spec}' is not TOPIC or TOPIC:P1,P2")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((name.to_owned(), partitions))
        })
        .collect()
}

fn plan_json(group: &str, executed: bool, plan: &[ResetRow]) -> Value {
    json!({
        "group": group,
        "executed": executed,
        "plan": plan.iter().map(|r| json!({
            "topic": r.topic, "partition": r.partition, "current_offset": r.current_offset, "new_offset": r.new_offset,
        })).collect::<Vec<_>>(),
    })
}

pub(crate) async fn reset_offsets(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let parsed = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let dry_run = match parsed.get("dry_run") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad_request("'dry_run' must be true or false"),
    };
    // A dry run changes nothing: a viewer may preview.
    let user = match if dry_run {
        state.sessions.authenticate(&headers).map(|p| p.user)
    } else {
        state.sessions.authorize_change(&headers)
    } {
        Ok(user) => user,
        Err(r) => return r,
    };
    let (targets, strategy) = match targets(&parsed).and_then(|t| Ok((t, strategy(&parsed)?))) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let broker = state.broker.clone();
    let group = id.clone();
    let plan = match blocking(move || broker.reset_plan(&group, &targets, strategy)).await {
        Ok(Ok(plan)) => plan,
        Ok(Err(e)) => return kafka_error(&e),
        Err(r) => return r,
    };
    if !dry_run {
        if let Err(e) = state.broker.commit_reset(&id, &plan, &user).await {
            return kafka_error(&e);
        }
        tracing::info!(%user, group = %id, partitions = plan.len(), "admin API: group offsets reset");
    }
    Json(plan_json(&id, !dry_run, &plan)).into_response()
}

fn configs_json(entries: &[ConfigEntryView]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|c| json!({
                "name": c.name, "value": c.value, "source": c.source, "read_only": c.read_only, "sensitive": c.sensitive,
            }))
            .collect(),
    )
}

/// `{"set": {key: value}, "delete": [key]}`.
fn config_change(body: &Value) -> Result<ConfigChange, Response> {
    let set = match body.get("set") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => {
            map.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
        }
        Some(_) => return Err(bad_request("'set' must be an object of config values")),
    };
    let delete = match body.get("delete") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| k.as_str().map(str::to_owned).ok_or_else(|| bad_request("'delete' must list config names")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad_request("'delete' must be a list of config names")),
    };
    if set.is_empty() && delete.is_empty() {
        return Err(bad_request("nothing to change: give 'set' or 'delete'"));
    }
    Ok(ConfigChange { set, delete })
}

pub(crate) async fn topic_configs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(topic): Path<String>,
) -> Response {
    if let Err(r) = state.sessions.authenticate(&headers) {
        return r;
    }
    let broker = state.broker.clone();
    match blocking(move || broker.topic_configs(&topic)).await {
        Ok(Ok(entries)) => Json(configs_json(&entries)).into_response(),
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}

pub(crate) async fn alter_topic_configs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(topic): Path<String>,
    body: String,
) -> Response {
    let user = match state.sessions.authorize_change(&headers) {
        Ok(user) => user,
        Err(r) => return r,
    };
    let change = match json_body(&body).and_then(|b| config_change(&b)) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let broker = state.broker.clone();
    let name = topic.clone();
    let outcome =
        blocking(move || broker.alter_topic_configs(&name, &change).and_then(|()| broker.topic_configs(&name))).await;
    match outcome {
        Ok(Ok(entries)) => {
            tracing::info!(%user, %topic, "admin API: topic configs changed");
            Json(configs_json(&entries)).into_response()
        }
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}

/// Only the node answering describes itself, as DescribeConfigs does.
fn this_node(state: &AppState, id: &str) -> Result<(), Response> {
    let node = state.broker.node_id();
    if id == node.to_string() {
        return Ok(());
    }
    let e = AdminError {
        code: -1,
        name: "BROKER_NOT_AVAILABLE".into(),
        message: format!("this is node {node}: ask node {id}'s own HTTP listener for its configs"),
    };
    Err((axum::http::StatusCode::NOT_FOUND, Json(json!({ "error": e.name, "message": e.message }))).into_response())
}

pub(crate) async fn broker_configs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.sessions.authenticate(&headers).map(drop).and_then(|()| this_node(&state, &id)) {
        return r;
    }
    let broker = state.broker.clone();
    match blocking(move || broker.broker_configs()).await {
        Ok(entries) => Json(configs_json(&entries)).into_response(),
        Err(r) => r,
    }
}

pub(crate) async fn alter_broker_configs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let user = match state.sessions.authorize_change(&headers) {
        Ok(user) => user,
        Err(r) => return r,
    };
    if let Err(r) = this_node(&state, &id) {
        return r;
    }
    let change = match json_body(&body).and_then(|b| config_change(&b)) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let broker = state.broker.clone();
    match blocking(move || broker.alter_broker_configs(&change).map(|()| broker.broker_configs())).await {
        Ok(Ok(entries)) => {
            tracing::info!(%user, "admin API: broker configs changed");
            Json(configs_json(&entries)).into_response()
        }
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}
