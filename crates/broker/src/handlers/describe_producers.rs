//! DescribeProducers: the idempotent and transactional producers a partition remembers,
//! with their open transaction's first offset (how `kafka-transactions.sh
//! find-hanging` finds transactions to abort). Every replica answers for its own copy,
//! the leader or a follower (Kafka's `DescribeProducersOptions.brokerId` asks a chosen
//! one): followers rebuild producer state from the replicated log.

use gregor_protocol::kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use gregor_protocol::kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;

use super::{blocking, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeProducersRequest,
) -> Result<DescribeProducersResponse, BrokerError> {
    let broker = ctx.broker.clone();
    // READ on the topic, as Kafka checks it, else TOPIC_AUTHORIZATION_FAILED.
    let readable: Vec<bool> = request.topics.iter().map(|t| ctx.allowed(Op::Read, Res::Topic, &t.name)).collect();
    let topics = blocking(move || {
        request
            .topics
            .into_iter()
            .zip(readable)
            .map(|(t, readable)| {
                let partitions = t
                    .partition_indexes
                    .iter()
                    .map(|p| {
                        let base = PartitionResponse::default().with_partition_index(*p);
                        if !readable {
                            return base.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                        }
                        let tp = TopicPartition::new(t.name.as_str(), *p);
                        let partition = match broker.hosted_replica(&broker.image(), &tp) {
                            Ok(partition) => partition,
                            Err(e) => return base.with_error_code(e.code()),
                        };
                        let producers = broker
                            .replicas
                            .producers(&partition)
                            .into_iter()
                            .map(|info| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(info.producer_id))
                                    .with_producer_epoch(i32::from(info.producer_epoch))
                                    .with_last_sequence(info.last_sequence)
                                    .with_last_timestamp(info.last_timestamp)
                                    .with_coordinator_epoch(info.coordinator_epoch)
                                    .with_current_txn_start_offset(info.current_txn_start_offset)
                            })
                            .collect();
                        base.with_active_producers(producers)
                    })
                    .collect();
                TopicResponse::default().with_name(t.name).with_partitions(partitions)
            })
            .collect()
    })
    .await;
    Ok(DescribeProducersResponse::default().with_topics(topics))
}
