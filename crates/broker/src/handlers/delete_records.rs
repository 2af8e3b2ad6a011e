//! DeleteRecords: moves partitions' log start offsets forward; whole segments below the
//! new start are removed by the next retention pass.

use gregor_protocol::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;

use super::{blocking, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteRecordsRequest,
) -> Result<DeleteRecordsResponse, BrokerError> {
    let broker = ctx.broker.clone();
    // DELETE on each topic, else TOPIC_AUTHORIZATION_FAILED for its partitions.
    let deletable: Vec<bool> = request.topics.iter().map(|t| ctx.allowed(Op::Delete, Res::Topic, &t.name)).collect();
    let topics = blocking(move || {
        request
            .topics
            .iter()
            .zip(deletable)
            .map(|(t, deletable)| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                        let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
                        // Only the leader moves the log start (NOT_LEADER_OR_FOLLOWER elsewhere).
                        let outcome = match broker.leader_partition(&broker.image(), &tp) {
                            _ if !deletable => Err(ResponseError::TopicAuthorizationFailed.code()),
                            Err(e) => Err(e.code()),
                            Ok(partition) => {
                                broker.replicas.delete_records_before(&partition, p.offset).map_err(|e| e.code())
                            }
                        };
                        match outcome {
                            Ok(low_watermark) => result.with_low_watermark(low_watermark),
                            Err(code) => result.with_low_watermark(-1).with_error_code(code),
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default().with_name(t.name.clone()).with_partitions(partitions)
            })
            .collect()
    })
    .await;
    Ok(DeleteRecordsResponse::default().with_topics(topics))
}
