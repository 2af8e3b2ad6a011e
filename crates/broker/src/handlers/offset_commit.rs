//! OffsetCommit: durable once answered (the records are appended before the response).

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{caller, RequestContext};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetCommitRequest,
) -> Result<OffsetCommitResponse, BrokerError> {
    let group = request.group_id.to_string();
    // Kept to answer every partition should the coordinator be unavailable.
    let shape: Vec<_> = request
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.topic_id, t.partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>()))
        .collect();
    let answer = ctx
        .broker
        .groups
        .request(ctx.broker, &group, caller(ctx), move |shard, meta, now| shard.offset_commit(meta, request, now))
        .await;
    let error = match answer {
        Ok(GroupResponse::OffsetCommit(response)) => return Ok(response),
        Ok(_) => ResponseError::UnknownServerError,
        Err(e) => e,
    };
    let topics = shape
        .into_iter()
        .map(|(name, topic_id, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|p| OffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(error.code()))
                .collect();
            OffsetCommitResponseTopic::default().with_name(name).with_topic_id(topic_id).with_partitions(partitions)
        })
        .collect();
    Ok(OffsetCommitResponse::default().with_topics(topics))
}
