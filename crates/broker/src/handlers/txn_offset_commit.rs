//! TxnOffsetCommit: a consumer's offsets written inside the producer's transaction,
//! visible to OffsetFetch only once the transaction commits. The transaction must
//! already hold the group's `__consumer_offsets` partition (AddOffsetsToTxn). As in
//! Kafka, it needs WRITE on the transactional id, READ on the group and on each topic.

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic;
use gregor_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{TopicName, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;

use super::{blocking, caller, str_bytes, take_unknown_partitions, txn_error, RequestContext};
use crate::authz::{Op, Res};
use crate::group_coordinator::OFFSETS_TOPIC;
use crate::BrokerError;

const FENCED_SINCE: i16 = 3;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    mut request: TxnOffsetCommitRequest,
) -> Result<TxnOffsetCommitResponse, BrokerError> {
    let version = ctx.api_version;
    let group = request.group_id.to_string();
    let refused = if !ctx.allowed(Op::Write, Res::TransactionalId, &request.transactional_id) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.allowed(Op::Read, Res::Group, &group) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(error) = refused {
        return Ok(failed(shape_of(&request.topics), error.code()));
    }
    // Topics the caller may not READ are answered TOPIC_AUTHORIZATION_FAILED, before
    // the unknown ones, as in Kafka.
    let (allowed, denied): (Vec<_>, Vec<_>) =
        std::mem::take(&mut request.topics).into_iter().partition(|t| ctx.allowed(Op::Read, Res::Topic, &t.name));
    request.topics = allowed;
    let denied = shape_of(&denied)
        .into_iter()
        .map(|(name, partitions)| answer_topic(name, partitions, ResponseError::TopicAuthorizationFailed.code()));
    let unknown = take_unknown_partitions(
        ctx.broker,
        &mut request.topics,
        |t| (t.name.as_str(), &mut t.partitions),
        |p| p.partition_index,
    );
    let unknown = unknown.into_iter().map(|(name, partitions)| {
        answer_topic(TopicName(str_bytes(&name)), partitions, ResponseError::UnknownTopicOrPartition.code())
    });
    let refused: Vec<_> = denied.chain(unknown).collect();
    if request.topics.is_empty() {
        return Ok(TxnOffsetCommitResponse::default().with_topics(refused));
    }
    let shape = shape_of(&request.topics);
    let (broker, id) = (ctx.broker.clone(), request.transactional_id.0.to_string());
    let offsets_partition = TopicPartition::new(OFFSETS_TOPIC, broker.groups.partition_for(&group));
    let producer = (request.producer_id.0, request.producer_epoch);
    // The transaction coordinator of the id may be another broker than this group's.
    let verified =
        blocking(move || crate::inter_broker::verify_in_transaction(&broker, &id, producer, &offsets_partition)).await;
    let mut response = match verified {
        Err(e) => failed(shape, txn_error(e, version, FENCED_SINCE)),
        Ok(()) => {
            let answer = ctx
                .broker
                .groups
                .request(ctx.broker, &group, caller(ctx), move |shard, meta, now| {
                    shard.txn_offset_commit(meta, request, now)
                })
                .await;
            match answer {
                Ok(GroupResponse::TxnOffsetCommit(response)) => response,
                Ok(_) => failed(shape, ResponseError::UnknownServerError.code()),
                Err(e) => failed(shape, txn_error(e, version, FENCED_SINCE)),
            }
        }
    };
    response.topics.extend(refused);
    Ok(response)
}

/// Each topic of a request with its partitions.
fn shape_of(topics: &[TxnOffsetCommitRequestTopic]) -> Vec<(TopicName, Vec<i32>)> {
    topics.iter().map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.partition_index).collect())).collect()
}

/// Every partition of the request answered with one error.
fn failed(shape: Vec<(TopicName, Vec<i32>)>, code: i16) -> TxnOffsetCommitResponse {
    let topics = shape.into_iter().map(|(name, partitions)| answer_topic(name, partitions, code));
    TxnOffsetCommitResponse::default().with_topics(topics.collect())
}

fn answer_topic(name: TopicName, partitions: Vec<i32>, code: i16) -> TxnOffsetCommitResponseTopic {
    let partitions = partitions
        .into_iter()
        .map(|p| TxnOffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(code))
        .collect();
    TxnOffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
}
