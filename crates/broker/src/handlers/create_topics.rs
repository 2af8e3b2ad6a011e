//! CreateTopics: validated topic creation through the metadata log.

use gregor_metadata::control::{self, NewTopic};
use gregor_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
use gregor_protocol::kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use gregor_protocol::kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::authz::{Op, Res};
use crate::broker::Broker;
use crate::config::{defs::TOPIC_CONFIGS, validate_topic_config, ConfigSource};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: CreateTopicsRequest,
) -> Result<CreateTopicsResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    // As Kafka: CREATE on the cluster or on the topic; the configs in the answer need
    // DESCRIBE_CONFIGS on the topic.
    let on_cluster = ctx.allowed_on_cluster(Op::Create);
    let authorized: Vec<Authorized> = request
        .topics
        .iter()
        .map(|t| Authorized {
            create: on_cluster || ctx.allowed(Op::Create, Res::Topic, &t.name),
            describe_configs: ctx.allowed(Op::DescribeConfigs, Res::Topic, &t.name),
        })
        .collect();
    let topics = blocking(move || {
        request
            .topics
            .iter()
            .zip(authorized)
            .map(|(t, authorized)| create_one(&broker, t, request.validate_only, version, authorized))
            .collect()
    })
    .await;
    Ok(CreateTopicsResponse::default().with_topics(topics))
}

/// What the caller may do with one topic of the request.
#[derive(Debug, Clone, Copy)]
struct Authorized {
    create: bool,
    describe_configs: bool,
}

fn create_one(
    broker: &Broker,
    t: &CreatableTopic,
    validate_only: bool,
    version: i16,
    authorized: Authorized,
) -> CreatableTopicResult {
    let result =
        CreatableTopicResult::default().with_name(t.name.clone()).with_num_partitions(-1).with_replication_factor(-1);
    if !authorized.create {
        return result
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("Authorization failed.")));
    }
    let topic = match new_topic(broker, t) {
        Ok(topic) => topic,
        Err(e) => return failed(result, &e),
    };
    let outcome = if validate_only {
        control::create_topic(&broker.image(), &topic).map(|_| ()).map_err(BrokerError::from)
    } else {
        broker.create_topic(&topic)
    };
    if let Err(e) = outcome {
        return failed(result, &e);
    }
    let image = broker.image();
    let topic_id = image.topic(&topic.name).map(|i| i.topic_id).unwrap_or_default();
    let result = result
        .with_topic_id(topic_id)
        .with_num_partitions(topic.num_partitions)
        .with_replication_factor(topic.replication_factor as i16);
    if version < 5 {
        return result;
    }
    if !authorized.describe_configs {
        return result
            .with_topic_config_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_configs(Some(Vec::new()));
    }
    let overrides = topic.configs.iter().cloned().collect();
    let configs = TOPIC_CONFIGS
        .iter()
        .filter_map(|d| broker.config.topic_value(d.name, &overrides))
        .map(|v| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(&v.name))
                .with_value(v.value.as_deref().map(str_bytes))
                .with_config_source(if v.source == ConfigSource::DynamicTopic { 1 } else { v.source as i8 })
        })
        .collect();
    result.with_configs(Some(configs))
}

/// The request entry with defaults resolved and configs validated.
fn new_topic(broker: &Broker, t: &CreatableTopic) -> Result<NewTopic, BrokerError> {
    let mut configs = Vec::new();
    for c in &t.configs {
        let value = c
            .value
            .as_deref()
            .ok_or_else(|| BrokerError::InvalidConfig(format!("null value for '{}'", c.name.as_str())))?;
        validate_topic_config(&c.name, value)?;
        configs.push((c.name.to_string(), value.to_owned()));
    }
    let assignments: Vec<(i32, Vec<i32>)> =
        t.assignments.iter().map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect())).collect();
    if !assignments.is_empty() && (t.num_partitions != -1 || t.replication_factor != -1) {
        return Err(BrokerError::InvalidRequest(
            "give either replica assignments or partitions and replication factor".into(),
        ));
    }
    let num_partitions = match (t.num_partitions, assignments.len()) {
        (-1, 0) => broker.config.broker_i64("num.partitions") as i32,
        (-1, n) => n as i32,
        (n, _) => n,
    };
    let replication_factor = match (t.replication_factor, assignments.first()) {
        (-1, None) => broker.config.broker_i64("default.replication.factor") as i32,
        (-1, Some((_, replicas))) => replicas.len() as i32,
        (n, _) => i32::from(n),
    };
    Ok(NewTopic { name: t.name.to_string(), num_partitions, replication_factor, assignments, configs })
}

fn failed(result: CreatableTopicResult, e: &BrokerError) -> CreatableTopicResult {
    let code = match e {
        BrokerError::InvalidRequest(_) => ResponseError::InvalidRequest.code(),
        other => other.code(),
    };
    result.with_error_code(code).with_error_message(Some(str_bytes(&e.to_string())))
}
