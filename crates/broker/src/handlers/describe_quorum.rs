//! DescribeQuorum (API 55): the metadata quorum as its active controller sees it: leader,
//! epoch, high watermark, and each voter's and observer's log end offset and last
//! fetch / caught-up times. Any broker answers; a broker that is not the active controller
//! asks it (as Kafka's brokers forward DescribeQuorum to the controller).

use gregor_protocol::kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use gregor_protocol::kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_quorum::{QuorumStatus, VoterStatus};

use super::{blocking, str_bytes, RequestContext};
use crate::authz::Op;
use crate::controller::{ControllerAnswer, ControllerCommand};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeQuorumRequest,
) -> Result<DescribeQuorumResponse, BrokerError> {
    // DESCRIBE on the cluster; Kafka answers only the top-level error code.
    if !ctx.allowed_on_cluster(Op::Describe) {
        return Ok(DescribeQuorumResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code()));
    }
    let broker = ctx.broker.clone();
    let status = blocking(move || broker.metadata.execute(ControllerCommand::DescribeQuorum)).await;
    let status = match status {
        Ok(ControllerAnswer::Quorum(status)) => status,
        Ok(_) => return Err(BrokerError::InvalidRequest("the controller did not describe the quorum".into())),
        Err(e) => {
            return Ok(DescribeQuorumResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(&e.to_string()))))
        }
    };
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let known = t.topic_name.0.as_str() == gregor_metadata::METADATA_TOPIC && p.partition_index == 0;
                    if known {
                        partition(&status, ctx.api_version)
                    } else {
                        PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    }
                })
                .collect();
            TopicData::default().with_topic_name(TopicName(t.topic_name.0.clone())).with_partitions(partitions)
        })
        .collect();
    let mut response = DescribeQuorumResponse::default().with_topics(topics);
    if ctx.api_version >= 2 {
        response.nodes = status.voters.iter().chain(&status.observers).map(node).collect();
    }
    Ok(response)
}

fn partition(status: &QuorumStatus, version: i16) -> PartitionData {
    let leader = status.leader.and_then(|l| i32::try_from(l).ok()).unwrap_or(-1);
    let replicas = |list: &[VoterStatus]| list.iter().map(|v| replica(v, version)).collect();
    PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(leader))
        .with_leader_epoch(gregor_quorum::epoch_of(status.epoch))
        .with_high_watermark(status.high_watermark)
        .with_current_voters(replicas(&status.voters))
        .with_observers(replicas(&status.observers))
}

fn replica(v: &VoterStatus, version: i16) -> ReplicaState {
    let state = ReplicaState::default()
        .with_replica_id(BrokerId(i32::try_from(v.node_id).unwrap_or(-1)))
        .with_log_end_offset(v.log_end_offset);
    if version >= 1 {
        state
            .with_last_fetch_timestamp(v.last_fetch_timestamp)
            .with_last_caught_up_timestamp(v.last_caught_up_timestamp)
    } else {
        state
    }
}

/// A voter's controller listener; none for the single-node default, which has no
/// controller listener.
fn node(v: &VoterStatus) -> Node {
    let listeners = if v.node.port == 0 {
        vec![]
    } else {
        vec![Listener::default()
            .with_name(str_bytes("CONTROLLER"))
            .with_host(str_bytes(&v.node.host))
            .with_port(v.node.port)]
    };
    Node::default().with_node_id(BrokerId(i32::try_from(v.node_id).unwrap_or(-1))).with_listeners(listeners)
}
