//! Kafka's `UnifiedLog` for one partition: an ordered map of segments, the offsets that
//! describe them, the leader-epoch cache and the producer state.
//!
//! ```text
//!  log_start_offset          recovery_point      high_watermark   log_end_offset
//!        │ seg 0 (flushed)      │ seg N (active, page cache) │            │
//!        ▼──────────────────────▼────────────────────────────▼────────────▼
//! ```
//!
//! Durability contract: `append_as_leader` returns once the bytes are in the page cache
//! (they survive a process crash, not a power loss). `flush` fsyncs everything up to the
//! log end offset and moves the recovery point there; on open, everything after the
//! recovery point is re-validated and cut at the first bad batch. Not internally
//! synchronized: callers hold a lock and mutate through `&mut self`.

mod compaction;
mod follower;
mod loader;
mod read;
mod retention;
mod txn;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gregor_protocol::record_batch::{
    set_base_offset, set_log_append_time, set_partition_leader_epoch, RecordBatchHeader,
};
use gregor_protocol::TopicPartition;

use crate::batch::BatchMeta;
use crate::checkpoint::{read_partition_metadata, sync_dir, write_partition_metadata};
use crate::cleaner::ensure_keyed;
use crate::config::{LogConfig, TimestampType};
use crate::epoch::{EpochEntry, LeaderEpochFileCache};
use crate::error::LogError;
use crate::producer_state::{CompletedTxn, PendingProducers, ProducerStateManager};
use crate::segment::{LogSegment, RollParams};
use crate::txn_index::AbortedTxn;

pub use read::{ReadPlan, TimestampAndOffset};
use retention::PendingDelete;
pub use txn::TxnMarker;

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped into the batches, or -1 for `CreateTime` topics.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub record_count: u32,
    /// True when the batch repeated one already in the log: nothing was written and
    /// the offsets are those of the original.
    pub duplicate: bool,
}

/// One partition's log. See the module documentation for the durability contract.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    topic_partition: TopicPartition,
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    recovery_point: i64,
    epoch_cache: LeaderEpochFileCache,
    producer_state: ProducerStateManager,
    last_snapshot_offset: Option<i64>,
    unflushed_messages: i64,
    last_flush_ms: i64,
    /// A segment file was created since the directory was last fsynced.
    dir_dirty: bool,
    pending_deletes: Vec<PendingDelete>,
    deleted: bool,
    /// The cleaner checkpoint (Kafka's first dirty offset); see `first_dirty_offset`.
    first_dirty_offset: i64,
    /// The earliest delete horizon of a tombstone in the clean section (`i64::MAX` when
    /// none), or `None` until the cleaner has looked after a restart.
    earliest_delete_horizon_ms: Option<i64>,
    /// Bumped by every truncation and clean, so a clean planned before one is abandoned.
    generation: u64,
}

/// Checks that `records` is exactly a sequence of whole, valid batches and returns each
/// one's position and size.
fn validate_batches(records: &[u8], max_message_bytes: u64) -> Result<Vec<(usize, usize)>, LogError> {
    let mut batches = Vec::new();
    let mut position = 0;
    while position < records.len() {
        let view = RecordBatchHeader::parse(&records[position..])?;
        if view.size() as u64 > max_message_bytes {
            return Err(LogError::RecordBatchTooLarge { size: view.size(), max_bytes: max_message_bytes });
        }
        view.validate_from_producer()?;
        if view.is_control() {
            return Err(LogError::InvalidRecord { reason: "only the transaction coordinator writes control batches" });
        }
        batches.push((position, view.size()));
        position += view.size();
    }
    if batches.is_empty() {
        return Err(LogError::InvalidRecord { reason: "the request holds no record batch" });
    }
    Ok(batches)
}

fn meta_at(records: &[u8], (position, size): (usize, usize)) -> Result<BatchMeta, LogError> {
    let view = RecordBatchHeader::parse(&records[position..position + size])?;
    Ok(BatchMeta::from_view(&view, size))
}

impl PartitionLog {
    /// Appends batches from a producer: validates them, drops retried duplicates, writes
    /// offsets, the leader epoch (and for `LogAppendTime` topics the time) into the bytes
    /// in place, and writes them with a single `pwrite`.
    pub fn append_as_leader(
        &mut self,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.ensure_live()?;
        let batches = validate_batches(records, self.config.max_message_bytes)?;
        if self.config.compact {
            // Decoding costs a copy (and a decompression); only compacted topics pay it.
            for &(position, size) in &batches {
                ensure_keyed(&records[position..position + size])?;
            }
        }
        if records.len() as u64 > self.config.segment_bytes {
            return Err(LogError::RecordListTooLarge { size: records.len(), max_bytes: self.config.segment_bytes });
        }
        if let Some(duplicate) = self.find_duplicate(records, &batches)? {
            return Ok(duplicate);
        }
        let append_time = self.append_time(now_ms);
        let metas = self.assign_offsets(records, &batches, leader_epoch, append_time)?;
        let mut pending = PendingProducers::default();
        for meta in metas.iter().filter(|m| m.has_producer_id()) {
            self.producer_state.check_and_stage(&mut pending, meta)?;
        }
        self.write_appended(records, &metas, pending, (leader_epoch, append_time), now_ms)
    }

    fn append_time(&self, now_ms: i64) -> Option<i64> {
        (self.config.message_timestamp_type == TimestampType::LogAppendTime).then_some(now_ms)
    }

    /// Writes batches whose offsets are assigned and producer updates checked, then
    /// applies the updates: transactions a marker ended leave the open set, and aborted
    /// ones are recorded in the active segment's transaction index.
    fn write_appended(
        &mut self,
        records: &[u8],
        metas: &[BatchMeta],
        pending: PendingProducers,
        (leader_epoch, append_time): (i32, Option<i64>),
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let first_offset = self.log_end_offset;
        let next_offset = metas.last().map_or(first_offset, BatchMeta::next_offset);
        let max_timestamp = metas.iter().map(|m| m.max_timestamp).max().unwrap_or(-1);
        let params =
            RollParams { messages_size: records.len() as u64, max_timestamp, max_offset: next_offset - 1, now_ms };
        self.maybe_roll(&params)?;
        self.active_mut().append(records, metas, now_ms)?;
        self.log_end_offset = next_offset;
        for (txn, last_stable_offset) in self.producer_state.apply(pending) {
            self.index_if_aborted(&txn, last_stable_offset)?;
        }
        self.unflushed_messages += next_offset - first_offset;
        if self.epoch_cache.assign(leader_epoch, first_offset) {
            self.epoch_cache.persist()?;
        }
        Ok(AppendInfo {
            first_offset,
            last_offset: next_offset - 1,
            log_append_time_ms: append_time.unwrap_or(-1),
            log_start_offset: self.log_start_offset,
            record_count: (next_offset - first_offset) as u32,
            duplicate: false,
        })
    }

    /// An aborted transaction goes into the active segment's `.txnindex`, so read_committed
    /// fetches can report it.
    fn index_if_aborted(&mut self, txn: &CompletedTxn, last_stable_offset: i64) -> Result<(), LogError> {
        if !txn.is_aborted {
            return Ok(());
        }
        self.active_mut().append_aborted_txn(AbortedTxn {
            producer_id: txn.producer_id,
            first_offset: txn.first_offset,
            last_offset: txn.last_offset,
            last_stable_offset,
        })
    }

    /// Kafka answers a retried batch with the offsets it was first written at.
    fn find_duplicate(&self, records: &[u8], batches: &[(usize, usize)]) -> Result<Option<AppendInfo>, LogError> {
        let none = PendingProducers::default();
        for batch in batches {
            let meta = meta_at(records, *batch)?;
            let Some(original) =
                meta.has_producer_id().then(|| self.producer_state.find_duplicate(&none, &meta)).flatten()
            else {
                continue;
            };
            return Ok(Some(AppendInfo {
                first_offset: original.first_offset,
                last_offset: original.last_offset,
                log_append_time_ms: if self.config.message_timestamp_type == TimestampType::LogAppendTime {
                    original.timestamp
                } else {
                    -1
                },
                log_start_offset: self.log_start_offset,
                record_count: (original.last_offset - original.first_offset + 1) as u32,
                duplicate: true,
            }));
        }
        Ok(None)
    }

    fn assign_offsets(
        &self,
        records: &mut [u8],
        batches: &[(usize, usize)],
        epoch: i32,
        append_time: Option<i64>,
    ) -> Result<Vec<BatchMeta>, LogError> {
        let mut next_offset = self.log_end_offset;
        let mut metas = Vec::with_capacity(batches.len());
        for &(position, size) in batches {
            let batch = &mut records[position..position + size];
            set_base_offset(batch, next_offset);
            set_partition_leader_epoch(batch, epoch);
            if let Some(now_ms) = append_time {
                set_log_append_time(batch, now_ms);
            }
            let meta = meta_at(records, (position, size))?;
            next_offset = meta.next_offset();
            metas.push(meta);
        }
        Ok(metas)
    }

    fn maybe_roll(&mut self, params: &RollParams) -> Result<(), LogError> {
        if self.active().should_roll(params, &self.config) {
            self.roll(params.now_ms)?;
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset. The old one is fsynced first and
    /// a producer snapshot is taken at the boundary, as Kafka does on roll.
    pub fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        let base_offset = self.log_end_offset;
        if self.active().base_offset() == base_offset {
            return Ok(());
        }
        self.flush_to_end()?;
        self.take_snapshot()?;
        let segment = LogSegment::create(&self.dir, base_offset, &self.config, now_ms)?;
        self.segments.insert(base_offset, segment);
        self.dir_dirty = true;
        Ok(())
    }

    /// Forgets idle producers (see `producer.id.expiration.ms`); returns how many.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producer_state.remove_expired(now_ms, expiration_ms)
    }

    /// Fsyncs the log and indexes up to the log end offset, advances the recovery point
    /// and snapshots the producer state there.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.deleted {
            return Ok(());
        }
        self.flush_to_end()?;
        self.take_snapshot()
    }

    /// Flushes when `flush.messages` records are unflushed or `flush.ms` has passed, and
    /// removes `.deleted` files whose delay is over.
    pub fn maybe_flush(&mut self, now_ms: i64) -> Result<(), LogError> {
        self.remove_due_files(now_ms)?;
        let by_count = self.unflushed_messages >= self.config.flush_interval_messages;
        let by_time =
            self.unflushed_messages > 0 && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_interval_ms;
        if !self.deleted && (by_count || by_time) {
            self.flush_to_end()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    fn flush_to_end(&mut self) -> Result<(), LogError> {
        let from = self.segments.range(..=self.recovery_point).next_back().map_or(i64::MIN, |(base, _)| *base);
        if self.recovery_point < self.log_end_offset {
            for segment in self.segments.range_mut(from..).map(|(_, s)| s) {
                segment.flush()?;
            }
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        self.recovery_point = self.recovery_point.max(self.log_end_offset);
        self.unflushed_messages = 0;
        Ok(())
    }

    fn take_snapshot(&mut self) -> Result<(), LogError> {
        if self.last_snapshot_offset != Some(self.log_end_offset) {
            self.producer_state.take_snapshot(self.log_end_offset)?;
            self.last_snapshot_offset = Some(self.log_end_offset);
        }
        Ok(())
    }

    /// Flushes, snapshots producer state and removes pending `.deleted` files. Index files
    /// are never pre-allocated here, so they already hold exactly their entries.
    pub fn close(&mut self) -> Result<(), LogError> {
        self.flush()?;
        self.remove_due_files(i64::MAX)
    }

    pub fn write_partition_metadata(&self, topic_id: &str) -> Result<(), LogError> {
        write_partition_metadata(&self.dir, topic_id)
    }

    /// The topic id from `partition.metadata`, if written.
    pub fn topic_id(&self) -> Result<Option<String>, LogError> {
        read_partition_metadata(&self.dir)
    }

    pub fn set_config(&mut self, config: LogConfig) {
        for segment in self.segments.values_mut() {
            segment.set_config(&config);
        }
        self.config = config;
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    /// Sets the high watermark, clamped to `[log_start_offset, log_end_offset]`.
    pub fn update_high_watermark(&mut self, offset: i64) {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset);
    }
    /// Everything below this offset is fsynced and will not be re-validated on open.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epoch_cache.latest_epoch()
    }
    /// The leader epoch under which `offset` was written, if known.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.epoch_cache.epoch_for_offset(offset)
    }
    /// Kafka's `endOffsetForEpoch` (OffsetForLeaderEpoch): the largest epoch at or below
    /// `epoch` and the offset where it ends.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epoch_cache.end_offset_for(epoch, self.log_end_offset)
    }
    pub fn leader_epochs(&self) -> Vec<EpochEntry> {
        self.epoch_cache.entries().to_vec()
    }

    /// Called by `LogManager::delete`: later appends fail and flushes do nothing.
    pub(crate) fn mark_deleted(&mut self) {
        self.deleted = true;
    }

    fn ensure_live(&self) -> Result<(), LogError> {
        if self.deleted {
            return Err(LogError::LogDeleted { partition: self.topic_partition.to_string() });
        }
        Ok(())
    }

    fn active(&self) -> &LogSegment {
        self.segments.values().next_back().expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments.values_mut().next_back().expect("a log always has an active segment")
    }
}
