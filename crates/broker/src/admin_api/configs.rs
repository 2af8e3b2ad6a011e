//! Configs for the admin API and the console: every effective topic or broker config
//! with its source (Kafka's DescribeConfigs view), and changes through the same
//! controller command IncrementalAlterConfigs uses, so validation and errors are Kafka's.
//! Secrets (`*.password`, `console.users`, ...) are reported as sensitive without a value.

use crate::config::change::ConfigOp;
use crate::config::defs;
use crate::config::{is_dynamic_broker_key, is_secret_key, ConfigSource, ConfigValue};
use crate::observe::BrokerHandle;

use super::{unknown_topic, AdminError};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntryView {
    pub name: String,
    /// `None` for a sensitive config or one with no value.
    pub value: Option<String>,
    /// Kafka's `ConfigSource` name, e.g. `DYNAMIC_TOPIC_CONFIG`, `DEFAULT_CONFIG`.
    pub source: &'static str,
    pub read_only: bool,
    pub sensitive: bool,
}

/// Kafka's names of `DescribeConfigsResponse.ConfigSource`.
fn source_name(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
        ConfigSource::Default => "DEFAULT_CONFIG",
    }
}

fn entry(value: ConfigValue, read_only: bool) -> ConfigEntryView {
    let sensitive = is_secret_key(&value.name);
    ConfigEntryView {
        source: source_name(value.source),
        value: if sensitive { None } else { value.value },
        name: value.name,
        read_only,
        sensitive,
    }
}

/// A config change: keys to set and keys to return to their default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChange {
    pub set: Vec<(String, String)>,
    pub delete: Vec<String>,
}

impl ConfigChange {
    fn ops(&self) -> Vec<(String, ConfigOp)> {
        let sets = self.set.iter().map(|(k, v)| (k.clone(), ConfigOp::Set(v.clone())));
        sets.chain(self.delete.iter().map(|k| (k.clone(), ConfigOp::Delete))).collect()
    }
}

impl BrokerHandle {
    /// Every topic config, effective value and source.
    pub fn topic_configs(&self, topic: &str) -> Result<Vec<ConfigEntryView>, AdminError> {
        let broker = &self.0;
        let image = broker.image();
        let t = image.topic(topic).ok_or_else(|| unknown_topic(topic))?;
        let config = broker.effective_config();
        Ok(defs::TOPIC_CONFIGS
            .iter()
            .map(|d| {
                let value = config.topic_value(d.name, &t.configs).unwrap_or(ConfigValue {
                    name: d.name.to_owned(),
                    value: None,
                    source: ConfigSource::Default,
                });
                entry(value, false)
            })
            .collect())
    }

    /// This node's broker configs (read-only unless dynamic), secrets without values.
    pub fn broker_configs(&self) -> Vec<ConfigEntryView> {
        let config = self.0.effective_config();
        defs::BROKER_CONFIGS
            .iter()
            .map(|d| entry(config.broker_value(d.name), !is_dynamic_broker_key(d.name)))
            .collect()
    }

    /// Changes a topic's configs as IncrementalAlterConfigs SET and DELETE do.
    pub fn alter_topic_configs(&self, topic: &str, change: &ConfigChange) -> Result<(), AdminError> {
        if self.0.image().topic(topic).is_none() {
            return Err(unknown_topic(topic));
        }
        Ok(self.0.alter_configs((RESOURCE_TOPIC, topic), &change.ops(), false, false)?)
    }

    /// Changes this node's dynamic broker configs (per-broker, stored in the metadata log).
    pub fn alter_broker_configs(&self, change: &ConfigChange) -> Result<(), AdminError> {
        let node = self.0.node_id.to_string();
        Ok(self.0.alter_configs((RESOURCE_BROKER, &node), &change.ops(), false, false)?)
    }
}
