//! ElectLeaders (API 43, kafka-leader-election.sh): preferred elections move leadership
//! back to each partition's first replica when it is in sync; unclean ones give a
//! leaderless partition any live replica. Decided by the active controller.

use gregor_metadata::replication_control::{ElectionType, NoElection};
use gregor_protocol::kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use gregor_protocol::kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::authz::Op;
use crate::controller::{ControllerAnswer, ControllerCommand};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: ElectLeadersRequest,
) -> Result<ElectLeadersResponse, BrokerError> {
    if !ctx.allowed_on_cluster(Op::Alter) {
        return Ok(unauthorized(&request, ctx.api_version));
    }
    let election = match request.election_type {
        0 => ElectionType::Preferred,
        1 => ElectionType::Unclean,
        _ => return Ok(ElectLeadersResponse::default().with_error_code(ResponseError::InvalidRequest.code())),
    };
    let partitions = request.topic_partitions.map(|topics| {
        topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.topic.0.to_string(), *p))).collect()
    });
    let broker = ctx.broker.clone();
    let answer =
        blocking(move || broker.metadata.execute(ControllerCommand::ElectLeaders { election, partitions })).await;
    let results = match answer {
        Ok(ControllerAnswer::Elections(results)) => results,
        Ok(_) => Vec::new(),
        Err(e) => return Ok(ElectLeadersResponse::default().with_error_code(e.code())),
    };
    let mut topics: Vec<ReplicaElectionResult> = Vec::new();
    for (topic, partition, outcome) in results {
        let (code, message) = match outcome {
            None => (0, None),
            Some(why) => {
                let (error, text) = refusal(why);
                (error.code(), Some(str_bytes(text)))
            }
        };
        let result =
            PartitionResult::default().with_partition_id(partition).with_error_code(code).with_error_message(message);
        match topics.last_mut().filter(|t| t.topic.0.as_str() == topic) {
            Some(t) => t.partition_result.push(result),
            None => topics.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(str_bytes(&topic)))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    // The reloaded image carries the new leaders back to this broker.
    let broker = ctx.broker.clone();
    let _ = blocking(move || broker.reconcile()).await;
    Ok(ElectLeadersResponse::default().with_replica_election_results(topics))
}

/// ALTER on the cluster refused: as Kafka, CLUSTER_AUTHORIZATION_FAILED for the request
/// (from v1) and for every partition it named.
fn unauthorized(request: &ElectLeadersRequest, version: i16) -> ElectLeadersResponse {
    let code = ResponseError::ClusterAuthorizationFailed.code();
    let results = request
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            let partitions =
                t.partitions.iter().map(|p| PartitionResult::default().with_partition_id(*p).with_error_code(code));
            ReplicaElectionResult::default().with_topic(t.topic.clone()).with_partition_result(partitions.collect())
        })
        .collect();
    let response = ElectLeadersResponse::default().with_replica_election_results(results);
    if version >= 1 {
        response.with_error_code(code)
    } else {
        response
    }
}

fn refusal(why: NoElection) -> (ResponseError, &'static str) {
    match why {
        NoElection::UnknownPartition => (ResponseError::UnknownTopicOrPartition, "no such partition"),
        NoElection::NotNeeded => (ResponseError::ElectionNotNeeded, "the partition already has that leader"),
        NoElection::PreferredNotAvailable => {
            (ResponseError::PreferredLeaderNotAvailable, "the preferred replica is not alive and in sync")
        }
        NoElection::EligibleNotAvailable => (ResponseError::EligibleLeadersNotAvailable, "no replica is alive"),
    }
}
