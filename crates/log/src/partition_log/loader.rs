//! Kafka's `LogLoader`: opening a partition directory and recovering it after a crash.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use gregor_protocol::TopicPartition;

use super::txn::replay_batch;
use super::PartitionLog;
use crate::checkpoint::TMP_SUFFIX;
use crate::cleaner::swap::{complete_swaps, CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::config::LogConfig;
use crate::epoch::LeaderEpochFileCache;
use crate::error::{IoContext, LogError};
use crate::producer_state::ProducerStateManager;
use crate::segment::{file_name, LogSegment, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::txn_index::TXN_INDEX_SUFFIX;

/// Suffixes of files left behind by an interrupted operation; removed on open, after
/// committed swaps were completed (`complete_swaps`), so a `.swap` left here is one whose
/// clean never reached its commit point.
const TRANSIENT_SUFFIXES: [&str; 4] = [DELETED_SUFFIX, CLEANED_SUFFIX, SWAP_SUFFIX, TMP_SUFFIX];

/// Removes transient files and index files without a log, and returns the base offsets
/// of the `.log` files, ascending.
fn clean_and_list(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).ctx("list partition directory", dir)? {
        let path = entry.ctx("list partition directory", dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if TRANSIENT_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            fs::remove_file(&path).ctx("remove transient file", &path)?;
        } else if let Some(base) = parse_base(&name, LOG_SUFFIX) {
            bases.push(base);
        } else if let Some(base) =
            [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX].iter().find_map(|suffix| parse_base(&name, suffix))
        {
            indexes.push((base, path));
        }
    }
    bases.sort_unstable();
    for (base, path) in indexes {
        if bases.binary_search(&base).is_err() {
            fs::remove_file(&path).ctx("remove orphan index", &path)?;
        }
    }
    Ok(bases)
}

fn parse_base(name: &str, suffix: &str) -> Option<i64> {
    let digits = name.strip_suffix(suffix)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

fn delete_from(dir: &Path, bases: &[i64]) -> Result<(), LogError> {
    for &base in bases {
        tracing::warn!(base_offset = base, "deleting segment after a truncated one");
        remove_segment_files(dir, base)?;
    }
    Ok(())
}

fn remove_segment_files(dir: &Path, base: i64) -> Result<(), LogError> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
        let path = dir.join(file_name(base, suffix));
        if path.exists() {
            fs::remove_file(&path).ctx("remove segment file", &path)?;
        }
    }
    Ok(())
}

/// Loads every segment, recovering those that hold data past `recovery_point` or whose
/// indexes or tail look damaged. A segment cut short by recovery ends the log: any
/// later segments are deleted, since offsets after the cut were never acknowledged as
/// durable.
fn load_segments(
    dir: &Path,
    config: &LogConfig,
    recovery_point: i64,
    epochs: &mut LeaderEpochFileCache,
    now_ms: i64,
) -> Result<BTreeMap<i64, LogSegment>, LogError> {
    // Kafka's LogLoader: a `.log.swap` is a committed clean; finish it before the
    // leftovers of uncommitted ones are deleted.
    complete_swaps(dir)?;
    let bases = clean_and_list(dir)?;
    let mut segments = BTreeMap::new();
    let mut next_expected = i64::MIN;
    for (i, &base) in bases.iter().enumerate() {
        if base < next_expected {
            tracing::warn!(base_offset = base, "segment overlaps the previous one");
            return delete_from(dir, &bases[i..]).map(|()| segments);
        }
        let (mut segment, damaged) = LogSegment::open(dir, base, config, now_ms)?;
        let mut truncated = 0;
        if damaged || segment.next_offset() > recovery_point || base >= recovery_point {
            tracing::info!(segment = %dir.join(file_name(base, LOG_SUFFIX)).display(), damaged, "recovering segment");
            truncated = segment.recover(&mut |meta| {
                epochs.assign(meta.leader_epoch, meta.base_offset);
            })?;
        }
        next_expected = segment.next_offset();
        segments.insert(base, segment);
        if truncated > 0 {
            return delete_from(dir, &bases[i + 1..]).map(|()| segments);
        }
    }
    Ok(segments)
}

impl PartitionLog {
    /// Opens (creating if needed) the partition directory `dir`. Segments with data at or
    /// after `recovery_point` are re-validated batch by batch and truncated at the first
    /// bad one.
    pub fn open(
        dir: PathBuf,
        topic_partition: TopicPartition,
        config: LogConfig,
        recovery_point: i64,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        Self::open_with_log_start_offset(dir, topic_partition, config, recovery_point, 0, now_ms)
    }

    /// As [`PartitionLog::open`], with the log start offset from the log dir's
    /// `log-start-offset-checkpoint` (it may be above the first segment's base offset).
    pub fn open_with_log_start_offset(
        dir: PathBuf,
        topic_partition: TopicPartition,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        fs::create_dir_all(&dir).ctx("create partition directory", &dir)?;
        let mut epoch_cache = LeaderEpochFileCache::load(&dir)?;
        let mut segments = load_segments(&dir, &config, recovery_point, &mut epoch_cache, now_ms)?;
        let mut dir_dirty = false;
        if segments.is_empty() {
            let base = log_start_offset.max(0);
            segments.insert(base, LogSegment::create(&dir, base, &config, now_ms)?);
            dir_dirty = true;
        }
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let log_end_offset = segments.values().next_back().map_or(first_base, LogSegment::next_offset);
        let log_start_offset = log_start_offset.max(first_base).min(log_end_offset);
        epoch_cache.truncate_from_end(log_end_offset);
        epoch_cache.truncate_from_start(log_start_offset);
        epoch_cache.persist()?;
        let mut log = Self {
            producer_state: ProducerStateManager::new(&dir),
            dir,
            topic_partition,
            config,
            segments,
            log_start_offset,
            log_end_offset,
            high_watermark: log_end_offset,
            recovery_point: recovery_point.clamp(log_start_offset, log_end_offset),
            epoch_cache,
            last_snapshot_offset: None,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            dir_dirty,
            pending_deletes: Vec::new(),
            deleted: false,
            first_dirty_offset: log_start_offset,
            earliest_delete_horizon_ms: None,
            generation: 0,
        };
        log.rebuild_producer_state()?;
        Ok(log)
    }

    /// Loads the newest producer snapshot at or below the log end offset and replays the
    /// batch headers after it (the whole log when there is none).
    pub(super) fn rebuild_producer_state(&mut self) -> Result<(), LogError> {
        let snapshot = self.producer_state.load_latest(self.log_end_offset)?;
        self.last_snapshot_offset = snapshot;
        let from = snapshot.unwrap_or(self.log_start_offset);
        let first = self.segments.range(..=from).next_back().map_or(i64::MIN, |(base, _)| *base);
        let mut missing_aborts = Vec::new();
        for (base, segment) in self.segments.range(first..) {
            let Some(mut located) = segment.translate_offset(from)? else {
                continue;
            };
            loop {
                if located.meta.base_offset >= from {
                    if let Some(aborted) = replay_batch(&mut self.producer_state, segment, &located)? {
                        missing_aborts.push((*base, aborted));
                    }
                }
                match segment.batch_after(&located)? {
                    Some(next) => located = next,
                    None => break,
                }
            }
        }
        for (base, aborted) in missing_aborts {
            if let Some(segment) = self.segments.get_mut(&base) {
                segment.append_aborted_txn(aborted)?;
            }
        }
        tracing::debug!(partition = %self.topic_partition, producers = self.producer_state.producer_count(), "producer state loaded");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer_state::SNAPSHOT_SUFFIX;

    #[test]
    fn given_transient_and_orphan_files_when_listed_should_remove_them() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "00000000000000000000.log",
            "00000000000000000005.log.deleted",
            "00000000000000000009.index",
            "x.swap",
            "00000000000000000000.index",
        ] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        fs::write(dir.path().join(file_name(3, SNAPSHOT_SUFFIX)), b"").unwrap();
        assert_eq!(clean_and_list(dir.path()).unwrap(), vec![0]);
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(
            left,
            vec!["00000000000000000000.index", "00000000000000000000.log", "00000000000000000003.snapshot"]
        );
    }
}
