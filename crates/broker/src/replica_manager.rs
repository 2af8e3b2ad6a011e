//! The partitions this broker hosts, as leader or follower: appends, reads, the
//! replication state of each (Kafka's `ReplicaManager` and `Partition`) and the wake-ups
//! that long-polling fetches and `acks=all` produces wait on. Each partition has its own
//! locks; there is no lock over all of them on the produce or fetch path (the map of
//! partitions is read-locked only to look up).
//!
//! Lock order: a partition's `role`, then its `log`; nothing holding the log takes the
//! role. Reads build a plan (file, position, length) under the log lock and read the
//! bytes after releasing it, so a slow disk read never blocks appends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use bytes::Bytes;
use gregor_log::{
    AbortedTxn, AppendInfo, LogConfig, LogManager, PartitionLog, ProducerInfo, TimestampAndOffset, TxnMarker,
};
use gregor_metadata::PartitionRegistration;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;
use gregor_replication::{AckOutcome, Assignment, IsrChange, LeaderState};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::BrokerError;

/// What this broker is for one partition in one leader epoch.
#[derive(Debug)]
pub(crate) enum Role {
    Leader(Box<LeaderState>),
    /// Copies the leader's log (the replica fetcher does).
    Follower,
    /// Replaced by a newer epoch, or deleted: whoever waits on it gives up.
    Gone,
}

/// One hosted partition in one leader epoch.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) log: Arc<Mutex<PartitionLog>>,
    /// Woken after every append and every high-watermark advance, so fetches waiting for
    /// `min.bytes` and produces waiting for `acks=all` re-check.
    pub(crate) appended: Notify,
    pub(crate) leader_epoch: i32,
    pub(crate) topic_id: gregor_metadata::Uuid,
    pub(crate) role: Mutex<Role>,
    /// The topic's traffic counters, shared by its partitions and kept across epochs.
    pub(crate) traffic: Arc<crate::metrics::TopicMetrics>,
}

impl Partition {
    pub(crate) fn role(&self) -> MutexGuard<'_, Role> {
        self.role.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The limits a leader keeps to: `min.insync.replicas` of the topic and the broker's
/// `replica.lag.time.max.ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) min_isr: usize,
    pub(crate) lag_max_ms: i64,
}

/// What a fetch of one partition found.
#[derive(Debug, Default)]
pub(crate) struct ReadResult {
    pub(crate) records: Bytes,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) log_start_offset: i64,
    /// For read_committed fetches: the aborted transactions overlapping `records`.
    pub(crate) aborted: Option<Vec<AbortedTxn>>,
}

#[derive(Debug)]
pub(crate) struct ReplicaManager {
    logs: LogManager,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    pub(crate) metrics: crate::metrics::BrokerMetrics,
}

fn lock(log: &Mutex<PartitionLog>) -> MutexGuard<'_, PartitionLog> {
    // A panic while appending leaves the log as the last completed write left it.
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

fn assignment(p: &PartitionRegistration) -> Assignment {
    Assignment {
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
    }
}

/// The leader's high watermark after the log grew, carried
/// into the log; whether it moved (then waiting fetches and produces are woken).
fn advance_high_watermark(state: &mut LeaderState, log: &mut PartitionLog, now_ms: i64) -> bool {
    let advanced = state.maybe_advance_high_watermark(log.log_end_offset(), now_ms);
    if advanced {
        log.raise_high_watermark(state.high_watermark());
    }
    advanced
}

fn not_leader(tp: &TopicPartition) -> BrokerError {
    BrokerError::Replica { partition: tp.to_string(), error: ResponseError::NotLeaderOrFollower }
}

impl ReplicaManager {
    pub(crate) fn new(logs: LogManager) -> Self {
        Self { logs, partitions: RwLock::new(HashMap::new()), metrics: crate::metrics::BrokerMetrics::default() }
    }

    pub(crate) fn log_manager(&self) -> &LogManager {
        &self.logs
    }

    pub(crate) fn get(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().unwrap_or_else(PoisonError::into_inner).get(tp).cloned()
    }

    pub(crate) fn hosted(&self) -> Vec<TopicPartition> {
        self.partitions.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// Leads a partition in the image's epoch: opens or creates its log, starts the epoch
    /// in its epoch cache and a fresh leader state (followers count from their first
    /// fetch in this epoch). The same epoch again only takes the new ISR and configs.
    pub(crate) fn become_leader(
        &self,
        tp: &TopicPartition,
        (config, topic_id): (LogConfig, gregor_metadata::Uuid),
        registration: &PartitionRegistration,
        (node_id, limits): (i32, Limits),
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        let limits_pair = (limits.min_isr, limits.lag_max_ms);
        if let Some(p) = self.get(tp).filter(|p| p.leader_epoch == registration.leader_epoch) {
            if let Role::Leader(state) = &mut *p.role() {
                state.update(&assignment(registration), limits_pair);
                let mut log = lock(&p.log);
                log.set_config(config);
                let _ = advance_high_watermark(state, &mut log, now_ms);
                drop(log);
                p.appended.notify_waiters();
                return Ok(());
            }
        }
        self.retire(tp);
        let log = self.logs.get_or_create(tp, config, &topic_id.to_string(), now_ms)?;
        // A leader alone in its ISR with min.insync.replicas 1 commits at once.
        let state = {
            let mut log = lock(&log);
            log.assign_epoch_start(registration.leader_epoch)?;
            let offsets = (log.log_end_offset(), log.high_watermark());
            let mut state = LeaderState::new(node_id, &assignment(registration), offsets, limits_pair, now_ms);
            let _ = advance_high_watermark(&mut state, &mut log, now_ms);
            state
        };
        let role = Role::Leader(Box::new(state));
        self.install(tp, log, registration, role);
        Ok(())
    }

    /// Follows `registration.leader` in the image's epoch; returns whether this is a new
    /// epoch for this broker (the fetcher must truncate before it fetches again).
    pub(crate) fn become_follower(
        &self,
        tp: &TopicPartition,
        (config, topic_id): (LogConfig, gregor_metadata::Uuid),
        registration: &PartitionRegistration,
        now_ms: i64,
    ) -> Result<bool, BrokerError> {
        if let Some(p) = self.get(tp).filter(|p| p.leader_epoch == registration.leader_epoch) {
            if matches!(*p.role(), Role::Follower) {
                lock(&p.log).set_config(config);
                return Ok(false);
            }
        }
        self.retire(tp);
        let log = self.logs.get_or_create(tp, config, &topic_id.to_string(), now_ms)?;
        self.install(tp, log, registration, Role::Follower);
        Ok(true)
    }

    /// Ends the partition's current epoch before the next one is built: taking its role
    /// lock waits for a follower append or truncation in progress, and once `Gone` the
    /// replica fetcher can no longer write into the log (it may still hold the old epoch
    /// from a fetch in flight), so the new leader's epoch start is final.
    fn retire(&self, tp: &TopicPartition) {
        if let Some(old) = self.get(tp) {
            *old.role() = Role::Gone;
            old.appended.notify_waiters();
        }
    }

    /// Puts the partition's new epoch in place.
    fn install(
        &self,
        tp: &TopicPartition,
        log: Arc<Mutex<PartitionLog>>,
        registration: &PartitionRegistration,
        role: Role,
    ) {
        let partition = Arc::new(Partition {
            log,
            appended: Notify::new(),
            leader_epoch: registration.leader_epoch,
            topic_id: registration.topic_id,
            role: Mutex::new(role),
            traffic: self.metrics.topic(&tp.topic),
        });
        // The old epoch, if any, was ended by `retire` first.
        let _ = self.partitions.write().unwrap_or_else(PoisonError::into_inner).insert(tp.clone(), partition);
    }

    /// Stops hosting a partition and deletes its data.
    pub(crate) fn delete(&self, tp: &TopicPartition) -> Result<(), BrokerError> {
        let removed = self.partitions.write().unwrap_or_else(PoisonError::into_inner).remove(tp);
        if let Some(p) = removed {
            // Wake fetchers and produces so they notice the partition is gone.
            *p.role() = Role::Gone;
            p.appended.notify_waiters();
        }
        self.logs.delete(tp)?;
        Ok(())
    }

    /// Appends producer batches as leader. `acks=all` is refused before the append while
    /// the ISR is below `min.insync.replicas` (NOT_ENOUGH_REPLICAS); the high watermark
    /// moves at once when the ISR needs nobody else.
    pub(crate) fn append(
        &self,
        tp: &TopicPartition,
        records: &mut [u8],
        acks: i16,
        now_ms: i64,
    ) -> Result<(AppendInfo, Arc<Partition>), BrokerError> {
        let partition = self.get(tp).ok_or_else(|| BrokerError::UnknownTopicOrPartition(tp.to_string()))?;
        let info = {
            let mut role = partition.role();
            let Role::Leader(state) = &mut *role else { return Err(not_leader(tp)) };
            if acks == -1 && state.is_under_min_isr() {
                return Err(BrokerError::Replica {
                    partition: tp.to_string(),
                    error: ResponseError::NotEnoughReplicas,
                });
            }
            let mut log = lock(&partition.log);
            let info = log.append_as_leader(records, partition.leader_epoch, now_ms)?;
            let _ = advance_high_watermark(state, &mut log, now_ms);
            log.maybe_flush(now_ms)?;
            info
        };
        if !info.duplicate {
            partition.traffic.produced(info.record_count, records.len());
        }
        partition.appended.notify_waiters();
        Ok((info, partition))
    }

    /// Where an `acks=all` produce needing the high watermark at `required` stands;
    /// `Err` once this broker no longer leads the partition in that epoch.
    pub(crate) fn ack(partition: &Partition, required: i64) -> Result<AckOutcome, ResponseError> {
        match &*partition.role() {
            Role::Leader(state) => Ok(state.ack(required)),
            _ => Err(ResponseError::NotLeaderOrFollower),
        }
    }

    /// `None` once the high watermark reached `required`, else why not.
    pub(crate) async fn replicated(partition: &Partition, required: i64, deadline: Instant) -> Option<ResponseError> {
        loop {
            let woken = partition.appended.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match Self::ack(partition, required) {
                Ok(AckOutcome::Done) => return None,
                Ok(AckOutcome::NotEnoughReplicasAfterAppend) => {
                    return Some(ResponseError::NotEnoughReplicasAfterAppend)
                }
                Err(e) => return Some(e),
                Ok(AckOutcome::Pending) => {}
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Some(ResponseError::RequestTimedOut);
            }
        }
    }

    /// The same from synchronous code (the coordinators' writes): returns at once when
    /// the high watermark is there already (always on one node), else blocks this thread.
    pub(crate) fn await_replicated(
        partition: &Partition,
        required: i64,
        timeout: std::time::Duration,
    ) -> Result<(), BrokerError> {
        if matches!(Self::ack(partition, required), Ok(AckOutcome::Done)) {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        match crate::metadata_quorum::block_on(Self::replicated(partition, required, deadline)) {
            None => Ok(()),
            Some(error) => Err(BrokerError::Replica { partition: partition.topic_id.to_string(), error }),
        }
    }

    /// A follower's fetch from `fetch_offset`: the leader learns its position (and may
    /// advance the high watermark). Refused unless this broker leads the partition.
    /// Returns whether the follower is in the ISR (throttles never apply to it).
    pub(crate) fn follower_fetched(
        &self,
        partition: &Partition,
        (replica_id, replica_epoch): (i32, i64),
        fetch_offset: i64,
        now_ms: i64,
    ) -> Result<bool, ResponseError> {
        let (advanced, in_sync) = {
            let mut role = partition.role();
            let Role::Leader(state) = &mut *role else { return Err(ResponseError::NotLeaderOrFollower) };
            if state.follower(replica_id).is_none() {
                return Err(ResponseError::NotLeaderOrFollower);
            }
            let mut log = lock(&partition.log);
            let end = log.log_end_offset();
            let advanced = state.follower_fetched(replica_id, replica_epoch, fetch_offset, end, now_ms);
            if advanced {
                log.raise_high_watermark(state.high_watermark());
            }
            (advanced, state.isr().contains(&replica_id))
        };
        if advanced {
            partition.appended.notify_waiters();
        }
        Ok(in_sync)
    }

    /// The followers a consumer could read `fetch_offset` from instead of this leader
    /// (KIP-392): in the ISR and holding that offset, as `(broker, log end offset, last
    /// caught up)`. `None` unless this broker leads the partition.
    pub(crate) fn read_replica_candidates(partition: &Partition, fetch_offset: i64) -> Option<Vec<(i32, i64, i64)>> {
        let role = partition.role();
        let Role::Leader(state) = &*role else { return None };
        let log_start = lock(&partition.log).log_start_offset();
        let candidates = state
            .isr()
            .iter()
            .filter_map(|b| state.follower(*b))
            .filter(|r| r.log_end_offset >= fetch_offset && fetch_offset >= log_start)
            .map(|r| (r.broker_id, r.log_end_offset, r.last_caught_up_ms))
            .collect();
        Some(candidates)
    }

    /// Appends batches fetched from the leader as they are, then takes the leader's high
    /// watermark (up to the local end) and log start offset. Returns the log end offset.
    pub(crate) fn append_as_follower(
        partition: &Partition,
        records: &[u8],
        (leader_high_watermark, leader_log_start): (i64, i64),
        now_ms: i64,
    ) -> Result<i64, BrokerError> {
        let end = {
            let role = partition.role();
            if !matches!(*role, Role::Follower) {
                return Err(BrokerError::Replica {
                    partition: partition.topic_id.to_string(),
                    error: ResponseError::FencedLeaderEpoch,
                });
            }
            let mut log = lock(&partition.log);
            if !records.is_empty() {
                let _ = log.append_as_follower(records, now_ms)?;
                partition.traffic.replicated_in(records.len());
            }
            let end = log.log_end_offset();
            log.raise_high_watermark(leader_high_watermark.min(end));
            if leader_log_start > log.log_start_offset() && leader_log_start <= log.high_watermark() {
                log.increment_log_start_offset(leader_log_start)?;
            }
            log.maybe_flush(now_ms)?;
            end
        };
        partition.appended.notify_waiters();
        Ok(end)
    }

    /// The ISR changes the partitions this broker leads want now (AlterPartition).
    pub(crate) fn isr_changes(
        &self,
        (now_ms, retry_ms): (i64, i64),
        eligible: &dyn Fn(i32, i64) -> bool,
    ) -> Vec<(TopicPartition, Arc<Partition>, IsrChange)> {
        let all: Vec<_> = self.partitions.read().unwrap_or_else(PoisonError::into_inner).clone().into_iter().collect();
        let mut changes = Vec::new();
        for (tp, partition) in all {
            let mut role = partition.role();
            let Role::Leader(state) = &mut *role else { continue };
            let end = lock(&partition.log).log_end_offset();
            if let Some(change) = state.isr_change(end, (now_ms, retry_ms), eligible) {
                drop(role);
                changes.push((tp, partition, change));
            }
        }
        changes
    }

    /// The controller refused an ISR change (or did not answer).
    pub(crate) fn isr_change_failed(partition: &Partition) {
        if let Role::Leader(state) = &mut *partition.role() {
            state.isr_change_failed();
        }
    }

    /// Reads whole batches from `offset`, at most `max_bytes` beyond the first batch, up
    /// to the high watermark, or for `read_committed` the last stable offset, or for a
    /// follower (`replica`) the log end offset.
    pub(crate) fn read(
        &self,
        partition: &Partition,
        offset: i64,
        max_bytes: usize,
        (read_committed, replica): (bool, bool),
    ) -> Result<ReadResult, BrokerError> {
        let (plan, aborted, high_watermark, last_stable_offset, log_start_offset) = {
            let log = lock(&partition.log);
            let hw = log.high_watermark();
            let (plan, aborted) = if replica {
                (log.read(offset, max_bytes, log.log_end_offset())?, None)
            } else if read_committed {
                let (plan, aborted) = log.read_committed(offset, max_bytes)?;
                (plan, Some(aborted))
            } else {
                (log.read(offset, max_bytes, hw)?, None)
            };
            (plan, aborted, hw, log.last_stable_offset(), log.log_start_offset())
        };
        let records = if plan.is_empty() { Bytes::new() } else { plan.read_bytes()? };
        Ok(ReadResult { records, high_watermark, last_stable_offset, log_start_offset, aborted })
    }

    /// `(log start offset, high watermark, last stable offset)` of a partition.
    pub(crate) fn offsets(&self, partition: &Partition) -> (i64, i64, i64) {
        let log = lock(&partition.log);
        (log.log_start_offset(), log.high_watermark(), log.last_stable_offset())
    }

    /// Appends a transaction marker (the transaction coordinator's write); returns the
    /// partition and the high watermark that makes it replicated.
    pub(crate) fn append_marker(
        &self,
        tp: &TopicPartition,
        marker: &TxnMarker,
        now_ms: i64,
    ) -> Result<(Arc<Partition>, i64), BrokerError> {
        let partition = self.get(tp).ok_or_else(|| BrokerError::UnknownTopicOrPartition(tp.to_string()))?;
        let required = {
            let mut role = partition.role();
            let Role::Leader(state) = &mut *role else { return Err(not_leader(tp)) };
            let mut log = lock(&partition.log);
            let info = log.append_marker(marker, partition.leader_epoch, now_ms)?;
            let _ = advance_high_watermark(state, &mut log, now_ms);
            log.maybe_flush(now_ms)?;
            info.last_offset + 1
        };
        partition.appended.notify_waiters();
        Ok((partition, required))
    }

    /// The producers a partition remembers (DescribeProducers).
    pub(crate) fn producers(&self, partition: &Partition) -> Vec<ProducerInfo> {
        lock(&partition.log).producers()
    }

    pub(crate) fn offset_for_timestamp(
        &self,
        partition: &Partition,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampAndOffset>, BrokerError> {
        Ok(lock(&partition.log).fetch_offset_by_timestamp(timestamp_ms)?)
    }

    pub(crate) fn max_timestamp(&self, partition: &Partition) -> Result<Option<TimestampAndOffset>, BrokerError> {
        Ok(lock(&partition.log).max_timestamp_and_offset()?)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1: the high watermark).
    /// Returns the new low watermark.
    pub(crate) fn delete_records_before(&self, partition: &Partition, offset: i64) -> Result<i64, BrokerError> {
        let mut log = lock(&partition.log);
        let hw = log.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if target < 0 || target > hw {
            return Err(gregor_log::LogError::OffsetOutOfRange {
                offset: target,
                log_start_offset: log.log_start_offset(),
                log_end_offset: hw,
            }
            .into());
        }
        log.increment_log_start_offset(target)?;
        Ok(log.log_start_offset())
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` and where it ended.
    pub(crate) fn end_offset_for_epoch(&self, partition: &Partition, epoch: i32) -> Option<(i32, i64)> {
        lock(&partition.log).end_offset_for_epoch(epoch)
    }

    pub(crate) fn size_bytes(&self, partition: &Partition) -> u64 {
        lock(&partition.log).size_bytes()
    }

    /// A follower's log, for fetch positions.
    pub(crate) fn log(partition: &Partition) -> MutexGuard<'_, PartitionLog> {
        lock(&partition.log)
    }

    /// Runs `f` on the log while the partition is still followed in this epoch (under its
    /// role lock, so the epoch cannot end meanwhile); `None` once it ended.
    pub(crate) fn while_following<T>(partition: &Partition, f: impl FnOnce(&mut PartitionLog) -> T) -> Option<T> {
        let role = partition.role();
        if !matches!(*role, Role::Follower) {
            return None;
        }
        let mut log = lock(&partition.log);
        Some(f(&mut log))
    }
}
