//! ConsumerGroupHeartbeat (KIP-848): the new consumer group protocol, where the
//! coordinator computes assignments and each member reconciles towards its target
//! through heartbeats. As in Kafka, it needs READ on the group, and a subscription
//! naming a topic the member may not DESCRIBE is refused with TOPIC_AUTHORIZATION_FAILED.

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedTopic;
use gregor_protocol::kafka_protocol::messages::consumer_group_heartbeat_response::TopicPartitions as AssignedTopic;
use gregor_protocol::kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{caller, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse, BrokerError> {
    let group = request.group_id.to_string();
    // Operators debugging a rebalance (RUST_LOG=gregor_broker=debug) see each step of it.
    tracing::debug!(
        group,
        member = %request.member_id,
        epoch = request.member_epoch,
        owned = ?request.topic_partitions.as_ref().map(|t| owned(t)),
        "consumer group heartbeat"
    );
    if !ctx.allowed(Op::Read, Res::Group, &group) {
        return Ok(error_response(ResponseError::GroupAuthorizationFailed));
    }
    let subscribed = request.subscribed_topic_names.iter().flatten();
    if subscribed.clone().any(|t| !ctx.allowed(Op::Describe, Res::Topic, t)) {
        return Ok(error_response(ResponseError::TopicAuthorizationFailed));
    }
    let topics = ctx.broker.topics_view();
    let answer = ctx
        .broker
        .groups
        .request(ctx.broker, &group, caller(ctx), move |shard, meta, now| {
            shard.consumer_group_heartbeat(meta, request, &topics, now)
        })
        .await;
    let response = match answer {
        Ok(GroupResponse::ConsumerGroupHeartbeat(response)) => response,
        Ok(_) => error_response(ResponseError::UnknownServerError),
        Err(e) => error_response(e),
    };
    tracing::debug!(
        group,
        error = response.error_code,
        epoch = response.member_epoch,
        assignment = ?response.assignment.as_ref().map(|a| assigned(&a.topic_partitions)),
        "consumer group heartbeat answered"
    );
    Ok(response)
}

fn owned(topics: &[OwnedTopic]) -> Vec<(String, &[i32])> {
    topics.iter().map(|t| (t.topic_id.to_string(), t.partitions.as_slice())).collect()
}

fn assigned(topics: &[AssignedTopic]) -> Vec<(String, &[i32])> {
    topics.iter().map(|t| (t.topic_id.to_string(), t.partitions.as_slice())).collect()
}

fn error_response(error: ResponseError) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default().with_error_code(error.code())
}
