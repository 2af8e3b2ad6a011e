//! OffsetCommit: durable once answered (the records are appended before the response).
//! As in Kafka, committing needs READ on the group and READ on each topic.

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{caller, str_bytes, take_unknown_partitions, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    mut request: OffsetCommitRequest,
) -> Result<OffsetCommitResponse, BrokerError> {
    let group = request.group_id.to_string();
    if !ctx.allowed(Op::Read, Res::Group, &group) {
        let topics = request.topics.into_iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
            answer_topic(t.name, t.topic_id, partitions, ResponseError::GroupAuthorizationFailed)
        });
        return Ok(OffsetCommitResponse::default().with_topics(topics.collect()));
    }
    // Topics the caller may not READ are answered TOPIC_AUTHORIZATION_FAILED, before
    // the unknown ones, as in Kafka.
    let (allowed, denied): (Vec<_>, Vec<_>) =
        std::mem::take(&mut request.topics).into_iter().partition(|t| ctx.allowed(Op::Read, Res::Topic, &t.name));
    request.topics = allowed;
    let denied = denied.into_iter().map(|t| {
        let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
        answer_topic(t.name, t.topic_id, partitions, ResponseError::TopicAuthorizationFailed)
    });
    let unknown = take_unknown_partitions(
        ctx.broker,
        &mut request.topics,
        |t| (t.name.as_str(), &mut t.partitions),
        |p| p.partition_index,
    );
    let unknown = unknown.into_iter().map(|(name, partitions)| {
        answer_topic(
            TopicName(str_bytes(&name)),
            Default::default(),
            partitions,
            ResponseError::UnknownTopicOrPartition,
        )
    });
    let refused: Vec<_> = denied.chain(unknown).collect();
    if request.topics.is_empty() {
        return Ok(OffsetCommitResponse::default().with_topics(refused));
    }
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
    let mut response = match answer {
        Ok(GroupResponse::OffsetCommit(response)) => response,
        other => {
            let error = other.err().unwrap_or(ResponseError::UnknownServerError);
            let topics =
                shape.into_iter().map(|(name, topic_id, partitions)| answer_topic(name, topic_id, partitions, error));
            OffsetCommitResponse::default().with_topics(topics.collect())
        }
    };
    response.topics.extend(refused);
    Ok(response)
}

fn answer_topic(
    name: TopicName,
    topic_id: gregor_metadata::Uuid,
    partitions: Vec<i32>,
    error: ResponseError,
) -> OffsetCommitResponseTopic {
    let partitions = partitions
        .into_iter()
        .map(|p| OffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(error.code()))
        .collect();
    OffsetCommitResponseTopic::default().with_name(name).with_topic_id(topic_id).with_partitions(partitions)
}
