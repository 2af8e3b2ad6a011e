//! The partition side of log compaction: planning a clean under the lock, and swapping
//! the cleaned segments in. The cleaning itself is in `crate::cleaner`.

use super::PartitionLog;
use crate::checkpoint::sync_dir;
use crate::cleaner::swap::{cleaned_to_swap, remove_transient, swap_to_final};
use crate::cleaner::{
    abandon, CleanOutcome, CleanPlan, CleanStats, CleanedSegments, SegmentSnapshot, DEFAULT_DEDUPE_BUFFER_BYTES,
};
use crate::error::LogError;
use crate::segment::LogSegment;

impl PartitionLog {
    /// Compacts the log if it needs it (see `crate::cleaner`): plan, clean and swap in one
    /// call, all under `&mut self`. `LogManager::run_cleaner` runs the same steps but
    /// releases the partition lock while the segments are read and written.
    pub fn clean(&mut self, now_ms: i64) -> Result<Option<CleanStats>, LogError> {
        let Some(plan) = self.plan_clean(now_ms) else {
            return Ok(None);
        };
        let outcome = plan.execute()?;
        self.finish_clean(outcome, now_ms)
    }

    /// Kafka's cleaner checkpoint: every offset below it has been cleaned at least once.
    /// Starts at the log start offset; kept in `cleaner-offset-checkpoint` by `LogManager`.
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset.clamp(self.log_start_offset, self.log_end_offset)
    }

    /// Restores the cleaner checkpoint read at start-up.
    pub(crate) fn set_first_dirty_offset(&mut self, offset: i64) {
        self.first_dirty_offset = offset;
    }

    /// Kafka's `firstUncleanableDirtyOffset`: never the active segment, nothing at or
    /// above the last stable offset (it could still be truncated, or belong to an open
    /// transaction), and nothing from the first
    /// segment holding records newer than `min.compaction.lag.ms`.
    fn first_uncleanable_offset(&self, now_ms: i64) -> i64 {
        // Open transactions are not cleaned: whether their records stay is not known yet.
        let mut end = self.active().base_offset().min(self.last_stable_offset());
        let lag = self.config.min_compaction_lag_ms;
        if lag > 0 {
            let too_new =
                self.segments.values().find(|s| s.size() > 0 && s.largest_timestamp() > now_ms.saturating_sub(lag));
            end = end.min(too_new.map_or(i64::MAX, LogSegment::base_offset));
        }
        end
    }

    /// Step 1 (lock held, no I/O): the cleanable segments, and whether cleaning them is
    /// due. `None` when there is nothing to do.
    pub(crate) fn plan_clean(&self, now_ms: i64) -> Option<CleanPlan> {
        if self.deleted || !self.config.compact {
            return None;
        }
        let end = self.first_uncleanable_offset(now_ms);
        let mut segments = Vec::new();
        let mut end_offset = self.log_start_offset;
        let mut iter = self.segments.values().peekable();
        while let (Some(segment), Some(next)) = (iter.next(), iter.peek()) {
            if next.base_offset() > end {
                break;
            }
            segments.push(SegmentSnapshot::of(segment));
            end_offset = next.base_offset();
        }
        if segments.is_empty() {
            return None;
        }
        let first_dirty_offset = self.first_dirty_offset();
        // A segment is clean when the next one starts at or below the checkpoint.
        let upper = |i: usize| segments.get(i + 1).map_or(end_offset, |s| s.base_offset);
        let first_dirty = (0..segments.len()).find(|&i| upper(i) > first_dirty_offset).unwrap_or(segments.len());
        let triggered = self.clean_is_due(&segments, first_dirty, now_ms);
        let horizon_unknown = self.earliest_delete_horizon_ms.is_none() && first_dirty > 0;
        if !triggered && !horizon_unknown {
            return None;
        }
        Some(CleanPlan {
            dir: self.dir.clone(),
            config: self.config.clone(),
            now_ms,
            segments,
            first_dirty,
            first_dirty_offset,
            end_offset,
            triggered,
            producer_last_offsets: self.producer_state.last_batch_offsets(),
            aborted: self.aborted_txns_below(end_offset),
            generation: self.generation,
            dedupe_buffer_bytes: DEFAULT_DEDUPE_BUFFER_BYTES,
        })
    }

    /// Kafka's triggers: dirty bytes / all cleanable bytes at `min.cleanable.dirty.ratio`,
    /// dirty data older than `max.compaction.lag.ms`, or (KIP-534) a tombstone whose delete
    /// horizon has passed.
    fn clean_is_due(&self, segments: &[SegmentSnapshot], first_dirty: usize, now_ms: i64) -> bool {
        let clean_bytes: u64 = segments[..first_dirty].iter().map(|s| s.size).sum();
        let dirty_bytes: u64 = segments[first_dirty..].iter().map(|s| s.size).sum();
        let ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes).max(1) as f64;
        let max_lag = self.config.max_compaction_lag_ms;
        let overdue = segments.get(first_dirty).and_then(|s| self.segments.get(&s.base_offset)).is_some_and(|s| {
            let first = s.first_batch_timestamp().filter(|t| *t >= 0).unwrap_or_else(|| s.largest_timestamp());
            max_lag < i64::MAX && s.size() > 0 && first <= now_ms.saturating_sub(max_lag)
        });
        let horizon_passed = first_dirty > 0 && self.earliest_delete_horizon_ms.is_some_and(|h| h <= now_ms);
        (dirty_bytes > 0 && (ratio >= self.config.min_cleanable_dirty_ratio || overdue)) || horizon_passed
    }

    /// Step 3 (lock held): swaps the cleaned segments in, unless a planned segment was
    /// deleted, truncated or replaced meanwhile; then the `.cleaned` files are dropped and
    /// `Ok(None)` says nothing changed.
    pub(crate) fn finish_clean(&mut self, outcome: CleanOutcome, now_ms: i64) -> Result<Option<CleanStats>, LogError> {
        let cleaned = match outcome {
            CleanOutcome::Skipped { earliest_delete_horizon_ms } => {
                self.earliest_delete_horizon_ms.get_or_insert(earliest_delete_horizon_ms);
                return Ok(None);
            }
            CleanOutcome::Cleaned(cleaned) => cleaned,
        };
        if !self.still_holds(&cleaned) {
            tracing::info!(partition = %self.topic_partition, "log changed while cleaning; clean abandoned");
            abandon(&self.dir, &cleaned.segments)?;
            return Ok(None);
        }
        let bases: Vec<i64> = cleaned.segments.iter().map(|s| s.base_offset).collect();
        if let Err(error) = cleaned_to_swap(&self.dir, &bases) {
            // Only the oldest segments may have been committed; recovery would finish
            // those, so removing every `.swap` is the consistent choice while running.
            remove_transient(&self.dir, &bases)?;
            return Err(error);
        }
        let due_ms = now_ms.saturating_add(self.config.file_delete_delay_ms);
        for &base in &bases {
            self.retire_segment_keeping(base, due_ms, true)?;
            swap_to_final(&self.dir, base)?;
        }
        sync_dir(&self.dir)?;
        for &base in &bases {
            let (mut segment, damaged) = LogSegment::open(&self.dir, base, &self.config, now_ms)?;
            if damaged {
                segment.recover(&mut |_| {})?;
            }
            self.segments.insert(base, segment);
        }
        self.first_dirty_offset = cleaned.stats.end_offset;
        self.earliest_delete_horizon_ms = Some(cleaned.earliest_delete_horizon_ms);
        self.generation += 1;
        tracing::info!(partition = %self.topic_partition, stats = ?cleaned.stats, "log cleaned");
        Ok(Some(cleaned.stats))
    }

    /// Whether every planned segment is still in the log, unchanged (same open file).
    fn still_holds(&self, cleaned: &CleanedSegments) -> bool {
        !self.deleted
            && cleaned.generation == self.generation
            && cleaned.segments.iter().all(|planned| {
                self.segments
                    .get(&planned.base_offset)
                    .is_some_and(|s| std::sync::Arc::ptr_eq(s.file(), &planned.file) && s.size() == planned.size)
            })
    }
}

#[cfg(test)]
mod tests {
    use gregor_protocol::kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use gregor_protocol::TopicPartition;

    use super::*;
    use crate::config::LogConfig;

    fn keyed(key: &str) -> Vec<u8> {
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1_000,
            key: Some(bytes::Bytes::copy_from_slice(key.as_bytes())),
            value: Some(bytes::Bytes::from_static(b"value")),
            headers: Default::default(),
        };
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, [&record], &options).unwrap();
        buf.to_vec()
    }

    #[test]
    fn given_truncation_between_plan_and_swap_when_finishing_should_abandon_the_clean() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { compact: true, segment_bytes: 256, ..LogConfig::default() };
        let mut log = PartitionLog::open(dir.path().join("t-0"), TopicPartition::new("t", 0), config, 0, 0).unwrap();
        for i in 0..20 {
            log.append_as_leader(&mut keyed(&format!("k{}", i % 3)), 0, 0).unwrap();
        }
        log.roll(0).unwrap();
        log.update_high_watermark(log.log_end_offset());
        let outcome = log.plan_clean(10).unwrap().execute().unwrap();
        let cleaned = std::fs::read_dir(log.dir())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".cleaned"));
        assert!(cleaned.count() > 0);
        log.truncate_to(15).unwrap();
        assert_eq!(log.finish_clean(outcome, 10).unwrap(), None);
        let left = std::fs::read_dir(log.dir()).unwrap().filter(|e| {
            let name = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
            name.ends_with(".cleaned") || name.ends_with(".swap")
        });
        assert_eq!(left.count(), 0);
        assert_eq!(log.first_dirty_offset(), 0);
        assert!(log.clean(10).unwrap().is_some(), "the next run cleans the truncated log");
    }
}
