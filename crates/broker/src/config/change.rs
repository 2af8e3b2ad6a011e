//! AlterConfigs and IncrementalAlterConfigs as one decision: the records that turn a
//! resource's current dynamic configs into the requested ones, after validation.

use std::collections::BTreeMap;

use gregor_metadata::{ConfigResource, MetadataImage, MetadataRecord};

use super::defs::{self, ConfigType};
use super::{validate_dynamic_broker_config, validate_topic_config, BrokerConfig};
use crate::BrokerError;

pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// One requested change (Kafka's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum ConfigOp {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

impl ConfigOp {
    /// From IncrementalAlterConfigs' `config_operation` code.
    pub(crate) fn from_code(code: i8, value: Option<String>) -> Result<Self, BrokerError> {
        let value = || value.clone().ok_or_else(|| BrokerError::InvalidRequest("the operation needs a value".into()));
        Ok(match code {
            0 => Self::Set(value()?),
            1 => Self::Delete,
            2 => Self::Append(value()?),
            3 => Self::Subtract(value()?),
            other => return Err(BrokerError::InvalidRequest(format!("unknown config operation {other}"))),
        })
    }
}

/// The metadata records for `changes` on one resource. With `replace_all` (legacy
/// AlterConfigs) every dynamic value not named is removed.
pub(crate) fn plan(
    image: &MetadataImage,
    config: &BrokerConfig,
    (resource_type, resource_name): (i8, &str),
    changes: &[(String, ConfigOp)],
    replace_all: bool,
) -> Result<Vec<MetadataRecord>, BrokerError> {
    let (resource, current) = resolve(image, resource_type, resource_name)?;
    let mut next = if replace_all { BTreeMap::new() } else { current.clone() };
    for (name, op) in changes {
        let is_topic = matches!(resource, ConfigResource::Topic(_));
        let effective = || {
            let value = if is_topic {
                config.topic_value(name, &current).and_then(|v| v.value)
            } else {
                config.broker_value(name).value
            };
            value.unwrap_or_default()
        };
        let value = match op {
            ConfigOp::Set(v) => Some(v.clone()),
            ConfigOp::Delete => None,
            ConfigOp::Append(v) | ConfigOp::Subtract(v) => Some(edit_list(name, is_topic, &effective(), v, op)?),
        };
        match &value {
            Some(v) if is_topic => validate_topic_config(name, v)?,
            Some(v) => validate_dynamic_broker_config(name, v)?,
            None if is_topic && defs::topic_def(name).is_none() => {
                return Err(BrokerError::InvalidConfig(format!("unknown topic config '{name}'")))
            }
            None => {}
        }
        match value {
            Some(v) => {
                let _ = next.insert(name.clone(), v);
            }
            None => {
                let _ = next.remove(name);
            }
        }
    }
    Ok(diff(&resource, &current, &next))
}

fn resolve(
    image: &MetadataImage,
    resource_type: i8,
    name: &str,
) -> Result<(ConfigResource, BTreeMap<String, String>), BrokerError> {
    match resource_type {
        RESOURCE_TOPIC => {
            let topic = image.topic(name).ok_or_else(|| BrokerError::UnknownTopicOrPartition(name.to_owned()))?;
            Ok((ConfigResource::Topic(name.to_owned()), topic.configs.clone()))
        }
        RESOURCE_BROKER => {
            // Any registered broker: the active controller stores every broker's configs.
            let key = match name {
                "" => None,
                id => match id.parse::<i32>() {
                    Ok(id) if image.brokers.contains_key(&id) => Some(id),
                    _ => return Err(BrokerError::InvalidRequest(format!("broker '{id}' is not a registered broker"))),
                },
            };
            Ok((ConfigResource::Broker(key), image.broker_configs.get(&key).cloned().unwrap_or_default()))
        }
        other => Err(BrokerError::InvalidRequest(format!("config resource type {other} cannot be altered"))),
    }
}

/// APPEND / SUBTRACT apply to list configs only, element by element.
fn edit_list(name: &str, is_topic: bool, current: &str, value: &str, op: &ConfigOp) -> Result<String, BrokerError> {
    let kind = if is_topic { defs::topic_def(name).map(|d| d.kind) } else { defs::broker_def(name).map(|d| d.kind) };
    if kind != Some(ConfigType::List) {
        return Err(BrokerError::InvalidConfig(format!("'{name}' is not a list: APPEND and SUBTRACT do not apply")));
    }
    let mut items: Vec<String> =
        current.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    for v in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match op {
            ConfigOp::Append(_) if !items.iter().any(|i| i == v) => items.push(v.to_owned()),
            ConfigOp::Subtract(_) => items.retain(|i| i != v),
            _ => {}
        }
    }
    Ok(items.join(","))
}

fn diff(
    resource: &ConfigResource,
    current: &BTreeMap<String, String>,
    next: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let record = |name: &str, value: Option<String>| MetadataRecord::Config {
        resource: resource.clone(),
        name: name.to_owned(),
        value,
    };
    let removed = current.keys().filter(|k| !next.contains_key(*k)).map(|k| record(k, None));
    let set = next.iter().filter(|(k, v)| current.get(*k) != Some(*v)).map(|(k, v)| record(k, Some(v.clone())));
    removed.chain(set).collect()
}
