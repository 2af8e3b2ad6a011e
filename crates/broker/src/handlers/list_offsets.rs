//! ListOffsets: earliest, latest, max-timestamp and by-timestamp offset lookups.

use gregor_protocol::kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use gregor_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use gregor_protocol::kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;

use super::{blocking, RequestContext, READ_COMMITTED};
use crate::authz::{Op, Res};
use crate::broker::Broker;
use crate::BrokerError;

/// Kafka's special timestamps (`ListOffsetsRequest.*_TIMESTAMP`).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    // DESCRIBE on each topic, else TOPIC_AUTHORIZATION_FAILED for its partitions.
    let described: Vec<bool> = request.topics.iter().map(|t| ctx.allowed(Op::Describe, Res::Topic, &t.name)).collect();
    let topics = blocking(move || {
        request
            .topics
            .into_iter()
            .zip(described)
            .map(|(t, described)| {
                let read_committed = request.isolation_level == READ_COMMITTED;
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        if described {
                            lookup(&broker, &t.name.0, p, version, read_committed)
                        } else {
                            ListOffsetsPartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_timestamp(-1)
                                .with_offset(-1)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
            })
            .collect()
    })
    .await;
    Ok(ListOffsetsResponse::default().with_topics(topics))
}

/// One partition's lookup. read_committed callers see nothing at or above the last
/// stable offset, as Kafka bounds them.
fn lookup(
    broker: &Broker,
    topic: &str,
    p: &ListOffsetsPartition,
    version: i16,
    read_committed: bool,
) -> ListOffsetsPartitionResponse {
    let base = ListOffsetsPartitionResponse::default()
        .with_partition_index(p.partition_index)
        .with_timestamp(-1)
        .with_offset(-1);
    let partition = match broker.leader_partition(&broker.image(), &TopicPartition::new(topic, p.partition_index)) {
        Ok(partition) => partition,
        Err(e) => return base.with_error_code(e.code()),
    };
    if p.current_leader_epoch >= 0 && p.current_leader_epoch != partition.leader_epoch {
        let e = if p.current_leader_epoch > partition.leader_epoch {
            ResponseError::UnknownLeaderEpoch
        } else {
            ResponseError::FencedLeaderEpoch
        };
        return base.with_error_code(e.code());
    }
    let (start, hw, lso) = broker.replicas.offsets(&partition);
    let fetchable = if read_committed { lso } else { hw };
    let found = match p.timestamp {
        LATEST => Ok(Some((-1, fetchable))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((-1, start))),
        LATEST_TIERED => Ok(Some((-1, -1))),
        MAX_TIMESTAMP => broker.replicas.max_timestamp(&partition).map(|o| o.map(|t| (t.timestamp_ms, t.offset))),
        ts if ts >= 0 => {
            broker.replicas.offset_for_timestamp(&partition, ts).map(|o| o.map(|t| (t.timestamp_ms, t.offset)))
        }
        _ => return base.with_error_code(ResponseError::InvalidRequest.code()),
    };
    match found.map(|f| f.filter(|(timestamp, offset)| *timestamp == -1 || *offset < fetchable)) {
        Ok(Some((timestamp, offset))) => {
            let response = base.with_timestamp(timestamp).with_offset(offset);
            if version >= 4 {
                response.with_leader_epoch(partition.leader_epoch)
            } else {
                response
            }
        }
        Ok(None) => base,
        Err(e) => base.with_error_code(e.code()),
    }
}
