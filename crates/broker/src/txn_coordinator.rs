//! The runtime around the transaction coordinator's state machines: one
//! `TransactionCoordinatorShard` per `__transaction_state` partition, loaded by replaying
//! it, and the steps it returns carried out in order under the shard lock:
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

use std::sync::{Mutex, MutexGuard, PoisonError};

use gregor_coordinator::txn::{MarkerPlan, TransactionCoordinatorShard, TxnConfig, TxnStep};
use gregor_log::TxnMarker;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::records::encode_batch;
use gregor_protocol::TopicPartition;

use crate::broker::{now_ms, Broker};
use crate::group_coordinator::OFFSETS_TOPIC;
use crate::BrokerError;

pub(crate) const TXN_TOPIC: &str = "__transaction_state";

type Shard = Mutex<Option<TransactionCoordinatorShard>>;

#[derive(Debug)]
pub(crate) struct TransactionCoordinator {
    config: TxnConfig,
    num_partitions: i32,
    shards: Vec<Shard>,
    /// Serialises creating and loading `__transaction_state`.
    load_lock: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unavailable(e: BrokerError) -> ResponseError {
    tracing::warn!(error = %e, "transaction coordinator unavailable");
    ResponseError::CoordinatorNotAvailable
}

impl TransactionCoordinator {
    pub(crate) fn new(config: TxnConfig, num_partitions: i32) -> Self {
        let num_partitions = num_partitions.max(1);
        Self {
            config,
            num_partitions,
            shards: (0..num_partitions).map(|_| Mutex::new(None)).collect(),
            load_lock: Mutex::new(()),
        }
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub(crate) fn partition_for(&self, transactional_id: &str) -> i32 {
        self.shard_index(transactional_id) as i32
    }

    fn shard_index(&self, transactional_id: &str) -> usize {
        gregor_coordinator::partition_for(transactional_id, self.num_partitions) as usize
    }

    /// Loads every shard if the topic exists (start-up), completing decided transactions.
    pub(crate) fn load(&self, broker: &Broker) -> Result<(), BrokerError> {
        if broker.image().topic(TXN_TOPIC).is_some() {
            self.load_shards(broker)?;
        }
        Ok(())
    }

    fn ensure_loaded(&self, broker: &Broker, index: usize) -> Result<(), BrokerError> {
        if lock(&self.shards[index]).is_some() {
            return Ok(());
        }
        let _loading = lock(&self.load_lock);
        if lock(&self.shards[index]).is_some() {
            return Ok(());
        }
        let segment_bytes = broker.config.broker_i64("transaction.state.log.segment.bytes").to_string();
        let configs = vec![("compression.type".into(), "uncompressed".into()), ("segment.bytes".into(), segment_bytes)];
        broker.ensure_internal_topic(TXN_TOPIC, self.num_partitions, configs)?;
        self.load_shards(broker)
    }

    fn load_shards(&self, broker: &Broker) -> Result<(), BrokerError> {
        for (index, slot) in self.shards.iter().enumerate() {
            let mut slot = lock(slot);
            // Another broker leads this partition and coordinates its transactional ids.
            if slot.is_some() || !broker.leads(TXN_TOPIC, index as i32) {
                continue;
            }
            let shard = slot.insert(self.replay_partition(broker, index)?);
            for plan in shard.on_loaded() {
                let _ = self.complete(broker, index, shard, plan);
            }
        }
        Ok(())
    }

    fn replay_partition(&self, broker: &Broker, index: usize) -> Result<TransactionCoordinatorShard, BrokerError> {
        let tp = TopicPartition::new(TXN_TOPIC, index as i32);
        let partition = broker.replicas.get(&tp).ok_or_else(|| BrokerError::UnknownTopicOrPartition(tp.to_string()))?;
        let records = lock(&partition.log).read_all_records()?;
        let mut shard = TransactionCoordinatorShard::new(self.config.clone());
        for r in records.iter().filter(|r| r.control.is_none()) {
            if let Some(key) = &r.key {
                if let Err(e) = shard.replay(key, r.value.as_deref()) {
                    tracing::warn!(partition = %tp, offset = r.offset, error = %e, "skipping unreadable transaction record");
                }
            }
        }
        Ok(shard)
    }

    /// Runs `f` on the shard of `transactional_id` and carries out the step it returns
    /// before answering with its result.
    pub(crate) fn run<T>(
        &self,
        broker: &Broker,
        transactional_id: &str,
        f: impl FnOnce(&mut TransactionCoordinatorShard) -> (Result<T, ResponseError>, TxnStep),
    ) -> Result<T, ResponseError> {
        let index = self.shard_index(transactional_id);
        self.ensure_loaded(broker, index).map_err(unavailable)?;
        let mut slot = lock(&self.shards[index]);
        let shard = slot.as_mut().ok_or_else(|| crate::group_coordinator::not_loaded(broker, TXN_TOPIC, index))?;
        let (result, step) = f(shard);
        self.carry_out(broker, index, shard, step)?;
        result
    }

    /// Runs a read-only `f` on the shard of `transactional_id`.
    pub(crate) fn read<T>(
        &self,
        broker: &Broker,
        transactional_id: &str,
        f: impl FnOnce(&TransactionCoordinatorShard) -> T,
    ) -> Result<T, ResponseError> {
        let index = self.shard_index(transactional_id);
        self.ensure_loaded(broker, index).map_err(unavailable)?;
        let slot = lock(&self.shards[index]);
        slot.as_ref().map(f).ok_or_else(|| crate::group_coordinator::not_loaded(broker, TXN_TOPIC, index))
    }

    /// Runs `f` on every loaded shard (ListTransactions).
    pub(crate) fn each_shard<T>(&self, mut f: impl FnMut(&TransactionCoordinatorShard) -> Vec<T>) -> Vec<T> {
        self.shards.iter().filter_map(|slot| lock(slot).as_ref().map(&mut f)).flatten().collect()
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
            match self.replay_partition(broker, index) {
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
        if step.records.is_empty() {
            return Ok(());
        }
        let tp = TopicPartition::new(TXN_TOPIC, index as i32);
        let pairs: Vec<_> = step.records.iter().map(|r| (Some(r.key.clone()), r.value.clone())).collect();
        let mut batch = encode_batch(&pairs, now_ms())?;
        broker.replicas.append(&tp, &mut batch, now_ms()).map(|_| ())
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
        for (index, slot) in self.shards.iter().enumerate() {
            let mut slot = lock(slot);
            let Some(shard) = slot.as_mut() else { continue };
            for step in shard.on_tick(now) {
                let _ = self.carry_out(broker, index, shard, step);
            }
        }
    }
}

/// One marker per partition. A partition that no longer exists needs none; any other
/// failure leaves the transaction prepared, to be completed by a later attempt.
fn write_markers(broker: &Broker, plan: &MarkerPlan) -> Result<(), BrokerError> {
    let marker = TxnMarker {
        producer_id: plan.producer_id,
        producer_epoch: plan.producer_epoch,
        coordinator_epoch: plan.coordinator_epoch,
        commit: plan.commit,
    };
    for (topic, partition) in &plan.partitions {
        let written = if topic == OFFSETS_TOPIC {
            broker.groups.write_marker(broker, *partition as usize, &marker)
        } else {
            broker.replicas.append_marker(&TopicPartition::new(topic.as_str(), *partition), &marker, now_ms())
        };
        match written {
            Ok(()) | Err(BrokerError::UnknownTopicOrPartition(_)) => {}
            Err(e) => {
                tracing::warn!(transactional_id = %plan.transactional_id, topic, partition, error = %e, "writing a transaction marker failed; will retry");
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Kafka's transaction settings from the broker config.
pub(crate) fn txn_config(config: &crate::BrokerConfig) -> TxnConfig {
    TxnConfig {
        max_timeout_ms: config.broker_i64("transaction.max.timeout.ms") as i32,
        id_expiration_ms: config.broker_i64("transactional.id.expiration.ms"),
        coordinator_epoch: 0,
    }
}
