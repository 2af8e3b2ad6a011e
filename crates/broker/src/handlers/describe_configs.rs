//! DescribeConfigs: every topic or broker key with its effective value, its source and,
//! when asked, its synonyms (topic override, broker setting, default) in Kafka's order.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use gregor_protocol::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use gregor_protocol::kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{str_bytes, RequestContext};
use crate::authz::{Op, Res, CLUSTER_NAME};
use crate::broker::Broker;
use crate::config::defs::{self, ConfigType};
use crate::config::BrokerConfig;
use crate::config::{ConfigSource, ConfigValue};
use crate::BrokerError;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeConfigsRequest,
) -> Result<DescribeConfigsResponse, BrokerError> {
    let results = request
        .resources
        .iter()
        .map(|r| match refusal(ctx, Op::DescribeConfigs, r.resource_type, &r.resource_name) {
            Some((e, message)) => DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(message))),
            None => describe(ctx.broker, r, request.include_synonyms, ctx.api_version),
        })
        .collect();
    Ok(DescribeConfigsResponse::default().with_results(results))
}

/// The error (and Kafka's message for it) when the caller may not do `op` (DESCRIBE_CONFIGS
/// or ALTER_CONFIGS) on a config resource: topics on the topic, brokers, broker loggers and
/// client metrics on the cluster, groups on the group, as Kafka checks them. `None` when
/// allowed, or for a resource type the handlers refuse anyway.
pub(crate) fn refusal(
    ctx: &RequestContext<'_>,
    op: Op,
    resource_type: i8,
    name: &str,
) -> Option<(ResponseError, &'static str)> {
    const RESOURCE_BROKER_LOGGER: i8 = 8;
    const RESOURCE_CLIENT_METRICS: i8 = 16;
    const RESOURCE_GROUP: i8 = 32;
    let (res, name, refused) = match resource_type {
        RESOURCE_TOPIC => (Res::Topic, name, (ResponseError::TopicAuthorizationFailed, "Topic authorization failed.")),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER | RESOURCE_CLIENT_METRICS => {
            (Res::Cluster, CLUSTER_NAME, (ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed."))
        }
        RESOURCE_GROUP => (Res::Group, name, (ResponseError::GroupAuthorizationFailed, "Group authorization failed.")),
        _ => return None,
    };
    (!ctx.allowed(op, res, name)).then_some(refused)
}

fn describe(
    broker: &Broker,
    resource: &DescribeConfigsResource,
    synonyms: bool,
    version: i16,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    let config = broker.effective_config();
    let wanted =
        |name: &str| resource.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == name));
    let entries: Vec<Entry> = match resource.resource_type {
        RESOURCE_TOPIC => {
            let image = broker.image();
            let Some(topic) = image.topic(&resource.resource_name) else {
                return error(result, ResponseError::UnknownTopicOrPartition, "unknown topic");
            };
            defs::TOPIC_CONFIGS
                .iter()
                .filter(|d| wanted(d.name))
                .map(|d| topic_entry(&config, d, &topic.configs))
                .collect()
        }
        RESOURCE_BROKER => {
            let name = resource.resource_name.as_str();
            if !name.is_empty() && name != broker.node_id.to_string() {
                return error(result, ResponseError::InvalidRequest, "this broker can only describe itself");
            }
            defs::BROKER_CONFIGS
                .iter()
                .filter(|d| wanted(d.name) && !crate::config::is_secret_key(d.name))
                .map(|d| broker_entry(&config, d))
                .collect()
        }
        _ => return error(result, ResponseError::InvalidRequest, "unsupported resource type"),
    };
    let configs = entries.into_iter().map(|e| e.encode(synonyms, version)).collect();
    result.with_configs(configs)
}

fn error(result: DescribeConfigsResult, e: ResponseError, message: &str) -> DescribeConfigsResult {
    result.with_error_code(e.code()).with_error_message(Some(str_bytes(message)))
}

struct Entry {
    value: ConfigValue,
    kind: ConfigType,
    read_only: bool,
    /// Most specific first, as Kafka lists them.
    synonyms: Vec<ConfigValue>,
}

fn topic_entry(config: &BrokerConfig, def: &defs::TopicConfigDef, overrides: &BTreeMap<String, String>) -> Entry {
    let value = config.topic_value(def.name, overrides).unwrap_or(ConfigValue {
        name: def.name.to_owned(),
        value: None,
        source: ConfigSource::Default,
    });
    let mut synonyms = Vec::new();
    if value.source == ConfigSource::DynamicTopic {
        synonyms.push(value.clone());
    }
    if let Some(syn) = def.broker_synonym {
        let b = config.broker_value(syn);
        if b.source != ConfigSource::Default {
            synonyms.push(b);
        }
        let default = defs::broker_def(syn).and_then(|d| d.default);
        synonyms.push(ConfigValue {
            name: syn.to_owned(),
            value: default.map(str::to_owned),
            source: ConfigSource::Default,
        });
    }
    Entry { value, kind: def.kind, read_only: false, synonyms }
}

fn broker_entry(config: &BrokerConfig, def: &defs::BrokerConfigDef) -> Entry {
    let value = config.broker_value(def.name);
    let mut synonyms = vec![value.clone()];
    if value.source != ConfigSource::Default {
        synonyms.push(ConfigValue {
            name: def.name.to_owned(),
            value: def.default.map(str::to_owned),
            source: ConfigSource::Default,
        });
    }
    let read_only = !crate::config::is_dynamic_broker_key(def.name);
    Entry { value, kind: def.kind, read_only, synonyms }
}

impl Entry {
    fn encode(self, include_synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
        let synonyms = if include_synonyms {
            self.synonyms
                .into_iter()
                .map(|s| {
                    DescribeConfigsSynonym::default()
                        .with_name(str_bytes(&s.name))
                        .with_value(s.value.as_deref().map(str_bytes))
                        .with_source(s.source as i8)
                })
                .collect()
        } else {
            vec![]
        };
        let result = DescribeConfigsResourceResult::default()
            .with_name(str_bytes(&self.value.name))
            .with_value(self.value.value.as_deref().map(str_bytes))
            .with_read_only(self.read_only)
            .with_config_source(self.value.source as i8)
            .with_synonyms(synonyms);
        if version >= 3 {
            result.with_config_type(self.kind.code())
        } else {
            result
        }
    }
}
