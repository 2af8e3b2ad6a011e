//! WriteTxnMarkers: the transaction coordinator of another broker asks this one, the
//! leader of some of the transaction's partitions, to write the commit or abort marker
//! there (Kafka's inter-broker API 27). `__consumer_offsets` markers go through the group
//! coordinator, so pending transactional offsets are applied in log order. As in Kafka,
//! it needs CLUSTER_ACTION on the cluster (else CLUSTER_AUTHORIZATION_FAILED everywhere).

use gregor_log::TxnMarker;
use gregor_protocol::kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;

use super::{blocking, RequestContext};
use crate::authz::Op;
use crate::broker::Broker;
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: WriteTxnMarkersRequest,
) -> Result<WriteTxnMarkersResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let allowed = ctx.allowed_on_cluster(Op::ClusterAction);
    let markers = blocking(move || {
        request
            .markers
            .iter()
            .map(|m| {
                let marker = TxnMarker {
                    producer_id: m.producer_id.0,
                    producer_epoch: m.producer_epoch,
                    coordinator_epoch: m.coordinator_epoch,
                    commit: m.transaction_result,
                };
                let topics = m
                    .topics
                    .iter()
                    .map(|t| {
                        let partitions = t
                            .partition_indexes
                            .iter()
                            .map(|&p| {
                                let tp = TopicPartition::new(t.name.as_str(), p);
                                let code = if allowed {
                                    write_local(&broker, &tp, &marker)
                                } else {
                                    ResponseError::ClusterAuthorizationFailed.code()
                                };
                                WritableTxnMarkerPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                            })
                            .collect();
                        WritableTxnMarkerTopicResult::default().with_name(t.name.clone()).with_partitions(partitions)
                    })
                    .collect();
                WritableTxnMarkerResult::default().with_producer_id(m.producer_id).with_topics(topics)
            })
            .collect()
    })
    .await;
    Ok(WriteTxnMarkersResponse::default().with_markers(markers))
}

/// Writes one marker into a partition this broker leads; the Kafka error code (0: done).
pub(crate) fn write_local(broker: &Broker, tp: &TopicPartition, marker: &TxnMarker) -> i16 {
    if let Err(e) = broker.leader_partition(&broker.image(), tp) {
        return e.code();
    }
    let written = if &*tp.topic == crate::group_coordinator::OFFSETS_TOPIC {
        broker.groups.write_marker(broker, tp.partition as usize, marker)
    } else {
        broker.replicas.append_marker(tp, marker, crate::broker::now_ms()).and_then(|(partition, required)| {
            // Kafka writes markers with acks=all: the coordinator completes the transaction
            // only once every in-sync replica has them.
            crate::replica_manager::ReplicaManager::await_replicated(
                &partition,
                required,
                crate::broker::COORDINATOR_WRITE_TIMEOUT,
            )
        })
    };
    written.map_or_else(|e| e.code(), |()| 0)
}
