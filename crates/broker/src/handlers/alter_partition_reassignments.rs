//! AlterPartitionReassignments (API 45, kafka-reassign-partitions.sh --execute and
//! --cancel): moves a partition's replicas to a target list, new replicas first in sync
//! and only then the old ones removed (KIP-455); also how a replication factor grows or
//! shrinks. Decided by the active controller; the leader completes it with the ISR
//! change that brings the last new replica in.

use gregor_protocol::kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use gregor_protocol::kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, TopicName,
};

use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::authz::Op;
use crate::controller::{ControllerAnswer, ControllerCommand};
use crate::BrokerError;

const UNAUTHORIZED: &str = "Cluster authorization failed.";

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterPartitionReassignmentsRequest,
) -> Result<AlterPartitionReassignmentsResponse, BrokerError> {
    // v0 has no field: a change of the replication factor was always allowed.
    let allow_rf_change = ctx.api_version < 1 || request.allow_replication_factor_change;
    let partitions: Vec<(String, i32, Option<Vec<i32>>)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let target = p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
                (t.name.0.to_string(), p.partition_index, target)
            })
        })
        .collect();
    let response = AlterPartitionReassignmentsResponse::default().with_allow_replication_factor_change(allow_rf_change);
    // ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED for the request and every
    // partition it named, as Kafka answers.
    if !ctx.allowed_on_cluster(Op::Alter) {
        let (code, message) = (ResponseError::ClusterAuthorizationFailed.code(), str_bytes(UNAUTHORIZED));
        let topics = request
            .topics
            .iter()
            .map(|t| {
                let partitions = t.partitions.iter().map(|p| {
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(Some(message.clone()))
                });
                ReassignableTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions.collect())
            })
            .collect();
        return Ok(response.with_error_code(code).with_error_message(Some(message)).with_responses(topics));
    }
    let broker = ctx.broker.clone();
    let command = ControllerCommand::AlterReassignments { partitions, allow_rf_change };
    let results = match blocking(move || broker.metadata.execute(command)).await {
        Ok(ControllerAnswer::Reassignments(results)) => results,
        Ok(_) => Vec::new(),
        Err(e) => return Ok(response.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.to_string())))),
    };
    let mut topics: Vec<ReassignableTopicResponse> = Vec::new();
    for (topic, partition, failure) in results {
        let (code, message) = failure.map_or((0, None), |f| (f.code, Some(str_bytes(&f.message))));
        let result = ReassignablePartitionResponse::default()
            .with_partition_index(partition)
            .with_error_code(code)
            .with_error_message(message);
        match topics.last_mut().filter(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(result),
            None => topics.push(
                ReassignableTopicResponse::default()
                    .with_name(TopicName(str_bytes(&topic)))
                    .with_partitions(vec![result]),
            ),
        }
    }
    // The reloaded image carries the new replicas to this broker (it may be one of them).
    let broker = ctx.broker.clone();
    let _ = blocking(move || broker.reconcile()).await;
    Ok(response.with_responses(topics))
}
