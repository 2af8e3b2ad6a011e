//! TxnOffsetCommit: a consumer's offsets written inside the producer's transaction,
//! visible to OffsetFetch only once the transaction commits. The transaction must
//! already hold the group's `__consumer_offsets` partition (AddOffsetsToTxn).

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, caller, txn_error, RequestContext};
use crate::group_coordinator::OFFSETS_TOPIC;
use crate::BrokerError;

const FENCED_SINCE: i16 = 3;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: TxnOffsetCommitRequest,
) -> Result<TxnOffsetCommitResponse, BrokerError> {
    let version = ctx.api_version;
    let group = request.group_id.to_string();
    let shape: Vec<_> = request
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>()))
        .collect();
    let (broker, id) = (ctx.broker.clone(), request.transactional_id.0.to_string());
    let offsets_partition = (OFFSETS_TOPIC.to_owned(), broker.groups.partition_for(&group));
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let verified = blocking(move || {
        broker.txns.read(&broker, &id, |s| s.verify(&id, producer_id, epoch, &offsets_partition)).and_then(|r| r)
    })
    .await;
    let error = match verified {
        Err(e) => e,
        Ok(()) => {
            let answer = ctx
                .broker
                .groups
                .request(ctx.broker, &group, caller(ctx), move |shard, meta, now| {
                    shard.txn_offset_commit(meta, request, now)
                })
                .await;
            match answer {
                Ok(GroupResponse::TxnOffsetCommit(response)) => return Ok(response),
                Ok(_) => ResponseError::UnknownServerError,
                Err(e) => e,
            }
        }
    };
    let code = txn_error(error, version, FENCED_SINCE);
    let topics = shape
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|p| TxnOffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(code))
                .collect();
            TxnOffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    Ok(TxnOffsetCommitResponse::default().with_topics(topics))
}
