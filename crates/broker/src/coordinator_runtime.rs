//! One runtime for the group and the transaction coordinator, as Kafka's
//! `CoordinatorRuntime` serves both: a shard per partition of the coordinator's internal
//! topic, created on first use, loaded by replaying that partition on the broker that
//! leads it, locked while it decides and while its records are appended (so records
//! reach the log in the order the state machine emitted them), and rebuilt from the log
//! when a write failed (undoing the change that was not persisted).
//!
//! [`CoordinatorRuntime::load`] and [`CoordinatorRuntime::unload`], with the partition's
//! leader epoch, are the entry points for leadership changes: a newer epoch reloads, an
//! older one is ignored. The runtime knows the broker only as a [`CoordinatorHost`].

use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::records::{encode_batch_for, BatchProducer, KeyValue};
use gregor_protocol::TopicPartition;

use crate::BrokerError;

/// A coordinator's state machine for one partition of its topic.
pub(crate) trait CoordinatorShard: Send {
    /// The internal topic whose partitions hold the shards' state.
    const TOPIC: &'static str;
    type Config: Clone + std::fmt::Debug + Send + Sync;

    fn new(config: &Self::Config) -> Self;

    /// Applies one record of the partition, in offset order, while loading. An error
    /// skips that record (it is logged), as Kafka skips unreadable records.
    fn replay(&mut self, record: &KeyValue, now_ms: i64) -> Result<(), String>;
}

/// What the runtime needs of the broker.
pub(crate) trait CoordinatorHost {
    /// Whether this broker leads the partition (and so coordinates its shard).
    fn leads(&self, topic: &str, partition: i32) -> bool;
    /// The partition's leader epoch, if the partition exists.
    fn leader_epoch(&self, topic: &str, partition: i32) -> Option<i32>;
    fn has_topic(&self, topic: &str) -> bool;
    fn ensure_internal_topic(
        &self,
        topic: &str,
        partitions: i32,
        configs: Vec<(String, String)>,
    ) -> Result<(), BrokerError>;
    /// Every record of the partition, transaction markers included.
    fn read_partition(&self, tp: &TopicPartition) -> Result<Vec<KeyValue>, BrokerError>;
    /// The records up to the high watermark: what the ISR has.
    fn read_committed(&self, tp: &TopicPartition) -> Result<Vec<KeyValue>, BrokerError> {
        self.read_partition(tp)
    }
    fn append_batch(&self, tp: &TopicPartition, batch: &mut [u8], now_ms: i64) -> Result<(), BrokerError>;
}

/// A loaded shard and the leader epoch it was loaded for.
#[derive(Debug)]
pub(crate) struct Loaded<S> {
    pub(crate) shard: S,
    pub(crate) epoch: i32,
}

pub(crate) type Slot<S> = Option<Loaded<S>>;

#[derive(Debug)]
pub(crate) struct CoordinatorRuntime<S: CoordinatorShard> {
    config: S::Config,
    num_partitions: i32,
    /// The internal topic's configs when the runtime creates it.
    topic_configs: Vec<(String, String)>,
    shards: Vec<Mutex<Slot<S>>>,
    /// Serialises creating and loading the topic, so no request sees the topic in the
    /// metadata before its partitions are open.
    load_lock: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: CoordinatorShard> CoordinatorRuntime<S> {
    pub(crate) fn new(config: S::Config, num_partitions: i32, topic_configs: Vec<(String, String)>) -> Self {
        let num_partitions = num_partitions.max(1);
        Self {
            config,
            num_partitions,
            topic_configs,
            shards: (0..num_partitions).map(|_| Mutex::new(None)).collect(),
            load_lock: Mutex::new(()),
        }
    }

    /// The shard (partition index) of a group or transactional id.
    pub(crate) fn index_for(&self, key: &str) -> usize {
        gregor_coordinator::partition_for(key, self.num_partitions) as usize
    }

    /// The shard's slot, locked.
    pub(crate) fn slot(&self, index: usize) -> MutexGuard<'_, Slot<S>> {
        lock(&self.shards[index])
    }

    /// Loads every shard this broker leads, if the topic exists (at start-up).
    /// `on_loaded` runs on each new shard under its lock (resuming timers, completing
    /// decided transactions).
    pub(crate) fn load_existing(
        &self,
        host: &dyn CoordinatorHost,
        on_loaded: &mut dyn FnMut(usize, &mut S),
    ) -> Result<(), BrokerError> {
        if host.has_topic(S::TOPIC) {
            self.load_all(host, on_loaded)?;
        }
        Ok(())
    }

    /// Creates the topic on first use, as Kafka does, then loads the shards.
    pub(crate) fn ensure_loaded(
        &self,
        host: &dyn CoordinatorHost,
        index: usize,
        on_loaded: &mut dyn FnMut(usize, &mut S),
    ) -> Result<(), BrokerError> {
        if self.slot(index).is_some() {
            return Ok(());
        }
        let _loading = lock(&self.load_lock);
        if self.slot(index).is_some() {
            return Ok(());
        }
        host.ensure_internal_topic(S::TOPIC, self.num_partitions, self.topic_configs.clone())?;
        self.load_all(host, on_loaded)
    }

    fn load_all(
        &self,
        host: &dyn CoordinatorHost,
        on_loaded: &mut dyn FnMut(usize, &mut S),
    ) -> Result<(), BrokerError> {
        for index in 0..self.shards.len() {
            // Another broker leads this partition and coordinates its keys.
            if self.slot(index).is_none() && host.leads(S::TOPIC, index as i32) {
                let epoch = host.leader_epoch(S::TOPIC, index as i32).unwrap_or(0);
                self.load(host, index, epoch, on_loaded)?;
            }
        }
        Ok(())
    }

    /// This broker became the leader of partition `index` at `epoch`: (re)loads its shard
    /// unless one of this epoch or a newer one is loaded.
    pub(crate) fn load(
        &self,
        host: &dyn CoordinatorHost,
        index: usize,
        epoch: i32,
        on_loaded: &mut dyn FnMut(usize, &mut S),
    ) -> Result<(), BrokerError> {
        let mut slot = self.slot(index);
        if slot.as_ref().is_some_and(|l| l.epoch >= epoch) {
            return Ok(());
        }
        let loaded = slot.insert(Loaded { shard: self.replay(host, index)?, epoch });
        on_loaded(index, &mut loaded.shard);
        Ok(())
    }

    /// This broker stopped leading partition `index` at `epoch`: drops its shard (its
    /// requests then get NOT_COORDINATOR) unless a newer epoch was loaded meanwhile.
    pub(crate) fn unload(&self, index: usize, epoch: i32) -> Option<S> {
        let mut slot = self.slot(index);
        if slot.as_ref().is_some_and(|l| l.epoch <= epoch) {
            return slot.take().map(|l| l.shard);
        }
        None
    }

    /// Drops the shards of partitions this broker no longer leads (the metadata moved
    /// their leadership); returns their indexes.
    pub(crate) fn unload_unled(&self, host: &dyn CoordinatorHost) -> Vec<usize> {
        (0..self.shards.len())
            .filter(|index| self.slot(*index).is_some() && !host.leads(S::TOPIC, *index as i32))
            .filter(|index| {
                let epoch = host.leader_epoch(S::TOPIC, *index as i32).unwrap_or(i32::MAX);
                self.unload(*index, epoch).is_some()
            })
            .collect()
    }

    /// A shard rebuilt from everything its partition holds.
    pub(crate) fn replay(&self, host: &dyn CoordinatorHost, index: usize) -> Result<S, BrokerError> {
        let tp = TopicPartition::new(S::TOPIC, index as i32);
        self.replay_records(&tp, &host.read_partition(&tp)?)
    }

    /// The shard as the ISR has it (up to the high watermark): after a write this leader
    /// could not replicate, its own unreplicated records (which a new leader may
    /// truncate) must not be served as state, as Kafka reverts to the last committed
    /// offset.
    pub(crate) fn replay_committed(&self, host: &dyn CoordinatorHost, index: usize) -> Result<S, BrokerError> {
        let tp = TopicPartition::new(S::TOPIC, index as i32);
        self.replay_records(&tp, &host.read_committed(&tp)?)
    }

    fn replay_records(&self, tp: &TopicPartition, records: &[KeyValue]) -> Result<S, BrokerError> {
        let mut shard = S::new(&self.config);
        let now = crate::broker::now_ms();
        for r in records {
            if let Err(e) = shard.replay(r, now) {
                tracing::warn!(partition = %tp, offset = r.offset, error = %e, "skipping an unreadable coordinator record");
            }
        }
        tracing::debug!(partition = %tp, records = records.len(), "coordinator shard loaded");
        Ok(shard)
    }

    /// Runs `f` on the (loaded) shard `index`, holding its lock. Fails with
    /// COORDINATOR_NOT_AVAILABLE if it cannot be loaded, NOT_COORDINATOR if another broker
    /// leads it, COORDINATOR_LOAD_IN_PROGRESS while this one is loading it.
    pub(crate) fn with_shard<T>(
        &self,
        host: &dyn CoordinatorHost,
        index: usize,
        on_loaded: &mut dyn FnMut(usize, &mut S),
        f: impl FnOnce(&mut S) -> T,
    ) -> Result<T, ResponseError> {
        self.ensure_loaded(host, index, on_loaded).map_err(|e| {
            tracing::warn!(topic = S::TOPIC, error = %e, "coordinator could not load");
            ResponseError::CoordinatorNotAvailable
        })?;
        let mut slot = self.slot(index);
        let loaded = slot.as_mut().ok_or_else(|| not_loaded(host, S::TOPIC, index))?;
        Ok(f(&mut loaded.shard))
    }

    /// Runs `f` on every loaded shard, in partition order.
    pub(crate) fn each<T>(&self, mut f: impl FnMut(usize, &mut S) -> Vec<T>) -> Vec<T> {
        let mut out = Vec::new();
        for (index, slot) in self.shards.iter().enumerate() {
            if let Some(loaded) = lock(slot).as_mut() {
                out.extend(f(index, &mut loaded.shard));
            }
        }
        out
    }

    /// Appends a shard's records to its partition as one batch (with `producer` for
    /// transactional records). Called with the shard's lock held.
    pub(crate) fn append(
        &self,
        host: &dyn CoordinatorHost,
        index: usize,
        records: &[(Option<Bytes>, Option<Bytes>)],
        producer: BatchProducer,
    ) -> Result<(), BrokerError> {
        if records.is_empty() {
            return Ok(());
        }
        let tp = TopicPartition::new(S::TOPIC, index as i32);
        let now = crate::broker::now_ms();
        let result = encode_batch_for(records, now, producer)
            .map_err(BrokerError::from)
            .and_then(|mut batch| host.append_batch(&tp, &mut batch, now));
        if let Err(e) = &result {
            tracing::error!(partition = %tp, error = %e, "writing coordinator records failed");
        }
        result
    }
}

/// Why a shard is not here: another broker leads its partition (the client finds the
/// coordinator again), or it is still loading.
pub(crate) fn not_loaded(host: &dyn CoordinatorHost, topic: &str, index: usize) -> ResponseError {
    if host.leads(topic, index as i32) {
        ResponseError::CoordinatorLoadInProgress
    } else {
        ResponseError::NotCoordinator
    }
}

/// A coordinator's records as (key, value) pairs for a batch.
pub(crate) fn pairs(records: &[gregor_coordinator::Record]) -> Vec<(Option<Bytes>, Option<Bytes>)> {
    records.iter().map(|r| (Some(r.key.clone()), r.value.clone())).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A shard that remembers the values it replayed.
    #[derive(Debug, Default)]
    struct Values(Vec<String>);

    impl CoordinatorShard for Values {
        const TOPIC: &'static str = "__values";
        type Config = ();

        fn new(_: &()) -> Self {
            Self::default()
        }

        fn replay(&mut self, record: &KeyValue, _now_ms: i64) -> Result<(), String> {
            let value = record.value.as_ref().ok_or("no value")?;
            self.0.push(String::from_utf8_lossy(value).into_owned());
            Ok(())
        }
    }

    /// Partitions as lists of values; which ones this broker leads, at which epoch.
    #[derive(Default)]
    struct Host {
        logs: Mutex<BTreeMap<i32, Vec<String>>>,
        leaders: Mutex<BTreeMap<i32, (bool, i32)>>,
        created: AtomicBool,
        fail_appends: AtomicBool,
    }

    impl CoordinatorHost for Host {
        fn leads(&self, _: &str, partition: i32) -> bool {
            lock(&self.leaders).get(&partition).is_some_and(|(led, _)| *led)
        }
        fn leader_epoch(&self, _: &str, partition: i32) -> Option<i32> {
            lock(&self.leaders).get(&partition).map(|(_, epoch)| *epoch)
        }
        fn has_topic(&self, _: &str) -> bool {
            self.created.load(Ordering::Relaxed)
        }
        fn ensure_internal_topic(&self, _: &str, _: i32, _: Vec<(String, String)>) -> Result<(), BrokerError> {
            self.created.store(true, Ordering::Relaxed);
            Ok(())
        }
        fn read_partition(&self, tp: &TopicPartition) -> Result<Vec<KeyValue>, BrokerError> {
            let logs = lock(&self.logs);
            let values = logs.get(&tp.partition).cloned().unwrap_or_default();
            Ok(values
                .into_iter()
                .enumerate()
                .map(|(i, v)| KeyValue {
                    offset: i as i64,
                    key: None,
                    value: Some(Bytes::from(v)),
                    producer_id: -1,
                    transactional: false,
                    control: None,
                })
                .collect())
        }
        fn append_batch(&self, tp: &TopicPartition, batch: &mut [u8], _: i64) -> Result<(), BrokerError> {
            if self.fail_appends.load(Ordering::Relaxed) {
                return Err(BrokerError::InvalidRequest("disk full".into()));
            }
            let records = gregor_protocol::records::decode_records(Bytes::copy_from_slice(batch)).expect("a batch");
            let mut logs = lock(&self.logs);
            let log = logs.entry(tp.partition).or_default();
            log.extend(records.iter().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into()));
            Ok(())
        }
    }

    fn value(v: &str) -> Vec<(Option<Bytes>, Option<Bytes>)> {
        vec![(Some(Bytes::from_static(b"k")), Some(Bytes::from(v.to_owned())))]
    }

    #[test]
    fn given_first_use_should_create_the_topic_and_load_only_led_shards() {
        let host = Host::default();
        lock(&host.leaders).insert(0, (true, 3));
        lock(&host.logs).insert(0, vec!["a".into(), "b".into()]);
        let runtime: CoordinatorRuntime<Values> = CoordinatorRuntime::new((), 2, vec![]);
        let mut loaded = Vec::new();
        let replayed = runtime.with_shard(&host, 0, &mut |i, _| loaded.push(i), |s| s.0.clone()).unwrap();
        assert_eq!(replayed, vec!["a", "b"]);
        assert!(host.created.load(Ordering::Relaxed));
        assert_eq!(loaded, vec![0]);
        assert_eq!(runtime.slot(0).as_ref().map(|l| l.epoch), Some(3), "loaded at the leader epoch");
        let err = runtime.with_shard(&host, 1, &mut |_, _| {}, |_| ()).unwrap_err();
        assert_eq!(err, ResponseError::NotCoordinator);
    }

    #[test]
    fn given_leader_epochs_should_reload_on_newer_and_ignore_older() {
        let host = Host::default();
        lock(&host.leaders).insert(0, (true, 1));
        let runtime: CoordinatorRuntime<Values> = CoordinatorRuntime::new((), 1, vec![]);
        runtime.load(&host, 0, 1, &mut |_, _| {}).unwrap();
        runtime.append(&host, 0, &value("x"), BatchProducer::NONE).unwrap();
        // An older or equal epoch changes nothing; a newer one replays what the log holds.
        runtime.load(&host, 0, 1, &mut |_, _| panic!("no reload")).unwrap();
        assert!(runtime.slot(0).as_ref().unwrap().shard.0.is_empty());
        runtime.load(&host, 0, 2, &mut |_, _| {}).unwrap();
        assert_eq!(runtime.slot(0).as_ref().unwrap().shard.0, vec!["x"]);
        // Unloading for an older epoch than the loaded one is ignored.
        assert!(runtime.unload(0, 1).is_none());
        assert!(runtime.unload(0, 2).is_some());
        assert!(runtime.slot(0).is_none());
    }

    #[test]
    fn given_leadership_moved_should_unload_the_shard() {
        let host = Host::default();
        lock(&host.leaders).insert(0, (true, 1));
        let runtime: CoordinatorRuntime<Values> = CoordinatorRuntime::new((), 1, vec![]);
        runtime.load(&host, 0, 1, &mut |_, _| {}).unwrap();
        assert!(runtime.unload_unled(&host).is_empty());
        lock(&host.leaders).insert(0, (false, 2));
        assert_eq!(runtime.unload_unled(&host), vec![0]);
        let err = runtime.with_shard(&host, 0, &mut |_, _| {}, |_| ()).unwrap_err();
        assert_eq!(err, ResponseError::NotCoordinator);
    }

    #[test]
    fn given_a_failed_append_should_report_it_and_keep_the_log_unchanged() {
        let host = Host::default();
        let runtime: CoordinatorRuntime<Values> = CoordinatorRuntime::new((), 1, vec![]);
        host.fail_appends.store(true, Ordering::Relaxed);
        assert!(runtime.append(&host, 0, &value("lost"), BatchProducer::NONE).is_err());
        assert!(runtime.replay(&host, 0).unwrap().0.is_empty(), "a rebuilt shard has no trace of it");
    }
}
