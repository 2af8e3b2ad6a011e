//! The partitions this broker hosts: appends, reads and the wake-ups that long-polling
//! fetches wait on. Each partition has its own lock; there is no lock over all of them
//! on the produce or fetch path (the map of partitions is read-locked only to look up).
//!
//! Reads build a plan (file, position, length) under the partition lock and read the
//! bytes after releasing it, so a slow disk read never blocks appends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use bytes::Bytes;
use gregor_log::{
    AbortedTxn, AppendInfo, LogConfig, LogManager, PartitionLog, ProducerInfo, TimestampAndOffset, TxnMarker,
};
use gregor_protocol::TopicPartition;
use tokio::sync::Notify;

use crate::BrokerError;

/// One hosted partition.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) log: Arc<Mutex<PartitionLog>>,
    /// Woken after every append, so fetches waiting for `min.bytes` re-check.
    pub(crate) appended: Notify,
    pub(crate) leader_epoch: i32,
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
}

fn lock(log: &Mutex<PartitionLog>) -> std::sync::MutexGuard<'_, PartitionLog> {
    // A panic while appending leaves the log as the last completed write left it.
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReplicaManager {
    pub(crate) fn new(logs: LogManager) -> Self {
        Self { logs, partitions: RwLock::new(HashMap::new()) }
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

    /// Opens or creates the log of a partition this broker leads.
    pub(crate) fn become_leader(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        topic_id: &str,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        if let Some(p) = self.get(tp) {
            if p.leader_epoch == leader_epoch {
                lock(&p.log).set_config(config);
                return Ok(());
            }
        }
        let log = self.logs.get_or_create(tp, config, topic_id, now_ms)?;
        let partition = Arc::new(Partition { log, appended: Notify::new(), leader_epoch });
        let _ = self.partitions.write().unwrap_or_else(PoisonError::into_inner).insert(tp.clone(), partition);
        Ok(())
    }

    /// Stops hosting a partition and deletes its data.
    pub(crate) fn delete(&self, tp: &TopicPartition) -> Result<(), BrokerError> {
        let removed = self.partitions.write().unwrap_or_else(PoisonError::into_inner).remove(tp);
        if let Some(p) = removed {
            // Wake fetchers so they notice the partition is gone.
            p.appended.notify_waiters();
        }
        self.logs.delete(tp)?;
        Ok(())
    }

    /// Appends producer batches as leader; on one node the high watermark follows the
    /// log end offset at once.
    pub(crate) fn append(
        &self,
        tp: &TopicPartition,
        records: &mut [u8],
        now_ms: i64,
    ) -> Result<AppendInfo, BrokerError> {
        let partition = self.get(tp).ok_or_else(|| BrokerError::UnknownTopicOrPartition(tp.to_string()))?;
        let info = {
            let mut log = lock(&partition.log);
            let info = log.append_as_leader(records, partition.leader_epoch, now_ms)?;
            let end = log.log_end_offset();
            log.update_high_watermark(end);
            log.maybe_flush(now_ms)?;
            info
        };
        partition.appended.notify_waiters();
        Ok(info)
    }

    /// Reads whole batches from `offset`, at most `max_bytes` beyond the first batch, up
    /// to the high watermark, or for `read_committed` the last stable offset.
    pub(crate) fn read(
        &self,
        partition: &Partition,
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
    ) -> Result<ReadResult, BrokerError> {
        let (plan, aborted, high_watermark, last_stable_offset, log_start_offset) = {
            let log = lock(&partition.log);
            let hw = log.high_watermark();
            let (plan, aborted) = if read_committed {
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

    /// Appends a transaction marker (the transaction coordinator's write).
    pub(crate) fn append_marker(
        &self,
        tp: &TopicPartition,
        marker: &TxnMarker,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        let partition = self.get(tp).ok_or_else(|| BrokerError::UnknownTopicOrPartition(tp.to_string()))?;
        {
            let mut log = lock(&partition.log);
            log.append_marker(marker, partition.leader_epoch, now_ms)?;
            let end = log.log_end_offset();
            log.update_high_watermark(end);
            log.maybe_flush(now_ms)?;
        }
        partition.appended.notify_waiters();
        Ok(())
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
}
