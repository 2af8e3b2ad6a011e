//! Metadata: brokers, controller and topic/partition layout; creates missing topics when
//! `auto.create.topics.enable` and the client allow it.

use gregor_metadata::Uuid;
use gregor_metadata::{control, MetadataImage, TopicImage};
use gregor_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{authorized_operations, blocking, str_bytes, RequestContext};
use crate::authz::{Op, Res, CLUSTER_NAME};
use crate::BrokerError;

/// Topic names starting with `__` are Kafka's internal topics.
pub(crate) fn is_internal(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

/// The `*_authorized_operations` bit field of the caller on a resource, as Kafka's
/// `AuthHelper.authorizedOperations`: every supported operation (`all`) without an
/// authorizer, else the ones the authorizer allows.
pub(crate) fn authorized_ops(ctx: &RequestContext<'_>, res: Res, name: &str, all: i32) -> i32 {
    if !ctx.broker.authz.is_enabled() {
        return all;
    }
    ctx.broker.authz.authorizer(&ctx.broker.image()).authorized_operations(ctx.principal, ctx.host, res, name)
}

/// The cluster's authorized operations for Metadata and DescribeCluster: none without
/// DESCRIBE on the cluster, as Kafka answers.
pub(crate) fn cluster_authorized_ops(ctx: &RequestContext<'_>) -> i32 {
    if ctx.allowed_on_cluster(Op::Describe) {
        authorized_ops(ctx, Res::Cluster, CLUSTER_NAME, authorized_operations::CLUSTER)
    } else {
        0
    }
}

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: MetadataRequest,
) -> Result<MetadataResponse, BrokerError> {
    // v0 has no null: an empty list means all topics. v1+ sends null for all topics.
    let wanted = match request.topics {
        Some(t) if !(ctx.api_version == 0 && t.is_empty()) => Some(t),
        _ => None,
    };
    let auto_create = (ctx.api_version < 4 || request.allow_auto_topic_creation)
        && ctx.broker.config.broker_bool("auto.create.topics.enable");
    let mut topics = Vec::new();
    match wanted {
        None => {
            // All topics: only the ones the caller may describe, as Kafka lists them.
            let image = ctx.broker.image();
            let authz = ctx.broker.authz.is_enabled();
            topics.extend(
                image
                    .topic_names_sorted()
                    .iter()
                    .filter_map(|n| image.topic(n))
                    .filter(|t| !authz || ctx.allowed(Op::Describe, Res::Topic, &t.name))
                    .map(|t| topic_response(t, &image)),
            );
        }
        Some(requested) => {
            for t in requested {
                topics.push(requested_topic(ctx, t.name.map(|n| n.0.to_string()), t.topic_id, auto_create).await?);
            }
        }
    }
    let image = ctx.broker.image();
    // Fenced brokers (missed heartbeats) are left out, as Kafka's brokers list only
    // unfenced ones.
    // Each broker at its endpoint of the listener this request came on (a broker
    // without that listener is left out, as Kafka leaves it out).
    let brokers = image
        .live_brokers()
        .filter_map(|b| {
            let (host, port) = b.endpoint(ctx.listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.node_id))
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_rack(b.rack.as_deref().map(str_bytes)),
            )
        })
        .collect();
    if ctx.api_version >= 8 && request.include_topic_authorized_operations {
        let authz = ctx.broker.authz.is_enabled();
        for t in &mut topics {
            // With an authorizer, topics refused (TOPIC_AUTHORIZATION_FAILED) keep the
            // default, as Kafka sets the field only on the topics it describes.
            if !authz {
                t.topic_authorized_operations = authorized_operations::TOPIC;
            } else if t.error_code != ResponseError::TopicAuthorizationFailed.code() {
                if let Some(name) = t.name.as_ref() {
                    t.topic_authorized_operations =
                        authorized_ops(ctx, Res::Topic, name.0.as_str(), authorized_operations::TOPIC);
                }
            }
        }
    }
    let cluster_operations = if (8..=10).contains(&ctx.api_version) && request.include_cluster_authorized_operations {
        cluster_authorized_ops(ctx)
    } else {
        authorized_operations::NOT_REQUESTED
    };
    Ok(MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&ctx.broker.cluster_id)))
        .with_controller_id(BrokerId(ctx.broker.node_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_operations))
}

async fn requested_topic(
    ctx: &RequestContext<'_>,
    name: Option<String>,
    topic_id: Uuid,
    auto_create: bool,
) -> Result<MetadataResponseTopic, BrokerError> {
    let image = ctx.broker.image();
    let refused = ResponseError::TopicAuthorizationFailed.code();
    let Some(name) = name else {
        return Ok(match image.topic_by_id(&topic_id) {
            // Topic ids are not secret: Kafka answers the id with TOPIC_AUTHORIZATION_FAILED.
            Some(t) if !ctx.allowed(Op::Describe, Res::Topic, &t.name) => {
                MetadataResponseTopic::default().with_topic_id(topic_id).with_error_code(refused)
            }
            Some(t) => topic_response(t, &image),
            None => MetadataResponseTopic::default()
                .with_topic_id(topic_id)
                .with_error_code(ResponseError::UnknownTopicId.code()),
        });
    };
    // DESCRIBE before existence: whether a topic exists is not told to who may not see it.
    if !ctx.allowed(Op::Describe, Res::Topic, &name) {
        return Ok(MetadataResponseTopic::default()
            .with_name(Some(TopicName(str_bytes(&name))))
            .with_error_code(refused));
    }
    if let Some(t) = image.topic(&name) {
        return Ok(topic_response(t, &image));
    }
    let error = |e: ResponseError| {
        MetadataResponseTopic::default().with_name(Some(TopicName(str_bytes(&name)))).with_error_code(e.code())
    };
    if control::validate_topic_name(&name).is_err() {
        return Ok(error(ResponseError::InvalidTopicException));
    }
    if !auto_create || is_internal(&name) {
        return Ok(error(ResponseError::UnknownTopicOrPartition));
    }
    // Auto-creation needs CREATE on the cluster or on the topic.
    if !ctx.allowed_on_cluster(Op::Create) && !ctx.allowed(Op::Create, Res::Topic, &name) {
        return Ok(error(ResponseError::TopicAuthorizationFailed));
    }
    let broker = ctx.broker.clone();
    let created = name.clone();
    if let Err(e) = blocking(move || broker.auto_create_topic(&created)).await {
        tracing::warn!(topic = %name, error = %e, "auto-creating topic failed");
        return Ok(error(e.response_error()));
    }
    let image = ctx.broker.image();
    Ok(image.topic(&name).map_or_else(|| error(ResponseError::LeaderNotAvailable), |t| topic_response(t, &image)))
}

pub(crate) fn topic_response(topic: &TopicImage, image: &MetadataImage) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .values()
        .map(|p| {
            let leader_alive = image.brokers.get(&p.leader).is_some_and(|b| !b.fenced);
            MetadataResponsePartition::default()
                .with_error_code(if leader_alive { 0 } else { ResponseError::LeaderNotAvailable.code() })
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(is_internal(&topic.name))
        .with_partitions(partitions)
}
