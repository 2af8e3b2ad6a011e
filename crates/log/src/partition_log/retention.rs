//! Retention (Kafka's `deleteOldSegments`), log start offset moves, and truncation.

use std::fs;
use std::path::PathBuf;

use super::PartitionLog;
use crate::error::{IoContext, LogError};
use crate::segment::LogSegment;

/// Files renamed to `.deleted`, removed once `file.delete.delay.ms` has passed.
#[derive(Debug)]
pub(super) struct PendingDelete {
    paths: Vec<PathBuf>,
    due_ms: i64,
}

impl PartitionLog {
    /// Deletes segments past `retention.ms` or beyond `retention.bytes` (only when the
    /// policy includes `delete`), and segments wholly below the log start offset (always,
    /// as Kafka does for DeleteRecords). Returns how many segments were deleted.
    pub fn delete_retained_segments(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.remove_due_files(now_ms)?;
        if self.deleted {
            return Ok(0);
        }
        let log_start_offset = self.log_start_offset;
        let mut deleted =
            self.delete_segments_while(now_ms, |_, next| next.is_some_and(|n| n.base_offset() <= log_start_offset))?;
        if !self.config.delete {
            // `cleanup.policy=compact` alone: the cleaner, not age or size, bounds the log.
            return Ok(deleted);
        }
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            deleted += self.delete_segments_while(now_ms, |segment, _| {
                now_ms.saturating_sub(segment.largest_timestamp()) > retention_ms
            })?;
        }
        if self.config.retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - self.config.retention_bytes;
            deleted += self.delete_segments_while(now_ms, |segment, _| {
                let fits = excess - segment.size() as i64 >= 0;
                if fits {
                    excess -= segment.size() as i64;
                }
                fits
            })?;
        }
        Ok(deleted)
    }

    /// Kafka's `deletableSegments` + `deleteSegments`: the oldest segments for which
    /// `predicate` holds, stopping at the first that fails, at an empty active segment,
    /// or at a segment holding offsets at or above the high watermark. When every segment
    /// goes, a new active segment is rolled first so the log is never without one.
    fn delete_segments_while(
        &mut self,
        now_ms: i64,
        mut predicate: impl FnMut(&LogSegment, Option<&LogSegment>) -> bool,
    ) -> Result<usize, LogError> {
        let mut doomed = Vec::new();
        let mut iter = self.segments.values().peekable();
        while let Some(segment) = iter.next() {
            let next = iter.peek().copied();
            let upper_bound = next.map_or(self.log_end_offset, LogSegment::base_offset);
            let last_and_empty = next.is_none() && segment.size() == 0;
            if last_and_empty || upper_bound > self.high_watermark || !predicate(segment, next) {
                break;
            }
            doomed.push(segment.base_offset());
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        if doomed.len() == self.segments.len() {
            self.roll(now_ms)?;
        }
        for base in &doomed {
            self.retire_segment(*base, now_ms.saturating_add(self.config.file_delete_delay_ms))?;
        }
        self.advance_log_start_offset(self.segments.keys().next().copied().unwrap_or(self.log_end_offset))?;
        Ok(doomed.len())
    }

    /// Takes a segment out of the log and renames its files to `.deleted`; readers that
    /// already hold its file keep reading it.
    /// `due_ms` is when the files may be removed; truncation removes them at once.
    pub(super) fn retire_segment(&mut self, base_offset: i64, due_ms: i64) -> Result<(), LogError> {
        self.retire_segment_keeping(base_offset, due_ms, false)
    }

    /// As `retire_segment`; `keep_txn_index` leaves the `.txnindex` for the cleaned
    /// segment that replaces this one.
    pub(super) fn retire_segment_keeping(
        &mut self,
        base_offset: i64,
        due_ms: i64,
        keep_txn_index: bool,
    ) -> Result<(), LogError> {
        if let Some(mut segment) = self.segments.remove(&base_offset) {
            tracing::info!(partition = %self.topic_partition, base_offset, "deleting segment");
            let paths = segment.rename_to_deleted(keep_txn_index)?;
            self.pending_deletes.push(PendingDelete { paths, due_ms });
        }
        Ok(())
    }

    fn advance_log_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.high_watermark = self.high_watermark.max(offset);
            self.recovery_point = self.recovery_point.max(offset);
            if self.epoch_cache.truncate_from_start(offset) {
                self.epoch_cache.persist()?;
            }
        }
        Ok(())
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the high
    /// watermark). Segments wholly below it are deleted by the next retention run.
    pub fn increment_log_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        if offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        self.advance_log_start_offset(offset)
    }

    /// Removes `.deleted` files whose delay is over.
    pub(super) fn remove_due_files(&mut self, now_ms: i64) -> Result<(), LogError> {
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending_deletes).into_iter().partition(|p| p.due_ms <= now_ms);
        self.pending_deletes = waiting;
        for path in due.iter().flat_map(|p| &p.paths) {
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).ctx("remove deleted segment file", path)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes everything from `offset` on (a follower diverging from its leader). The cut
    /// falls on a batch boundary: a batch holding `offset` is removed whole, so the new log
    /// end offset may be below `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        self.ensure_live()?;
        if offset >= self.log_end_offset {
            // Nothing to cut, but the epoch cache may end with an entry at the log end: a
            // leader deposed before it appended keeps its epoch's start there, and records
            // of an older epoch fetched next would be filed under it (Kafka's truncateTo
            // clears it the same way).
            if self.epoch_cache.truncate_from_end(self.log_end_offset) {
                self.epoch_cache.persist()?;
            }
            return Ok(());
        }
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(base, _)| *base).collect();
        self.dir_dirty |= !doomed.is_empty();
        for base in doomed {
            self.retire_segment(base, i64::MIN)?;
        }
        self.active_mut().truncate_to(offset)?;
        // The cut is fsynced (the renames by the next flush's directory sync): a replica
        // that dropped diverging batches must not find them again after a crash.
        self.active_mut().flush()?;
        self.log_end_offset = self.active().next_offset();
        self.after_truncation()
    }

    /// Deletes every segment and restarts the log empty at `offset`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        self.ensure_live()?;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for base in bases {
            self.retire_segment(base, i64::MIN)?;
        }
        self.segments.insert(offset, LogSegment::create(&self.dir, offset, &self.config, self.last_flush_ms)?);
        self.dir_dirty = true;
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.high_watermark = offset;
        self.recovery_point = offset;
        self.epoch_cache.truncate_from_end(i64::MIN);
        self.after_truncation()
    }

    fn after_truncation(&mut self) -> Result<(), LogError> {
        self.remove_due_files(i64::MIN)?;
        // A clean planned before the cut must not swap in segments from before it.
        self.generation += 1;
        self.first_dirty_offset = self.first_dirty_offset.min(self.log_end_offset);
        self.high_watermark = self.high_watermark.min(self.log_end_offset);
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        self.epoch_cache.truncate_from_end(self.log_end_offset);
        self.epoch_cache.persist()?;
        self.unflushed_messages = 0;
        self.rebuild_producer_state()
    }
}
