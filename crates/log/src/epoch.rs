//! Kafka's `LeaderEpochFileCache`: the first offset written under each leader epoch,
//! persisted in `leader-epoch-checkpoint` (`0\n<count>\n<epoch> <start_offset>\n`...).
//! Rewritten atomically on every change; changes are rare (one per leader election).

use std::path::{Path, PathBuf};

use crate::checkpoint::{checkpoint_lines, format_checkpoint, read_optional, write_atomically};
use crate::error::LogError;

pub(crate) const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One leader epoch and the first offset its leader wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

#[derive(Debug)]
pub(crate) struct LeaderEpochFileCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochFileCache {
    /// Loads the checkpoint in `dir`; a missing or malformed file starts empty (recovery
    /// re-learns epochs from the batches it scans).
    pub(crate) fn load(dir: &Path) -> Result<Self, LogError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let text = read_optional(&path)?.unwrap_or_default();
        let entries =
            checkpoint_lines(&text).and_then(|lines| lines.into_iter().map(parse_entry).collect::<Option<Vec<_>>>());
        let mut entries = entries.unwrap_or_default();
        // Keep only a strictly increasing chain, whatever the file held.
        let mut clean: Vec<EpochEntry> = Vec::with_capacity(entries.len());
        for e in entries.drain(..) {
            if clean.last().is_none_or(|l| e.epoch > l.epoch && e.start_offset >= l.start_offset) {
                clean.push(e);
            }
        }
        Ok(Self { path, entries: clean })
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the latest.
    /// Returns whether the cache changed (the caller then persists it).
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        true
    }

    /// The epoch whose leader wrote `offset`.
    pub(crate) fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let idx = self.entries.partition_point(|e| e.start_offset <= offset);
        idx.checked_sub(1).map(|i| self.entries[i].epoch)
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `epoch` and the offset where
    /// it ended (the next epoch's start, or `log_end_offset` for the latest). An epoch
    /// older than every known one ends where the first known one starts, answered with
    /// the epoch asked (a follower with such a tail must cut it there, not keep it).
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let idx = self.entries.partition_point(|e| e.epoch <= epoch);
        let Some(found) = idx.checked_sub(1).and_then(|i| self.entries.get(i)) else {
            return self.entries.first().filter(|_| epoch >= 0).map(|first| (epoch, first.start_offset));
        };
        let end = self.entries.get(idx).map_or(log_end_offset, |next| next.start_offset);
        Some((found.epoch, end))
    }

    /// Drops epochs that start at or after `end_offset` (the log was truncated there).
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        before != self.entries.len()
    }

    /// Drops epochs wholly below `start_offset`, moving the one that spans it up to it.
    pub(crate) fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let spanning = self.entries.partition_point(|e| e.start_offset <= start_offset);
        if spanning == 0 || self.entries[spanning - 1].start_offset == start_offset && spanning == 1 {
            return false;
        }
        self.entries.drain(..spanning - 1);
        self.entries[0].start_offset = start_offset;
        true
    }

    pub(crate) fn persist(&self) -> Result<(), LogError> {
        let lines = self.entries.iter().map(|e| format!("{} {}", e.epoch, e.start_offset));
        write_atomically(&self.path, format_checkpoint(lines).as_bytes())
    }
}

fn parse_entry(line: &str) -> Option<EpochEntry> {
    let mut parts = line.split_whitespace();
    let epoch = parts.next()?.parse().ok()?;
    let start_offset = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(EpochEntry { epoch, start_offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_epochs_when_persisted_and_loaded_should_answer_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochFileCache::load(dir.path()).unwrap();
        assert!(cache.assign(1, 0));
        assert!(!cache.assign(1, 5));
        assert!(cache.assign(3, 10));
        cache.persist().unwrap();
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n2\n1 0\n3 10\n");
        let mut cache = LeaderEpochFileCache::load(dir.path()).unwrap();
        assert_eq!(cache.epoch_for_offset(9), Some(1));
        assert_eq!(cache.epoch_for_offset(10), Some(3));
        assert_eq!(cache.end_offset_for(2, 20), Some((1, 10)));
        assert_eq!(cache.end_offset_for(3, 20), Some((3, 20)));
        assert_eq!(cache.end_offset_for(0, 20), Some((0, 0)), "older than every epoch: ends at the first's start");
        assert_eq!(cache.end_offset_for(-1, 20), None);
        assert!(cache.truncate_from_start(4));
        assert_eq!(cache.entries()[0], EpochEntry { epoch: 1, start_offset: 4 });
        assert!(cache.truncate_from_end(10));
        assert_eq!(cache.latest_epoch(), Some(1));
    }
}
