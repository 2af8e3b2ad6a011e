//! The transaction coordinator on the coordinator runtime (`coordinator_runtime`): one
//! `TransactionCoordinatorShard` per `__transaction_state` partition, and the steps it
//! returns carried out in order under the shard lock:
//!
//! ```text
//!  handler ──► shard ──► TxnStep.records ──► append to __transaction_state-N
//!                        TxnStep.markers ──► a marker on every partition of the transaction
//!                                            (__consumer_offsets via the group coordinator)
//!                        shard.markers_written ──► Complete* record
//! ```
//!
//! A decision (Prepare*) is durable before any marker is written; markers that could not
//! be written are retried by the periodic tick, and after a restart by the load, so a
//! transaction the client was told is committed always completes. On one node the
//! markers are written before EndTxn is answered, so a read_committed consumer sees the
//! transaction as soon as the producer's commit returns.

use std::collections::BTreeMap;

use crate::handlers::str_bytes;
use crate::handlers::write_txn_markers::write_local;
use gregor_coordinator::txn::{MarkerPlan, TransactionCoordinatorShard, TxnConfig, TxnStep};
use gregor_log::TxnMarker;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::records::{BatchProducer, KeyValue};
use gregor_protocol::TopicPartition;

use crate::broker::{now_ms, Broker};
use crate::coordinator_runtime::{pairs, CoordinatorRuntime, CoordinatorShard};
use crate::BrokerError;

pub(crate) const TXN_TOPIC: &str = "__transaction_state";

impl CoordinatorShard for TransactionCoordinatorShard {
    const TOPIC: &'static str = TXN_TOPIC;
    type Config = TxnConfig;

    fn new(config: &TxnConfig) -> Self {
        TransactionCoordinatorShard::new(config.clone())
    }

    fn replay(&mut self, r: &KeyValue, _now_ms: i64) -> Result<(), String> {
        match (&r.key, r.control) {
            (Some(key), None) => {
                TransactionCoordinatorShard::replay(self, key, r.value.as_deref()).map_err(|e| e.to_string())
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug)]
pub(crate) struct TransactionCoordinator {
    runtime: CoordinatorRuntime<TransactionCoordinatorShard>,
}

impl TransactionCoordinator {
    pub(crate) fn new(config: TxnConfig, num_partitions: i32, segment_bytes: i64) -> Self {
        let topic_configs = vec![
            ("compression.type".into(), "uncompressed".into()),
            ("segment.bytes".into(), segment_bytes.to_string()),
        ];
        Self { runtime: CoordinatorRuntime::new(config, num_partitions, topic_configs) }
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub(crate) fn partition_for(&self, transactional_id: &str) -> i32 {
        self.runtime.index_for(transactional_id) as i32
    }

    /// Loads every shard this broker leads (start-up), completing decided transactions.
    pub(crate) fn load(&self, broker: &Broker) -> Result<(), BrokerError> {
        self.runtime.load_existing(broker, &mut |index, shard| self.resume(broker, index, shard))
    }

    /// Drops the shards of `__transaction_state` partitions led elsewhere now.
    pub(crate) fn unload_unled(&self, broker: &Broker) {
        for index in self.runtime.unload_unled(broker) {
            tracing::info!(partition = index, "transaction coordinator shard unloaded: its partition is led elsewhere");
        }
    }

    /// A shard just loaded: the transactions it had decided are completed.
    fn resume(&self, broker: &Broker, index: usize, shard: &mut TransactionCoordinatorShard) {
        for plan in shard.on_loaded() {
            let _ = self.complete(broker, index, shard, plan);
        }
    }

    /// Runs `f` on the shard of `transactional_id` and carries out the step it returns
    /// before answering with its result.
    pub(crate) fn run<T>(
        &self,
        broker: &Broker,
        transactional_id: &str,
        f: impl FnOnce(&mut TransactionCoordinatorShard) -> (Result<T, ResponseError>, TxnStep),
    ) -> Result<T, ResponseError> {
        let index = self.runtime.index_for(transactional_id);
        let resume = &mut |i, shard: &mut TransactionCoordinatorShard| self.resume(broker, i, shard);
        self.runtime
            .with_shard(broker, index, resume, |shard| {
                let (result, step) = f(shard);
                self.carry_out(broker, index, shard, step)?;
                result
            })
            .and_then(|result| result)
    }

    /// Runs a read-only `f` on the shard of `transactional_id`.
    /// The broker leading the `__transaction_state` partition of `transactional_id`.
    pub(crate) fn coordinator_of(&self, broker: &Broker, transactional_id: &str) -> Option<i32> {
        let index = self.runtime.index_for(transactional_id);
        let image = broker.image();
        let leader = image.topic(TXN_TOPIC)?.partitions.get(&(index as i32))?.leader;
        (leader >= 0).then_some(leader)
    }

    pub(crate) fn read<T>(
        &self,
        broker: &Broker,
        transactional_id: &str,
        f: impl FnOnce(&TransactionCoordinatorShard) -> T,
    ) -> Result<T, ResponseError> {
        let index = self.runtime.index_for(transactional_id);
        let resume = &mut |i, shard: &mut TransactionCoordinatorShard| self.resume(broker, i, shard);
        self.runtime.with_shard(broker, index, resume, |shard| f(shard))
    }

    /// Runs `f` on every loaded shard (ListTransactions).
    pub(crate) fn each_shard<T>(&self, mut f: impl FnMut(&TransactionCoordinatorShard) -> Vec<T>) -> Vec<T> {
        self.runtime.each(|_, shard| f(shard))
    }

    /// Appends the step's records, then writes its markers and completes the transaction.
    /// If the records cannot be written the shard is rebuilt from its log (undoing the
    /// change) and the caller is told to retry.
    fn carry_out(
        &self,
        broker: &Broker,
        index: usize,
        shard: &mut TransactionCoordinatorShard,
        step: TxnStep,
    ) -> Result<(), ResponseError> {
        if let Err(e) = self.append(broker, index, &step) {
            tracing::error!(error = %e, "writing transaction state failed");
            match self.runtime.replay(broker, index) {
                Ok(reloaded) => *shard = reloaded,
                Err(e) => tracing::error!(error = %e, "transaction coordinator shard could not be reloaded"),
            }
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(plan) = step.markers {
            // The decision is durable: a marker failure is retried later, not reported.
            let _ = self.complete(broker, index, shard, plan);
        }
        Ok(())
    }

    fn append(&self, broker: &Broker, index: usize, step: &TxnStep) -> Result<(), BrokerError> {
        self.runtime.append(broker, index, &pairs(&step.records), BatchProducer::NONE)
    }

    /// Writes the markers of a decided transaction and records its completion.
    fn complete(
        &self,
        broker: &Broker,
        index: usize,
        shard: &mut TransactionCoordinatorShard,
        plan: MarkerPlan,
    ) -> Result<(), BrokerError> {
        write_markers(broker, &plan)?;
        let step = shard.markers_written(&plan.transactional_id, plan.producer_epoch, now_ms());
        self.append(broker, index, &step)
    }

    /// Aborts timed-out transactions, retries unwritten markers and expires idle ids.
    pub(crate) fn tick(&self, broker: &Broker) {
        let now = now_ms();
        let _ = self.runtime.each(|index, shard| {
            for step in shard.on_tick(now) {
                let _ = self.carry_out(broker, index, shard, step);
            }
            Vec::<()>::new()
        });
    }
}

/// One marker per partition: written here into the partitions this broker leads, and
/// sent to their leaders (WriteTxnMarkers) for the others. A partition that no longer
/// exists needs none; any other failure leaves the transaction prepared, to be completed
/// by a later attempt.
fn write_markers(broker: &Broker, plan: &MarkerPlan) -> Result<(), BrokerError> {
    let marker = TxnMarker {
        producer_id: plan.producer_id,
        producer_epoch: plan.producer_epoch,
        coordinator_epoch: plan.coordinator_epoch,
        commit: plan.commit,
    };
    let image = broker.image();
    let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, partition) in &plan.partitions {
        let tp = TopicPartition::new(topic.as_str(), *partition);
        let leader = image.topic(topic).and_then(|t| t.partitions.get(partition)).map(|p| p.leader);
        let code = match leader {
            None => 0, // the topic was deleted: nothing to end there
            Some(leader) if leader == broker.node_id => write_local(broker, &tp, &marker),
            Some(leader) => {
                remote.entry(leader).or_default().push((topic.clone(), *partition));
                0
            }
        };
        check_marker(plan, topic, *partition, code)?;
    }
    for (leader, partitions) in remote {
        for (topic, partition, code) in send_markers(broker, leader, &marker, &partitions)? {
            check_marker(plan, &topic, partition, code)?;
        }
    }
    Ok(())
}

fn check_marker(plan: &MarkerPlan, topic: &str, partition: i32, code: i16) -> Result<(), BrokerError> {
    let unknown = gregor_protocol::kafka_protocol::ResponseError::UnknownTopicOrPartition.code();
    if code == 0 || code == unknown {
        return Ok(());
    }
    let message = format!("marker for {topic}-{partition} failed with error {code}");
    tracing::warn!(transactional_id = %plan.transactional_id, %message, "writing a transaction marker failed; will retry");
    Err(BrokerError::Remote { code, message })
}

/// WriteTxnMarkers to `leader` for `partitions`: each partition's error code.
fn send_markers(
    broker: &Broker,
    leader: i32,
    marker: &TxnMarker,
    partitions: &[(String, i32)],
) -> Result<Vec<(String, i32, i16)>, BrokerError> {
    use gregor_protocol::kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use gregor_protocol::kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic.as_str()).or_default().push(*partition);
    }
    let topics = by_topic
        .into_iter()
        .map(|(t, p)| WritableTxnMarkerTopic::default().with_name(TopicName(str_bytes(t))).with_partition_indexes(p))
        .collect();
    let request = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(marker.producer_id))
        .with_producer_epoch(marker.producer_epoch)
        .with_transaction_result(marker.commit)
        .with_coordinator_epoch(marker.coordinator_epoch)
        .with_topics(topics)]);
    let response = crate::inter_broker::send(broker, leader, request)?;
    Ok(response
        .markers
        .iter()
        .flat_map(|m| m.topics.iter())
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index, p.error_code)))
        .collect())
}

/// Kafka's transaction settings from the broker config.
pub(crate) fn txn_config(config: &crate::BrokerConfig) -> TxnConfig {
    TxnConfig {
        max_timeout_ms: config.broker_i64("transaction.max.timeout.ms") as i32,
        id_expiration_ms: config.broker_i64("transactional.id.expiration.ms"),
        coordinator_epoch: 0,
    }
}
