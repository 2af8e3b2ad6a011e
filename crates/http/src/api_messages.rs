//! `/api/v1/topics/{name}/messages`: browse and search a topic's messages (GET) and
//! produce one (POST, admin). Keys, values and header values travel as
//! `{"utf8": "..."}` when they are UTF-8, else `{"base64": "..."}`, or `null`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use gregor_broker::admin_api::messages::{MessageQuery, MessageView, NewMessage, Start, MAX_LIMIT};
use serde_json::{json, Value};

use crate::api::{bad_request, blocking, json_body, kafka_error, AppState};

const DEFAULT_LIMIT: usize = 100;
const DEFAULT_MAX_SCAN: u64 = 100_000;

/// Text when it is UTF-8 without control characters (but tabs and line breaks), else
/// base64: bytes like `00 01 02` are valid UTF-8 yet binary to a reader.
fn encode_bytes(bytes: &Option<Bytes>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match readable_text(b) {
            Some(text) => json!({ "utf8": text }),
            None => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
        },
    }
}

fn readable_text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok().filter(|t| !t.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')))
}

fn message_json(m: &MessageView) -> Value {
    json!({
        "partition": m.partition,
        "offset": m.offset,
        "timestamp": m.timestamp,
        "timestamp_type": m.timestamp_type,
        "key": encode_bytes(&m.key),
        "value": encode_bytes(&m.value),
        "headers": m.headers.iter().map(|(k, v)| json!({ "key": k, "value": encode_bytes(v) })).collect::<Vec<_>>(),
    })
}

/// Parses the query string into a [`MessageQuery`], or the 400 to answer.
fn message_query(params: &HashMap<String, String>) -> Result<MessageQuery, Response> {
    let number = |key: &str| -> Result<Option<i64>, Response> {
        match params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Some(n)),
                _ => Err(bad_request(format!("'{key}' must be a non-negative integer, not '{v}'"))),
            },
        }
    };
    let start = match (number("offset")?, number("timestamp")?) {
        (Some(_), Some(_)) => return Err(bad_request("give 'offset' or 'timestamp', not both")),
        (Some(o), None) => Start::Offset(o),
        (None, Some(ts)) => Start::Timestamp(ts),
        (None, None) => Start::Edge,
    };
    let newest_first = match params.get("order").map(String::as_str) {
        None | Some("" | "oldest") => false,
        Some("newest") => true,
        Some(other) => return Err(bad_request(format!("'order' is oldest or newest, not '{other}'"))),
    };
    let limit = match number("limit")? {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(bad_request("'limit' must be at least 1")),
        Some(n) => (n as usize).min(MAX_LIMIT),
    };
    let partition = match number("partition")? {
        None => None,
        Some(p) => Some(i32::try_from(p).map_err(|_| bad_request("'partition' is too large"))?),
    };
    Ok(MessageQuery {
        partition,
        start,
        newest_first,
        limit,
        search: params.get("q").filter(|q| !q.is_empty()).cloned(),
        max_scan: number("max_scan")?.map_or(DEFAULT_MAX_SCAN, |n| n.max(1) as u64),
    })
}

pub(crate) async fn browse(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(topic): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = state.sessions.authenticate(&headers) {
        return r;
    }
    let query = match message_query(&params) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let broker = state.broker.clone();
    match blocking(move || broker.browse(&topic, &query)).await {
        Ok(Ok(page)) => Json(json!({
            "messages": page.messages.iter().map(message_json).collect::<Vec<_>>(),
            "scanned": page.scanned,
            "complete": page.complete,
        }))
        .into_response(),
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}

/// A key or value: `"name"` (text), `"name_base64"` (binary), or neither / null.
fn bytes_field(body: &Value, name: &str) -> Result<Option<Bytes>, Response> {
    let b64 = format!("{name}_base64");
    match (body.get(name), body.get(&b64)) {
        (Some(Value::String(text)), None | Some(Value::Null)) => Ok(Some(Bytes::from(text.clone().into_bytes()))),
        (None | Some(Value::Null), Some(Value::String(encoded))) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map(|raw| Some(Bytes::from(raw)))
            .map_err(|e| bad_request(format!("'{b64}' is not base64: {e}"))),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ok(None),
        (Some(Value::String(_)), Some(_)) => Err(bad_request(format!("give '{name}' or '{b64}', not both"))),
        _ => Err(bad_request(format!("'{name}' must be a string or null"))),
    }
}

fn new_message(body: &Value) -> Result<NewMessage, Response> {
    let partition = match body.get("partition") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| bad_request("'partition' must be a non-negative integer"))?,
        ),
    };
    let headers = match body.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|h| {
                let key =
                    h.get("key").and_then(Value::as_str).ok_or_else(|| bad_request("each header needs a 'key'"))?;
                Ok((key.to_owned(), bytes_field(h, "value")?))
            })
            .collect::<Result<_, Response>>()?,
        Some(_) => return Err(bad_request("'headers' must be a list of {\"key\", \"value\"}")),
    };
    // A null value is a tombstone: it must be asked for, not left out by mistake.
    if body.get("value").is_none() && body.get("value_base64").is_none() {
        return Err(bad_request("'value' is required (null for a tombstone)"));
    }
    Ok(NewMessage { partition, key: bytes_field(body, "key")?, value: bytes_field(body, "value")?, headers })
}

pub(crate) async fn produce(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(topic): Path<String>,
    body: String,
) -> Response {
    let user = match state.sessions.authorize_change(&headers) {
        Ok(user) => user,
        Err(r) => return r,
    };
    let message = match json_body(&body).and_then(|b| new_message(&b)) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let broker = state.broker.clone();
    let name = topic.clone();
    match blocking(move || broker.produce(&name, &message)).await {
        Ok(Ok((partition, offset))) => {
            tracing::info!(%user, %topic, partition, offset, "admin API: message produced");
            (StatusCode::CREATED, Json(json!({ "topic": topic, "partition": partition, "offset": offset })))
                .into_response()
        }
        Ok(Err(e)) => kafka_error(&e),
        Err(r) => r,
    }
}
