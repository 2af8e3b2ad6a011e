//! Broker and topic configuration with Kafka's keys, defaults and precedence.
//!
//! Static broker values come from `--config FILE` (a `server.properties` file) and
//! `--set key=value`; topic overrides come from the metadata image. A topic key's
//! default is its broker synonym's effective value (`retention.ms` ← `log.retention.ms`
//! ← `log.retention.minutes` ← `log.retention.hours`), as in Kafka.

pub(crate) mod change;
pub mod defs;
pub(crate) mod fail_closed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gregor_log::{LogConfig, TimestampType};

use crate::BrokerError;
use defs::{broker_def, topic_def, ConfigType};

/// Where a value came from, with DescribeConfigs' `config_source` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// A resolved value and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValue {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// The broker's configuration: static values, plus the dynamic ones from the metadata
/// log when built with [`BrokerConfig::with_dynamic`].
#[derive(Debug, Clone, Default)]
pub struct BrokerConfig {
    values: BTreeMap<String, String>,
    /// Dynamic broker values (AlterConfigs), which win over static ones.
    dynamic: BTreeMap<String, (String, ConfigSource)>,
}

impl BrokerConfig {
    /// Builds a config from explicit key/values, validating every known key. Unknown keys
    /// are kept and reported once, as Kafka does ("supplied but isn't a known config").
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, BrokerError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        // Refusals first, so that a refused start says one sentence and nothing else.
        fail_closed::check_keys(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let mut values = BTreeMap::new();
        for (k, v) in pairs {
            match broker_def(&k) {
                Some(def) => validate_broker_value(def, &k, &v)?,
                None if is_listener_scoped(&k) => {}
                None => tracing::warn!(key = %k, "the configuration '{k}' was supplied but isn't a known config"),
            }
            let _ = values.insert(k, v);
        }
        let config = Self { values, dynamic: BTreeMap::new() };
        config.check_fail_closed()?;
        Ok(config)
    }

    /// Refuses a configuration that asks for security Gregor cannot give (TLS, SASL, an
    /// authorizer, a secured listener): it must never start as an open broker.
    pub fn check_fail_closed(&self) -> Result<(), BrokerError> {
        fail_closed::check_keys(self.values.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let listeners = self.broker_str("listeners");
        let advertised = self.broker_value("advertised.listeners").value;
        fail_closed::check_listeners(&fail_closed::ListenerSettings {
            listeners: &listeners,
            advertised_listeners: advertised.as_deref(),
            protocol_map: self.explicit("listener.security.protocol.map"),
            controller_listener_names: self.explicit("controller.listener.names"),
            inter_broker_listener_name: self.explicit("inter.broker.listener.name"),
            security_inter_broker_protocol: self.explicit("security.inter.broker.protocol"),
        })
    }

    /// This config overlaid with dynamic broker configs from the metadata image: the
    /// cluster-wide defaults (`None`), then this node's own values, as Kafka layers them.
    pub fn with_dynamic(&self, node_id: i32, dynamic: &BTreeMap<Option<i32>, BTreeMap<String, String>>) -> Self {
        let mut out = self.clone();
        let layers = [(None, ConfigSource::DynamicDefaultBroker), (Some(node_id), ConfigSource::DynamicBroker)];
        for (key, source) in layers {
            for (k, v) in dynamic.get(&key).into_iter().flatten() {
                let _ = out.dynamic.insert(k.clone(), (v.clone(), source));
            }
        }
        out
    }

    /// Reads a Kafka `server.properties` style file.
    pub fn parse_properties_file(path: &Path) -> Result<Vec<(String, String)>, BrokerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| BrokerError::ConfigFile { path: path.to_owned(), source })?;
        Ok(parse_properties(&text))
    }

    /// Sets one key after validating it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), BrokerError> {
        fail_closed::check_keys([(key, value)])?;
        if let Some(def) = broker_def(key) {
            validate_broker_value(def, key, value)?;
        }
        let _ = self.values.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn explicit(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A key as one listener sees it: Kafka's `listener.name.<listener>.<key>` override
    /// (the listener name lower-cased), else the broker-wide value.
    pub fn listener_value(&self, listener: &str, key: &str) -> Option<String> {
        let scoped = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        self.explicit(&scoped).map(str::to_owned).or_else(|| self.broker_value(key).value).filter(|v| !v.is_empty())
    }

    /// A broker key's effective value and source, following Kafka's fallbacks between
    /// related keys (`.ms` over `.minutes` over `.hours`, `log.dirs` over `log.dir`).
    pub fn broker_value(&self, name: &str) -> ConfigValue {
        let source = |explicit: bool| if explicit { ConfigSource::StaticBroker } else { ConfigSource::Default };
        if let Some((v, source)) = self.dynamic.get(name) {
            return ConfigValue { name: name.to_owned(), value: Some(v.clone()), source: *source };
        }
        if let Some(v) = self.explicit(name) {
            return ConfigValue { name: name.to_owned(), value: Some(v.to_owned()), source: source(true) };
        }
        let derived = match name {
            "log.retention.ms" => {
                self.derived_ms(&[("log.retention.minutes", 60_000), ("log.retention.hours", 3_600_000)])
            }
            "log.roll.ms" => self.derived_ms(&[("log.roll.hours", 3_600_000)]),
            "log.roll.jitter.ms" => Some(("0".to_owned(), false)),
            "log.flush.interval.ms" => Some((
                self.broker_str("log.flush.scheduler.interval.ms"),
                self.explicit("log.flush.scheduler.interval.ms").is_some(),
            )),
            "node.id" => self.explicit("broker.id").map(|v| (v.to_owned(), true)),
            "log.dirs" => Some((self.broker_str("log.dir"), self.explicit("log.dir").is_some())),
            _ => None,
        };
        let (value, explicit) = match derived {
            Some((v, explicit)) => (Some(v), explicit),
            None => (broker_def(name).and_then(|d| d.default).map(str::to_owned), false),
        };
        ConfigValue { name: name.to_owned(), value, source: source(explicit) }
    }

    fn derived_ms(&self, fallbacks: &[(&str, i64)]) -> Option<(String, bool)> {
        for (key, factor) in fallbacks {
            let explicit = self.explicit(key).is_some();
            let value = self.broker_value(key).value.and_then(|v| v.parse::<i64>().ok());
            if let Some(v) = value {
                if explicit || fallbacks.last().map(|l| l.0) == Some(key) {
                    return Some(((v.saturating_mul(*factor)).to_string(), explicit));
                }
            }
        }
        None
    }

    pub fn broker_str(&self, name: &str) -> String {
        self.broker_value(name).value.unwrap_or_default()
    }

    pub fn broker_i64(&self, name: &str) -> i64 {
        self.broker_str(name).parse().unwrap_or(0)
    }

    pub fn broker_bool(&self, name: &str) -> bool {
        self.broker_str(name).eq_ignore_ascii_case("true")
    }

    pub fn node_id(&self) -> i32 {
        self.broker_i64("node.id") as i32
    }

    pub fn data_dir(&self) -> PathBuf {
        let dirs = self.broker_str("log.dirs");
        PathBuf::from(dirs.split(',').next().unwrap_or("./gregor-data").trim())
    }

    pub fn max_request_bytes(&self) -> usize {
        usize::try_from(self.broker_i64("socket.request.max.bytes")).unwrap_or(usize::MAX)
    }

    /// `fetch.max.bytes`: the most record bytes one Fetch response holds.
    pub fn max_fetch_response_bytes(&self) -> usize {
        usize::try_from(self.broker_i64("fetch.max.bytes")).unwrap_or(usize::MAX)
    }

    /// `max.connections` and `max.connections.per.ip`.
    pub fn connection_limits(&self) -> (usize, usize) {
        let limit = |key| usize::try_from(self.broker_i64(key)).unwrap_or(0);
        (limit("max.connections"), limit("max.connections.per.ip"))
    }

    /// `connections.max.idle.ms`; `None` (never) when negative, as in Kafka.
    pub fn connections_max_idle(&self) -> Option<std::time::Duration> {
        u64::try_from(self.broker_i64("connections.max.idle.ms")).ok().map(std::time::Duration::from_millis)
    }

    /// Every static key with a value, for DescribeConfigs on the broker.
    pub fn all_broker_values(&self) -> Vec<ConfigValue> {
        defs::BROKER_CONFIGS
            .iter()
            .filter(|d| !SECRET_KEYS.contains(&d.name))
            .map(|d| self.broker_value(d.name))
            .collect()
    }

    /// A topic key's effective value given the topic's overrides.
    pub fn topic_value(&self, name: &str, overrides: &BTreeMap<String, String>) -> Option<ConfigValue> {
        let def = topic_def(name)?;
        if let Some(v) = overrides.get(name) {
            return Some(ConfigValue {
                name: name.to_owned(),
                value: Some(v.clone()),
                source: ConfigSource::DynamicTopic,
            });
        }
        let value = match def.broker_synonym {
            Some(syn) => {
                let v = self.broker_value(syn);
                return Some(ConfigValue { name: name.to_owned(), value: v.value, source: v.source });
            }
            None => def.default.map(str::to_owned),
        };
        Some(ConfigValue { name: name.to_owned(), value, source: ConfigSource::Default })
    }

    /// A topic key's effective value as a number (`None` if it has none).
    pub fn topic_i64(&self, name: &str, overrides: &BTreeMap<String, String>) -> Option<i64> {
        self.topic_value(name, overrides).and_then(|v| v.value).and_then(|v| v.parse().ok())
    }

    /// A topic key's effective value as a boolean.
    pub fn topic_bool(&self, name: &str, overrides: &BTreeMap<String, String>) -> bool {
        self.topic_value(name, overrides).and_then(|v| v.value).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The storage settings of a topic.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let long = |name: &str| {
            self.topic_value(name, overrides)
                .and_then(|v| v.value)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(i64::MAX)
        };
        let timestamp_type =
            match self.topic_value("message.timestamp.type", overrides).and_then(|v| v.value).as_deref() {
                Some("LogAppendTime") => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            };
        let policy = self.topic_value("cleanup.policy", overrides).and_then(|v| v.value).unwrap_or_default();
        let has_policy = |p: &str| policy.split(',').any(|x| x.trim() == p);
        let ratio = self
            .topic_value("min.cleanable.dirty.ratio", overrides)
            .and_then(|v| v.value)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.5);
        LogConfig {
            segment_bytes: long("segment.bytes").max(14) as u64,
            segment_ms: long("segment.ms"),
            segment_index_bytes: long("segment.index.bytes").max(4) as u64,
            index_interval_bytes: long("index.interval.bytes").max(0) as u64,
            retention_ms: long("retention.ms"),
            retention_bytes: long("retention.bytes"),
            flush_interval_messages: long("flush.messages"),
            flush_interval_ms: long("flush.ms"),
            max_message_bytes: long("max.message.bytes").max(0) as u64,
            message_timestamp_type: timestamp_type,
            file_delete_delay_ms: long("file.delete.delay.ms"),
            compact: has_policy("compact"),
            delete: has_policy("delete"),
            min_cleanable_dirty_ratio: ratio,
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            delete_retention_ms: long("delete.retention.ms"),
        }
    }
}

/// `listener.name.<listener>.<key>` (or `.<mechanism>.sasl.jaas.config`) of a key the
/// listeners read: known, though not in the broker key table.
fn is_listener_scoped(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("listener.name.").and_then(|r| r.split_once('.')).map(|(_, r)| r) else {
        return false;
    };
    broker_def(rest).is_some() || rest.ends_with(".sasl.jaas.config")
}

/// Keys that hold passwords or private keys: DescribeConfigs never reports them.
const SECRET_KEYS: [&str; 6] = [
    "console.users",
    "sasl.jaas.config",
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.password",
];

/// Whether `name` holds passwords (never reported), also in its per-listener forms
/// (`listener.name.<listener>[.<mechanism>].sasl.jaas.config`).
pub fn is_secret_key(name: &str) -> bool {
    SECRET_KEYS.iter().any(|k| name == *k || (name.starts_with("listener.name.") && name.ends_with(&format!(".{k}"))))
}

/// Broker keys AlterConfigs may change at run time: the defaults of topic configs.
pub fn is_dynamic_broker_key(name: &str) -> bool {
    defs::TOPIC_CONFIGS.iter().any(|d| d.broker_synonym == Some(name)) || DYNAMIC_BROKER_ONLY.contains(&name)
}

/// Broker keys without a topic synonym that AlterConfigs may change (Kafka's
/// `DynamicConfig.Broker`): the replication throttles a reassignment sets and clears.
const DYNAMIC_BROKER_ONLY: [&str; 2] = ["leader.replication.throttled.rate", "follower.replication.throttled.rate"];

/// Checks a broker key's value beyond its type: values Gregor has no implementation for
/// refuse the start (Kafka fails on a class it cannot load).
fn validate_broker_value(def: &defs::BrokerConfigDef, name: &str, value: &str) -> Result<(), BrokerError> {
    validate(def.kind, def.min, name, value)?;
    if name == "replica.selector.class" {
        gregor_replication::selector::ReplicaSelector::from_class(Some(value)).map_err(BrokerError::InvalidConfig)?;
    }
    Ok(())
}

/// Checks a broker key and value for a dynamic update.
pub fn validate_dynamic_broker_config(name: &str, value: &str) -> Result<(), BrokerError> {
    if let Some(reason) = fail_closed::refusal(name, value) {
        return Err(BrokerError::InvalidConfig(reason));
    }
    let def = broker_def(name).ok_or_else(|| BrokerError::InvalidConfig(format!("unknown broker config '{name}'")))?;
    if !is_dynamic_broker_key(name) {
        return Err(BrokerError::InvalidConfig(format!(
            "'{name}' cannot be updated dynamically; set it in the broker's config"
        )));
    }
    validate(def.kind, def.min, name, value)
}

/// Checks a topic config key and value, as CreateTopics and AlterConfigs must.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), BrokerError> {
    let def = topic_def(name).ok_or_else(|| BrokerError::InvalidConfig(format!("unknown topic config '{name}'")))?;
    validate(def.kind, def.min, name, value)?;
    if name.ends_with(".replication.throttled.replicas") {
        return gregor_replication::quota::parse_throttled_replicas(value, -1)
            .map(drop)
            .map_err(|why| BrokerError::InvalidConfig(format!("invalid value for '{name}': {why}")));
    }
    let allowed: &[&str] = match name {
        "cleanup.policy" => &["delete", "compact", "compact,delete", "delete,compact"],
        "message.timestamp.type" => &["CreateTime", "LogAppendTime"],
        "compression.type" => &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"],
        _ => return Ok(()),
    };
    if allowed.contains(&value.replace(' ', "").as_str()) {
        Ok(())
    } else {
        Err(BrokerError::InvalidConfig(format!(
            "invalid value '{value}' for '{name}': expected one of {}",
            allowed.join(", ")
        )))
    }
}

fn validate(kind: ConfigType, min: Option<i64>, name: &str, value: &str) -> Result<(), BrokerError> {
    let bad = |expected: &str| {
        Err(BrokerError::InvalidConfig(format!("invalid value '{value}' for '{name}': expected {expected}")))
    };
    match kind {
        ConfigType::Int | ConfigType::Short | ConfigType::Long => {
            let parsed = match kind {
                ConfigType::Int => value.trim().parse::<i32>().map(i64::from).ok(),
                ConfigType::Short => value.trim().parse::<i16>().map(i64::from).ok(),
                _ => value.trim().parse::<i64>().ok(),
            };
            match (parsed, min) {
                (None, _) => bad("an integer"),
                (Some(v), Some(m)) if v < m => bad(&format!("a value of at least {m}")),
                _ => Ok(()),
            }
        }
        ConfigType::Double => value.trim().parse::<f64>().map(|_| ()).or_else(|_| bad("a number")),
        ConfigType::Boolean => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => bad("true or false"),
        },
        _ => Ok(()),
    }
}

/// Parses `key=value` lines as Java's `Properties.load` does for the common cases:
/// `#` and `!` comments, `=`, `:` or whitespace separators, trailing-backslash continuation.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':']).or_else(|| entry.find(char::is_whitespace));
        let (k, v) = match split {
            Some(i) => (&entry[..i], &entry[i + 1..]),
            None => (entry.as_str(), ""),
        };
        out.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_properties_text_should_parse_kafka_style() {
        let text = "# comment\n! other\nnum.partitions=3\nlog.dirs : /tmp/x\nlong.value = a\\\n  b\n\n";
        let pairs = parse_properties(text);
        assert_eq!(pairs[0], ("num.partitions".into(), "3".into()));
        assert_eq!(pairs[1], ("log.dirs".into(), "/tmp/x".into()));
        assert_eq!(pairs[2], ("long.value".into(), "ab".into()));
    }

    #[test]
    fn given_retention_hours_should_derive_ms_and_topic_default() {
        let config = BrokerConfig::from_pairs([("log.retention.hours", "1")]).unwrap();
        assert_eq!(config.broker_str("log.retention.ms"), "3600000");
        let v = config.topic_value("retention.ms", &BTreeMap::new()).unwrap();
        assert_eq!(v.value.as_deref(), Some("3600000"));
        assert_eq!(v.source, ConfigSource::StaticBroker);
        let default = BrokerConfig::default();
        assert_eq!(default.broker_str("log.retention.ms"), "604800000");
        assert_eq!(default.broker_str("log.roll.ms"), "604800000");
        assert_eq!(default.topic_value("segment.ms", &BTreeMap::new()).unwrap().source, ConfigSource::Default);
    }

    #[test]
    fn given_bad_values_should_refuse_with_key_name() {
        let err = BrokerConfig::from_pairs([("num.partitions", "zero")]).unwrap_err();
        assert!(err.to_string().contains("num.partitions"));
        assert!(BrokerConfig::from_pairs([("num.partitions", "0")]).is_err());
        assert!(validate_topic_config("cleanup.policy", "compact").is_ok());
        assert!(validate_topic_config("cleanup.policy", "shred").is_err());
        assert!(validate_topic_config("no.such.key", "1").is_err());
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
    }

    #[test]
    fn given_dynamic_values_should_win_over_static_ones() {
        let config = BrokerConfig::from_pairs([("log.retention.ms", "1000")]).unwrap();
        let mut dynamic = BTreeMap::new();
        let _ =
            dynamic.entry(None).or_insert_with(BTreeMap::new).insert("log.retention.ms".to_owned(), "2000".to_owned());
        let layered = config.with_dynamic(0, &dynamic);
        let v = layered.topic_value("retention.ms", &BTreeMap::new()).unwrap();
        assert_eq!((v.value.as_deref(), v.source), (Some("2000"), ConfigSource::DynamicDefaultBroker));
        let _ = dynamic
            .entry(Some(0))
            .or_insert_with(BTreeMap::new)
            .insert("log.retention.ms".to_owned(), "3000".to_owned());
        let v = config.with_dynamic(0, &dynamic).broker_value("log.retention.ms");
        assert_eq!((v.value.as_deref(), v.source), (Some("3000"), ConfigSource::DynamicBroker));
        assert!(validate_dynamic_broker_config("log.retention.ms", "5").is_ok());
        assert!(validate_dynamic_broker_config("node.id", "5").is_err());
    }

    #[test]
    fn given_topic_override_should_shape_log_config() {
        let config = BrokerConfig::default();
        let mut overrides = BTreeMap::new();
        let _ = overrides.insert("segment.bytes".to_owned(), "1024".to_owned());
        let _ = overrides.insert("message.timestamp.type".to_owned(), "LogAppendTime".to_owned());
        let log = config.log_config(&overrides);
        assert_eq!(log.segment_bytes, 1024);
        assert_eq!(log.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(log.retention_ms, 604_800_000);
        assert_eq!(log.max_message_bytes, 1_048_588);
        assert!(log.delete && !log.compact);
        let _ = overrides.insert("cleanup.policy".to_owned(), "compact".to_owned());
        let compacted = config.log_config(&overrides);
        assert!(compacted.compact && !compacted.delete);
        assert_eq!((compacted.delete_retention_ms, compacted.min_cleanable_dirty_ratio), (86_400_000, 0.5));
        let _ = overrides.insert("cleanup.policy".to_owned(), "compact,delete".to_owned());
        let both = config.log_config(&overrides);
        assert!(both.compact && both.delete);
    }
}
