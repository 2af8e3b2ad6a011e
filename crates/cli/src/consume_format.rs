//! How `gregor consume` prints a record: the value, a template, or a JSON object.

use bytes::Bytes;
use gregor_client::ConsumedRecord;
use serde_json::{json, Map, Value};

use crate::common::format_ms;

/// The output format chosen on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Format {
    Plain,
    Json,
    Template(String),
}

impl Format {
    pub(crate) fn new(format: &str, template: Option<&str>) -> Self {
        match template {
            Some(t) => Self::Template(t.replace("\\t", "\t").replace("\\n", "\n")),
            None if format == "json" => Self::Json,
            None => Self::Plain,
        }
    }

    /// The record as one or more output lines, newline included.
    pub(crate) fn render(&self, topic: &str, partition: i32, r: &ConsumedRecord) -> String {
        match self {
            Self::Plain => format!("{}\n", text(r.value.as_ref())),
            Self::Json => format!("{}\n", json_record(topic, partition, r)),
            Self::Template(t) => {
                let mut out = t
                    .replace("{topic}", topic)
                    .replace("{partition}", &partition.to_string())
                    .replace("{offset}", &r.offset.to_string())
                    .replace("{timestamp}", &r.timestamp.to_string())
                    .replace("{datetime}", &format_ms(r.timestamp))
                    .replace("{headers}", &headers_text(&r.headers))
                    .replace("{key}", &text(r.key.as_ref()))
                    .replace("{value}", &text(r.value.as_ref()));
                out.push('\n');
                out
            }
        }
    }
}

/// Bytes as text (invalid UTF-8 replaced), `null` when absent.
fn text(bytes: Option<&Bytes>) -> String {
    bytes.map_or_else(|| "null".to_owned(), |b| String::from_utf8_lossy(b).into_owned())
}

fn json_text(bytes: Option<&Bytes>) -> Value {
    bytes.map_or(Value::Null, |b| Value::String(String::from_utf8_lossy(b).into_owned()))
}

fn headers_text(headers: &[(String, Option<Bytes>)]) -> String {
    headers.iter().map(|(k, v)| format!("{k}:{}", text(v.as_ref()))).collect::<Vec<_>>().join(",")
}

/// `{"topic","partition","offset","timestamp","timestamp_type","key","value","headers"}`:
/// the same field names `gregor produce --json` reads.
pub(crate) fn json_record(topic: &str, partition: i32, r: &ConsumedRecord) -> Value {
    let headers: Map<String, Value> = r.headers.iter().map(|(k, v)| (k.clone(), json_text(v.as_ref()))).collect();
    json!({
        "topic": topic,
        "partition": partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "timestamp_type": if r.log_append_time { "LogAppendTime" } else { "CreateTime" },
        "key": json_text(r.key.as_ref()),
        "value": json_text(r.value.as_ref()),
        "headers": headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ConsumedRecord {
        ConsumedRecord {
            offset: 7,
            timestamp: 1000,
            log_append_time: false,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![("h".into(), Some(Bytes::from_static(b"1")))],
        }
    }

    #[test]
    fn templates_fill_every_field() {
        let f = Format::new("plain", Some("{key}\\t{value} p={partition} o={offset} ts={timestamp} h={headers}"));
        assert_eq!(f.render("t", 2, &record()), "k\tv p=2 o=7 ts=1000 h=h:1\n");
        assert_eq!(Format::new("plain", None).render("t", 0, &record()), "v\n");
    }

    #[test]
    fn json_lines_carry_every_field() {
        let v: Value = serde_json::from_str(Format::new("json", None).render("t", 1, &record()).trim()).unwrap();
        assert_eq!(v["key"], "k");
        assert_eq!(v["headers"]["h"], "1");
        assert_eq!(v["offset"], 7);
    }
}
