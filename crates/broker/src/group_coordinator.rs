//! The group coordinator on the coordinator runtime (`coordinator_runtime`): one
//! `GroupCoordinatorShard` per `__consumer_offsets` partition, fed requests and timer
//! events, and whose outputs are carried out here, in order:
//!
//! ```text
//!  handler ──► shard (locked) ──► Output::Append  ──► append to __consumer_offsets-N
//!                                 Output::Respond ──► the waiting request's oneshot
//!                                 Output::SetTimer ──► timer queue ──► shard.on_timer
//! ```
//!
//! The shard lock is held while its records are appended, so records reach the log in
//! the order the state machine emitted them and a response never precedes its records.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use gregor_coordinator::{
    ConsumerGroupConfig, GroupConfig, GroupCoordinatorShard, GroupResponse, Output, RequestMeta, TimerKey,
};
use gregor_log::TxnMarker;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::records::{BatchProducer, KeyValue};
use gregor_protocol::TopicPartition;
use tokio::sync::{oneshot, watch, Notify};

use crate::broker::{now_ms, Broker};
use crate::coordinator_runtime::{pairs, CoordinatorRuntime, CoordinatorShard};
use crate::BrokerError;

pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";

impl CoordinatorShard for GroupCoordinatorShard {
    const TOPIC: &'static str = OFFSETS_TOPIC;
    type Config = GroupConfig;

    fn new(config: &GroupConfig) -> Self {
        GroupCoordinatorShard::new(config.clone())
    }

    fn replay(&mut self, r: &KeyValue, now_ms: i64) -> Result<(), String> {
        let replayed = match (&r.key, r.control) {
            (_, Some(commit)) => {
                self.complete_txn(r.producer_id, commit, now_ms);
                Ok(())
            }
            (Some(key), None) if r.transactional => self.replay_txn(r.producer_id, key, r.value.as_deref()),
            (Some(key), None) => GroupCoordinatorShard::replay(self, key, r.value.as_deref()),
            (None, None) => Ok(()),
        };
        replayed.map_err(|e| e.to_string())
    }
}

#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    runtime: CoordinatorRuntime<GroupCoordinatorShard>,
    /// Requests waiting for their response (a JoinGroup until the rebalance completes),
    /// with their shard's index: an unloaded shard drops its waiters.
    pending: Mutex<HashMap<u64, (usize, oneshot::Sender<GroupResponse>)>>,
    next_request_id: AtomicU64,
    /// Deadline of every armed timer, by shard and key.
    timers: Mutex<BTreeMap<(usize, TimerKey), i64>>,
    timers_changed: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Who is asking, for `RequestMeta`.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) api_version: i16,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
}

impl GroupCoordinator {
    pub(crate) fn new(config: GroupConfig, num_partitions: i32) -> Self {
        let topic_configs =
            vec![("compression.type".into(), "producer".into()), ("segment.bytes".into(), "104857600".into())];
        Self {
            runtime: CoordinatorRuntime::new(config, num_partitions, topic_configs),
            pending: Mutex::new(HashMap::new()),
            next_request_id: AtomicU64::new(1),
            timers: Mutex::new(BTreeMap::new()),
            timers_changed: Notify::new(),
        }
    }

    /// The `__consumer_offsets` partition of a group.
    pub(crate) fn partition_for(&self, group_id: &str) -> i32 {
        self.shard_index(group_id) as i32
    }

    fn shard_index(&self, group_id: &str) -> usize {
        self.runtime.index_for(group_id)
    }

    /// Loads every shard this broker leads from `__consumer_offsets` (at start-up).
    pub(crate) fn load(&self, broker: &Broker) -> Result<(), BrokerError> {
        self.runtime.load_existing(broker, &mut |index, shard| self.resume(broker, index, shard))
    }

    /// Drops the shards of `__consumer_offsets` partitions led elsewhere now.
    pub(crate) fn unload_unled(&self, broker: &Broker) {
        for index in self.runtime.unload_unled(broker) {
            // Its waiting requests are answered NOT_COORDINATOR (see `request`): their
            // clients find the new coordinator at once instead of waiting out a timeout.
            lock(&self.pending).retain(|_, (shard, _)| *shard != index);
            tracing::info!(partition = index, "group coordinator shard unloaded: its partition is led elsewhere");
        }
    }

    /// A shard just loaded: its groups' timers start again.
    fn resume(&self, broker: &Broker, index: usize, shard: &mut GroupCoordinatorShard) {
        let outputs = shard.on_loaded(now_ms());
        self.apply(broker, index, shard, outputs);
    }

    /// Creates `__consumer_offsets` on first use, as Kafka does, then loads the shards.
    fn ensure_loaded(&self, broker: &Broker, index: usize) -> Result<(), BrokerError> {
        self.runtime.ensure_loaded(broker, index, &mut |i, shard| self.resume(broker, i, shard))
    }

    /// Runs `f` on the shard of `group_id` and waits for the response it (or a later event)
    /// gives the request.
    pub(crate) async fn request(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        group_id: &str,
        caller: Caller,
        f: impl FnOnce(&mut GroupCoordinatorShard, RequestMeta, i64) -> Vec<Output> + Send + 'static,
    ) -> Result<GroupResponse, ResponseError> {
        let id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let index = self.shard_index(group_id);
        let _ = lock(&self.pending).insert(id, (index, tx));
        let meta = RequestMeta {
            id,
            api_version: caller.api_version,
            client_id: caller.client_id,
            client_host: caller.client_host,
        };
        let (this, b, group) = (self.clone(), broker.clone(), group_id.to_owned());
        let ran =
            crate::handlers::blocking(move || this.with_shard(&b, &group, |shard| f(shard, meta, now_ms()))).await;
        if let Err(e) = ran {
            let _ = lock(&self.pending).remove(&id);
            return Err(e);
        }
        // A dropped waiter: its shard moved to another broker (or a write failed here).
        rx.await.map_err(|_| {
            if self.runtime.slot(index).is_some() {
                ResponseError::CoordinatorNotAvailable
            } else {
                ResponseError::NotCoordinator
            }
        })
    }

    /// Runs `f` on the shard of `group_id` and carries out the outputs it returns.
    fn with_shard(
        &self,
        broker: &Broker,
        group_id: &str,
        f: impl FnOnce(&mut GroupCoordinatorShard) -> Vec<Output>,
    ) -> Result<(), ResponseError> {
        self.read_shard(broker, group_id, |shard, index| {
            let outputs = f(shard);
            self.apply(broker, index, shard, outputs);
        })
    }

    /// Runs `f` on the (loaded) shard of `group_id`, holding its lock.
    pub(crate) fn read_shard<T>(
        &self,
        broker: &Broker,
        group_id: &str,
        f: impl FnOnce(&mut GroupCoordinatorShard, usize) -> T,
    ) -> Result<T, ResponseError> {
        let index = self.shard_index(group_id);
        self.runtime.with_shard(broker, index, &mut |i, shard| self.resume(broker, i, shard), |shard| f(shard, index))
    }

    /// Runs `f` on every loaded shard, for ListGroups and similar.
    pub(crate) fn each_shard<T>(
        &self,
        broker: &Broker,
        mut f: impl FnMut(&mut GroupCoordinatorShard) -> Vec<T>,
    ) -> Vec<T> {
        if self.ensure_loaded(broker, 0).is_err() {
            return vec![];
        }
        self.runtime.each(|_, shard| f(shard))
    }

    /// Runs `f` on the shards already loaded, creating and loading nothing (a metrics
    /// scrape must not create `__consumer_offsets`).
    pub(crate) fn each_loaded_shard<T>(&self, mut f: impl FnMut(&mut GroupCoordinatorShard) -> Vec<T>) -> Vec<T> {
        self.runtime.each(|_, shard| f(shard))
    }

    /// Carries out a shard's outputs, in order. Called with the shard's lock held.
    ///
    /// If records cannot be written, the shard is rebuilt from its partition (undoing the
    /// change that was not persisted, as Kafka's runtime reverts to its last committed
    /// state) and the responses that depended on the write report COORDINATOR_NOT_AVAILABLE,
    /// which clients retry.
    pub(crate) fn apply(&self, broker: &Broker, index: usize, shard: &mut GroupCoordinatorShard, outputs: Vec<Output>) {
        let mut write_failed = false;
        for output in outputs {
            match output {
                Output::Append(records) => {
                    write_failed = write_failed
                        || self.runtime.append(broker, index, &pairs(&records), BatchProducer::NONE).is_err()
                }
                Output::AppendTransactional { producer_id, producer_epoch, records } => {
                    let producer = BatchProducer { producer_id, producer_epoch, transactional: true };
                    write_failed =
                        write_failed || self.runtime.append(broker, index, &pairs(&records), producer).is_err()
                }
                Output::Respond(id, response) => {
                    let response =
                        if write_failed { failed(response, ResponseError::CoordinatorNotAvailable) } else { response };
                    if let Some((_, tx)) = lock(&self.pending).remove(&id) {
                        let _ = tx.send(response);
                    }
                }
                Output::SetTimer { key, deadline_ms } => {
                    let _ = lock(&self.timers).insert((index, key), deadline_ms);
                    self.timers_changed.notify_one();
                }
                Output::CancelTimer(key) => {
                    let _ = lock(&self.timers).remove(&(index, key));
                }
            }
        }
        if write_failed {
            // Back to what the ISR has: a group's offsets and members must not be read
            // from a write that may be truncated (scripts/chaos, a split coordinator).
            match self.runtime.replay_committed(broker, index) {
                Ok(reloaded) => {
                    *shard = reloaded;
                    self.resume(broker, index, shard);
                }
                Err(e) => {
                    tracing::error!(error = %e, "group coordinator shard could not be reloaded after a failed write")
                }
            }
        }
    }

    /// Writes a transaction marker to `__consumer_offsets-<index>` and applies it to the
    /// shard's pending transactional offsets, under the shard lock so the shard's state
    /// follows the log's order.
    pub(crate) fn write_marker(&self, broker: &Broker, index: usize, marker: &TxnMarker) -> Result<(), BrokerError> {
        self.ensure_loaded(broker, index)?;
        let tp = TopicPartition::new(OFFSETS_TOPIC, index as i32);
        let mut slot = self.runtime.slot(index);
        let (partition, required) = broker.replicas.append_marker(&tp, marker, now_ms())?;
        crate::replica_manager::ReplicaManager::await_replicated(
            &partition,
            required,
            crate::broker::COORDINATOR_WRITE_TIMEOUT,
        )?;
        if let Some(loaded) = slot.as_mut() {
            loaded.shard.complete_txn(marker.producer_id, marker.commit, now_ms());
        }
        Ok(())
    }

    /// Fires due timers until shutdown. Runs on its own task.
    pub(crate) async fn run_timers(self: Arc<Self>, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
        let mut expiry = tokio::time::interval(std::time::Duration::from_millis(
            broker.config.broker_i64("offsets.retention.check.interval.ms").clamp(1, 86_400_000) as u64,
        ));
        loop {
            let next = lock(&self.timers).values().min().copied();
            let sleep = match next {
                Some(deadline) => std::time::Duration::from_millis((deadline - now_ms()).clamp(0, 3_600_000) as u64),
                None => std::time::Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.timers_changed.notified() => continue,
                _ = expiry.tick() => {
                    let (this, b) = (self.clone(), broker.clone());
                    let _ = tokio::task::spawn_blocking(move || this.expire_offsets(&b)).await;
                    continue;
                }
                _ = shutdown.changed() => return,
            }
            let (this, b) = (self.clone(), broker.clone());
            let _ = tokio::task::spawn_blocking(move || this.fire_due(&b)).await;
        }
    }

    fn fire_due(&self, broker: &Broker) {
        let now = now_ms();
        let due: Vec<(usize, TimerKey)> = {
            let mut timers = lock(&self.timers);
            let keys: Vec<_> = timers.iter().filter(|(_, d)| **d <= now).map(|(k, _)| k.clone()).collect();
            for k in &keys {
                let _ = timers.remove(k);
            }
            keys
        };
        for (index, key) in due {
            let mut slot = self.runtime.slot(index);
            if let Some(loaded) = slot.as_mut() {
                let outputs = loaded.shard.on_timer(key, now);
                self.apply(broker, index, &mut loaded.shard, outputs);
            }
        }
    }

    fn expire_offsets(&self, broker: &Broker) {
        let now = now_ms();
        let _ = self.runtime.each(|index, shard| {
            let outputs = shard.expire_offsets(now);
            self.apply(broker, index, shard, outputs);
            Vec::<()>::new()
        });
    }

    /// Answers every waiting request with "coordinator not available" (shutdown).
    pub(crate) fn abandon_pending(&self) {
        lock(&self.pending).clear();
    }
}

/// The same response carrying `error` instead of its result.
fn failed(response: GroupResponse, error: ResponseError) -> GroupResponse {
    let code = error.code();
    match response {
        GroupResponse::Join(r) => GroupResponse::Join(r.with_error_code(code)),
        GroupResponse::Sync(r) => GroupResponse::Sync(r.with_error_code(code).with_assignment(Default::default())),
        GroupResponse::Heartbeat(r) => GroupResponse::Heartbeat(r.with_error_code(code)),
        GroupResponse::Leave(r) => GroupResponse::Leave(r.with_error_code(code)),
        GroupResponse::OffsetDelete(r) => GroupResponse::OffsetDelete(r.with_error_code(code)),
        GroupResponse::ConsumerGroupHeartbeat(r) => {
            GroupResponse::ConsumerGroupHeartbeat(r.with_error_code(code).with_assignment(None))
        }
        GroupResponse::TxnOffsetCommit(mut r) => {
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.error_code = code;
            }
            GroupResponse::TxnOffsetCommit(r)
        }
        GroupResponse::OffsetCommit(mut r) => {
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.error_code = code;
            }
            GroupResponse::OffsetCommit(r)
        }
    }
}

/// Kafka's group settings from the broker config.
pub(crate) fn group_config(config: &crate::BrokerConfig) -> GroupConfig {
    GroupConfig {
        min_session_timeout_ms: config.broker_i64("group.min.session.timeout.ms") as i32,
        max_session_timeout_ms: config.broker_i64("group.max.session.timeout.ms") as i32,
        initial_rebalance_delay_ms: config.broker_i64("group.initial.rebalance.delay.ms") as i32,
        max_size: config.broker_i64("group.max.size") as i32,
        offsets_retention_ms: config.broker_i64("offsets.retention.minutes").saturating_mul(60_000),
        consumer: ConsumerGroupConfig {
            session_timeout_ms: config.broker_i64("group.consumer.session.timeout.ms") as i32,
            heartbeat_interval_ms: config.broker_i64("group.consumer.heartbeat.interval.ms") as i32,
            max_size: config.broker_i64("group.consumer.max.size") as i32,
            assignors: config
                .broker_str("group.consumer.assignors")
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
        },
    }
}
