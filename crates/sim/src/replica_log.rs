//! A replica's log as a small in-memory model: records (offset, leader epoch, value), the
//! high watermark and the leader-epoch cache. The storage engine is not under test, but
//! the epoch cache answers OffsetForLeaderEpoch, so its rules are copied exactly from
//! `gregor_log` (`epoch.rs`, `partition_log::{follower, retention, loader}`), including
//! where they differ from Kafka's.
//!
//! Each record also carries a hash of the log up to it, so "these two logs hold the same
//! records below offset n" is one comparison (the invariants ask it at every step).

use crate::config::EpochCache;
use crate::rng::mix;

/// One record: its offset, the leader epoch it was written in, and a unique value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) offset: i64,
    pub(crate) epoch: i32,
    pub(crate) value: u64,
}

/// `(epoch, start offset)`, as in `leader-epoch-checkpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EpochEntry {
    epoch: i32,
    start: i64,
}

/// The log start offset is always 0 (no retention is simulated).
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplicaLog {
    records: Vec<Record>,
    /// `hashes[i]`: hash of `records[..=i]`.
    hashes: Vec<u64>,
    epochs: Vec<EpochEntry>,
    high_watermark: i64,
}

fn chain(previous: u64, r: &Record) -> u64 {
    mix(previous ^ mix((r.offset as u64) ^ ((r.epoch as u64) << 40) ^ r.value.rotate_left(17)))
}

impl ReplicaLog {
    pub(crate) fn log_end_offset(&self) -> i64 {
        self.records.len() as i64
    }

    pub(crate) fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub(crate) fn records(&self) -> &[Record] {
        &self.records
    }

    pub(crate) fn get(&self, offset: i64) -> Option<Record> {
        usize::try_from(offset).ok().and_then(|i| self.records.get(i)).copied()
    }

    /// Hash of the first `n` records; `None` when the log is shorter.
    pub(crate) fn prefix_hash(&self, n: i64) -> Option<u64> {
        match n {
            0 => Some(0),
            n if n < 0 || n > self.log_end_offset() => None,
            n => Some(self.hashes[(n - 1) as usize]),
        }
    }

    fn push(&mut self, record: Record) {
        let previous = self.hashes.last().copied().unwrap_or(0);
        self.hashes.push(chain(previous, &record));
        self.records.push(record);
    }

    /// `append_as_leader`: the batch's epoch enters the cache if it is new.
    pub(crate) fn append_as_leader(&mut self, epoch: i32, value: u64) -> Record {
        let record = Record { offset: self.log_end_offset(), epoch, value };
        let _ = self.assign(epoch, record.offset);
        self.push(record);
        record
    }

    /// `append_as_follower`: the leader's records as they are; they must continue the log.
    pub(crate) fn append_as_follower(&mut self, records: &[Record]) -> Result<(), String> {
        if records.first().is_some_and(|r| r.offset < self.log_end_offset()) {
            return Err("a replicated batch does not continue the log".into());
        }
        if records.first().is_some_and(|r| r.offset > self.log_end_offset()) {
            // Only compaction leaves gaps, and it is not simulated: a gap is a harness bug.
            return Err(format!("gap: log ends at {}, batch starts at {}", self.log_end_offset(), records[0].offset));
        }
        for r in records {
            let _ = self.assign(r.epoch, r.offset);
            self.push(*r);
        }
        Ok(())
    }

    /// `raise_high_watermark`: never back (except by truncation), never past the end.
    pub(crate) fn raise_high_watermark(&mut self, offset: i64) {
        if offset > self.high_watermark {
            self.high_watermark = offset.clamp(0, self.log_end_offset());
        }
    }

    /// `truncate_to`. With Gregor's rules a cut at or past the end changes nothing, the
    /// epoch cache included; Kafka's still cuts the cache at the log end.
    pub(crate) fn truncate_to(&mut self, offset: i64, rules: EpochCache) {
        if offset >= self.log_end_offset() {
            if rules == EpochCache::Kafka {
                self.truncate_epochs_from_end(self.log_end_offset());
            }
            return;
        }
        let keep = offset.max(0) as usize;
        self.records.truncate(keep);
        self.hashes.truncate(keep);
        self.high_watermark = self.high_watermark.min(self.log_end_offset());
        self.truncate_epochs_from_end(self.log_end_offset());
    }

    /// `assign_epoch_start`: becoming leader starts its epoch at the log end offset.
    pub(crate) fn assign_epoch_start(&mut self, epoch: i32) {
        if self.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return;
        }
        let _ = self.assign(epoch, self.log_end_offset());
    }

    /// `LeaderEpochFileCache::assign`: only an epoch above the latest is recorded.
    fn assign(&mut self, epoch: i32, start: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        self.epochs.retain(|e| e.start < start);
        self.epochs.push(EpochEntry { epoch, start });
        true
    }

    fn truncate_epochs_from_end(&mut self, end: i64) {
        self.epochs.retain(|e| e.start < end);
    }

    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.epochs.last().map(|e| e.epoch)
    }

    /// `end_offset_for`: the largest epoch at or below `epoch` and where it ends (the next
    /// epoch's start, or the log end offset for the latest). For an epoch below every
    /// known one, Gregor's answers `None` (as for an empty cache); Kafka's
    /// `LeaderEpochFileCache.endOffsetFor` answers `(epoch, start of the first epoch)`.
    pub(crate) fn end_offset_for_epoch(&self, epoch: i32, rules: EpochCache) -> Option<(i32, i64)> {
        let idx = self.epochs.partition_point(|e| e.epoch <= epoch);
        let Some(found) = idx.checked_sub(1).and_then(|i| self.epochs.get(i)) else {
            return match (rules, self.epochs.first()) {
                (EpochCache::Kafka, Some(first)) if epoch >= 0 => Some((epoch, first.start)),
                _ => None,
            };
        };
        let end = self.epochs.get(idx).map_or(self.log_end_offset(), |next| next.start);
        Some((found.epoch, end))
    }

    /// For failure reports: the log's shape, and where it first differs from `other`.
    pub(crate) fn describe(&self, other: &ReplicaLog) -> String {
        let first_diff = (0..self.log_end_offset().max(other.log_end_offset())).find(|&o| self.get(o) != other.get(o));
        let epochs: Vec<(i32, i64)> = self.epochs.iter().map(|e| (e.epoch, e.start)).collect();
        let diff = first_diff.map(|o| format!(", first differs at {o}: {:?} vs {:?}", self.get(o), other.get(o)));
        format!(
            "LEO {} HW {} epochs {epochs:?}{}",
            self.log_end_offset(),
            self.high_watermark,
            diff.unwrap_or_default()
        )
    }

    /// A follower's read from `from`, at most `max` records; `None` past the end
    /// (OFFSET_OUT_OF_RANGE).
    pub(crate) fn read(&self, from: i64, max: usize) -> Option<Vec<Record>> {
        if from < 0 || from > self.log_end_offset() {
            return None;
        }
        Some(self.records[from as usize..].iter().take(max).copied().collect())
    }

    /// Opening the log after kill -9 (`loader.rs` and `LogManager::open`): every record
    /// survives (the page cache did), the epoch cache loses entries past the end, and the
    /// high watermark is the last checkpointed one.
    pub(crate) fn reopen(&mut self, checkpointed_high_watermark: i64) {
        self.truncate_epochs_from_end(self.log_end_offset());
        self.high_watermark = checkpointed_high_watermark.clamp(0, self.log_end_offset());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_equal_records_should_have_equal_prefix_hashes() {
        let mut a = ReplicaLog::default();
        let mut b = ReplicaLog::default();
        for v in 0..5 {
            let r = a.append_as_leader(1, v);
            b.append_as_follower(&[r]).unwrap();
        }
        assert_eq!(a.prefix_hash(5), b.prefix_hash(5));
        b.truncate_to(3, EpochCache::Legacy);
        let _ = b.append_as_leader(2, 99);
        assert_eq!(a.prefix_hash(3), b.prefix_hash(3));
        assert_ne!(a.prefix_hash(4), b.prefix_hash(4));
        assert_eq!(b.prefix_hash(6), None);
    }

    #[test]
    fn given_epochs_should_answer_offset_for_leader_epoch_like_the_log() {
        let mut log = ReplicaLog::default();
        let _ = log.append_as_leader(1, 0);
        let _ = log.append_as_leader(1, 1);
        log.assign_epoch_start(3);
        let _ = log.append_as_leader(3, 2);
        let gregor = EpochCache::Legacy;
        assert_eq!(log.end_offset_for_epoch(2, gregor), Some((1, 2)));
        assert_eq!(log.end_offset_for_epoch(3, gregor), Some((3, 3)));
        assert_eq!(log.end_offset_for_epoch(0, gregor), None);
        assert_eq!(log.end_offset_for_epoch(0, EpochCache::Kafka), Some((0, 0)));
        log.truncate_to(2, EpochCache::Legacy);
        assert_eq!(log.latest_epoch(), Some(1));
    }
}
