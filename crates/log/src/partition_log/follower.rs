//! The follower's append (Kafka's `appendAsFollower`): batches copied from the leader
//! keep the offsets, leader epochs and timestamps the leader gave them; the follower only
//! checks that they are whole and intact and that they continue its log, and rebuilds
//! its producer state and leader-epoch cache from them, so that it can take over as
//! leader with the same duplicate detection and transactions.

use bytes::Bytes;
use gregor_protocol::record_batch::RecordBatchHeader;

use super::txn::marker_of;
use super::{AppendInfo, PartitionLog};
use crate::batch::BatchMeta;
use crate::error::LogError;
use crate::segment::RollParams;

impl PartitionLog {
    /// A new leader epoch starts at the log end offset (Kafka's
    /// `maybeAssignEpochStartOffset` on becoming leader), so OffsetForLeaderEpoch answers
    /// for the previous epoch end where this leader's log ends, even before it appends.
    pub fn assign_epoch_start(&mut self, epoch: i32) -> Result<(), LogError> {
        if self.epoch_cache.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return Ok(());
        }
        if self.epoch_cache.assign(epoch, self.log_end_offset) {
            self.epoch_cache.persist()?;
        }
        Ok(())
    }

    /// Raises the high watermark (a leader's from its followers, a follower's from its
    /// leader); it never moves back, except by a truncation.
    pub fn raise_high_watermark(&mut self, offset: i64) {
        if offset > self.high_watermark {
            self.update_high_watermark(offset);
        }
    }

    /// Appends batches fetched from the leader as they are. The first must start at or
    /// after the log end offset (compaction leaves gaps), every next one after the last.
    pub fn append_as_follower(&mut self, records: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        self.ensure_live()?;
        let metas = self.follower_batches(records)?;
        let (Some(first), Some(last)) = (metas.first(), metas.last()) else {
            return Err(LogError::InvalidRecord { reason: "the leader sent no record batch" });
        };
        let (first_offset, next_offset) = (first.base_offset, last.next_offset());
        let max_timestamp = metas.iter().map(|m| m.max_timestamp).max().unwrap_or(-1);
        let params =
            RollParams { messages_size: records.len() as u64, max_timestamp, max_offset: next_offset - 1, now_ms };
        self.maybe_roll(&params)?;
        self.active_mut().append(records, &metas, now_ms)?;
        self.log_end_offset = next_offset;
        let mut epochs_changed = false;
        let mut position = 0;
        for meta in &metas {
            let bytes = &records[position..position + meta.size as usize];
            position += meta.size as usize;
            epochs_changed |= self.epoch_cache.assign(meta.leader_epoch, meta.base_offset);
            self.replay_replicated(meta, bytes)?;
        }
        if epochs_changed {
            self.epoch_cache.persist()?;
        }
        self.unflushed_messages += next_offset - first_offset;
        Ok(AppendInfo {
            first_offset,
            last_offset: next_offset - 1,
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset,
            record_count: u32::try_from(next_offset - first_offset).unwrap_or(u32::MAX),
            duplicate: false,
        })
    }

    /// Validates the leader's batches (size, magic, CRC) and their order.
    fn follower_batches(&self, records: &[u8]) -> Result<Vec<BatchMeta>, LogError> {
        if records.len() as u64 > self.config.segment_bytes {
            return Err(LogError::RecordListTooLarge { size: records.len(), max_bytes: self.config.segment_bytes });
        }
        let mut metas = Vec::new();
        let mut next = self.log_end_offset;
        let mut position = 0;
        while position < records.len() {
            let view = RecordBatchHeader::parse(&records[position..])?;
            if !view.is_crc_valid() {
                return Err(LogError::CorruptRecord { reason: "a replicated batch failed its CRC check" });
            }
            if view.base_offset() < next {
                return Err(LogError::InvalidRecord { reason: "a replicated batch does not continue the log" });
            }
            let meta = BatchMeta::from_view(&view, view.size());
            next = meta.next_offset();
            position += view.size();
            metas.push(meta);
        }
        Ok(metas)
    }

    /// Producer state and the transaction index after one replicated batch, as recovery
    /// rebuilds them.
    fn replay_replicated(&mut self, meta: &BatchMeta, bytes: &[u8]) -> Result<(), LogError> {
        if !meta.is_control {
            self.producer_state.replay(meta);
            return Ok(());
        }
        let Some((commit, coordinator_epoch)) = marker_of(Bytes::copy_from_slice(bytes)) else {
            return Ok(());
        };
        let (txn, last_stable_offset) = self.producer_state.replay_marker(meta, commit, coordinator_epoch);
        self.index_if_aborted(&txn, last_stable_offset)
    }
}
