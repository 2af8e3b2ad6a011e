//! ListPartitionReassignments (API 46, kafka-reassign-partitions.sh --verify and
//! --list): the partitions whose reassignment is in progress, with their replicas and
//! the ones being added and removed, from this broker's copy of the metadata.

use gregor_metadata::reassignment;
use gregor_protocol::kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use gregor_protocol::kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};

use gregor_protocol::kafka_protocol::ResponseError;

use super::{str_bytes, RequestContext};
use crate::authz::Op;
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: ListPartitionReassignmentsRequest,
) -> Result<ListPartitionReassignmentsResponse, BrokerError> {
    if !ctx.allowed_on_cluster(Op::Describe) {
        return Ok(ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("Cluster authorization failed."))));
    }
    let image = ctx.broker.image();
    let asked = |topic: &str, partition: i32| {
        request.topics.as_ref().is_none_or(|topics| {
            topics.iter().any(|t| t.name.0.as_str() == topic && t.partition_indexes.contains(&partition))
        })
    };
    let ids = |brokers: &[i32]| brokers.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for (topic, p) in reassignment::ongoing(&image).into_iter().filter(|(t, p)| asked(t, p.partition)) {
        let ongoing = OngoingPartitionReassignment::default()
            .with_partition_index(p.partition)
            .with_replicas(ids(&p.replicas))
            .with_adding_replicas(ids(&p.adding_replicas))
            .with_removing_replicas(ids(&p.removing_replicas));
        match topics.last_mut().filter(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(ongoing),
            None => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(&topic)))
                    .with_partitions(vec![ongoing]),
            ),
        }
    }
    Ok(ListPartitionReassignmentsResponse::default().with_topics(topics))
}
