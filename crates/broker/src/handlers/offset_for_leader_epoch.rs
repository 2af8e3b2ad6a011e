//! OffsetForLeaderEpoch: where a leader epoch ended, so a client (or follower) that saw an
//! older leader can detect and truncate a diverged log (KIP-101, KIP-320).

use gregor_protocol::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;

use super::RequestContext;
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetForLeaderEpochRequest,
) -> Result<OffsetForLeaderEpochResponse, BrokerError> {
    // Followers have CLUSTER_ACTION; clients (KIP-320) need DESCRIBE on the topic.
    let cluster_action = ctx.allowed_on_cluster(Op::ClusterAction);
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let described = cluster_action || ctx.allowed(Op::Describe, Res::Topic, &t.topic);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let result =
                        EpochEndOffset::default().with_partition(p.partition).with_leader_epoch(-1).with_end_offset(-1);
                    if !described {
                        return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let tp = TopicPartition::new(t.topic.as_str(), p.partition);
                    let partition = match ctx.broker.leader_partition(&ctx.broker.image(), &tp) {
                        Ok(partition) => partition,
                        Err(e) => return result.with_error_code(e.code()),
                    };
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != partition.leader_epoch {
                        let e = if p.current_leader_epoch > partition.leader_epoch {
                            ResponseError::UnknownLeaderEpoch
                        } else {
                            ResponseError::FencedLeaderEpoch
                        };
                        return result.with_error_code(e.code());
                    }
                    match ctx.broker.replicas.end_offset_for_epoch(&partition, p.leader_epoch) {
                        Some((epoch, end_offset)) => result.with_leader_epoch(epoch).with_end_offset(end_offset),
                        None => result,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions)
        })
        .collect();
    Ok(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
