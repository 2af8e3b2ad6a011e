//! Kafka's `LogManager`: every partition log in one log dir, and the dir-level files.
//!
//! Locking: the map sits behind a `RwLock` that is held only to look up, insert or
//! remove an entry, never across disk I/O; each partition has its own `Mutex`. Creation
//! is serialized by a separate lock so two callers never open the same directory twice.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fs;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use gregor_protocol::TopicPartition;

use crate::checkpoint::{
    read_offset_checkpoint, sync_dir, write_atomically, write_offset_checkpoint, CLEANER_OFFSET_CHECKPOINT,
    CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT, REPLICATION_OFFSET_CHECKPOINT,
};
use crate::cleaner::CleanStats;
use crate::config::LogConfig;
use crate::error::{IoContext, LogError};
use crate::partition_log::PartitionLog;

/// Suffix of a partition directory that is being deleted.
const DELETE_DIR_SUFFIX: &str = "-delete";
/// KRaft's `__cluster_metadata` partition, opened by the metadata store, not here.
const METADATA_TOPIC_PREFIX: &str = "__cluster_metadata";

pub type SharedLog = Arc<Mutex<PartitionLog>>;

/// All partition logs of one log dir.
#[derive(Debug)]
pub struct LogManager {
    log_dir: PathBuf,
    logs: RwLock<HashMap<TopicPartition, SharedLog>>,
    create_lock: Mutex<()>,
    had_clean_shutdown: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole log dir down with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A 32-hex-digit id for a deleted directory's name, like Kafka's UUID without dashes.
fn unique_hex() -> String {
    let state = RandomState::new();
    format!("{:016x}{:016x}", state.hash_one(1u8), state.hash_one(2u8))
}

/// Cleans one partition, holding its lock only to plan (no I/O) and to swap the cleaned
/// segments in (renames, two directory fsyncs, reopening indexes). Reading the old
/// segments and writing and fsyncing the cleaned ones happen without the lock: appends,
/// fetches and retention go on meanwhile, and a clean whose segments were deleted or
/// truncated in between is abandoned at the swap.
fn clean_partition(log: &SharedLog, now_ms: i64) -> Result<Option<CleanStats>, LogError> {
    let Some(plan) = lock(log).plan_clean(now_ms) else {
        return Ok(None);
    };
    let outcome = plan.execute()?;
    lock(log).finish_clean(outcome, now_ms)
}

/// Partition directories to load; directories left by an interrupted delete are removed.
fn partition_dirs(log_dir: &Path) -> Result<Vec<(TopicPartition, PathBuf)>, LogError> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(log_dir).ctx("list log dir", log_dir)? {
        let entry = entry.ctx("list log dir", log_dir)?;
        let path = entry.path();
        if !entry.file_type().ctx("stat", &path)?.is_dir() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(DELETE_DIR_SUFFIX) {
            fs::remove_dir_all(&path).ctx("remove deleted partition", &path)?;
        } else if let Some(tp) = TopicPartition::from_dir_name(&name) {
            // The metadata log lives in the same dir but belongs to the metadata store.
            if !tp.topic.starts_with(METADATA_TOPIC_PREFIX) {
                dirs.push((tp, path));
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

impl LogManager {
    /// Opens every `<topic>-<partition>` directory in `log_dir`, recovering each from the
    /// recovery-point checkpoint. Partitions load on a few threads, each on its own.
    pub fn open(
        log_dir: PathBuf,
        config_for: impl Fn(&TopicPartition) -> LogConfig + Sync,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        fs::create_dir_all(&log_dir).ctx("create log dir", &log_dir)?;
        let marker = log_dir.join(CLEAN_SHUTDOWN_FILE);
        let had_clean_shutdown = marker.exists();
        let recovery_points = read_offset_checkpoint(&log_dir.join(RECOVERY_POINT_CHECKPOINT))?;
        let log_starts = read_offset_checkpoint(&log_dir.join(LOG_START_OFFSET_CHECKPOINT))?;
        let first_dirty = read_offset_checkpoint(&log_dir.join(CLEANER_OFFSET_CHECKPOINT))?;
        // A high watermark is never above what was known committed: a log reopens at its
        // checkpointed one (a partition missing from the file at its log start), never at
        // its log end offset, which may hold records no other replica has. A dir written
        // before the file existed keeps the log end offset.
        let hw_path = log_dir.join(REPLICATION_OFFSET_CHECKPOINT);
        let high_watermarks = hw_path.exists().then(|| read_offset_checkpoint(&hw_path)).transpose()?;
        let dirs = partition_dirs(&log_dir)?;
        let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 8);
        let chunk = dirs.len().div_ceil(threads).max(1);
        let open_one = |(tp, dir): &(TopicPartition, PathBuf)| {
            let recovery_point = recovery_points.get(tp).copied().unwrap_or(0);
            let log_start = log_starts.get(tp).copied().unwrap_or(0);
            PartitionLog::open_with_log_start_offset(
                dir.clone(),
                tp.clone(),
                config_for(tp),
                recovery_point,
                log_start,
                now_ms,
            )
            .map(|mut log| {
                if let Some(offset) = first_dirty.get(tp) {
                    log.set_first_dirty_offset(*offset);
                }
                if let Some(hws) = &high_watermarks {
                    let hw = hws.get(tp).copied().unwrap_or(0).min(log.log_end_offset());
                    log.update_high_watermark(hw);
                }
                (tp.clone(), Arc::new(Mutex::new(log)))
            })
        };
        let loaded: Vec<Result<Vec<_>, LogError>> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                dirs.chunks(chunk).map(|part| scope.spawn(move || part.iter().map(open_one).collect())).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        });
        let mut logs = HashMap::with_capacity(dirs.len());
        for part in loaded {
            logs.extend(part?);
        }
        if had_clean_shutdown {
            fs::remove_file(&marker).ctx("remove clean shutdown marker", &marker)?;
            sync_dir(&log_dir)?;
        }
        tracing::info!(log_dir = %log_dir.display(), partitions = logs.len(), had_clean_shutdown, "log manager loaded");
        Ok(Self { log_dir, logs: RwLock::new(logs), create_lock: Mutex::new(()), had_clean_shutdown })
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Whether the previous run ended with `shutdown` (a `.kafka_cleanshutdown` was found).
    pub fn had_clean_shutdown(&self) -> bool {
        self.had_clean_shutdown
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<SharedLog> {
        self.logs.read().unwrap_or_else(PoisonError::into_inner).get(tp).cloned()
    }

    /// The partition's log, created empty (with its `partition.metadata`) if missing.
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        topic_id: &str,
        now_ms: i64,
    ) -> Result<SharedLog, LogError> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let _creating = lock(&self.create_lock);
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let log = PartitionLog::open(self.log_dir.join(tp.dir_name()), tp.clone(), config, 0, now_ms)?;
        log.write_partition_metadata(topic_id)?;
        sync_dir(&self.log_dir)?;
        let log = Arc::new(Mutex::new(log));
        self.logs.write().unwrap_or_else(PoisonError::into_inner).insert(tp.clone(), Arc::clone(&log));
        Ok(log)
    }

    /// Removes the partition: drops it from the map, renames its directory to
    /// `<topic>-<partition>.<hex>-delete` (so a crash mid-way finishes the delete on the
    /// next open), then removes it. Open readers keep their file handles.
    pub fn delete(&self, tp: &TopicPartition) -> Result<(), LogError> {
        let Some(log) = self.logs.write().unwrap_or_else(PoisonError::into_inner).remove(tp) else {
            return Ok(());
        };
        let mut log = lock(&log);
        log.mark_deleted();
        let from = log.dir().to_path_buf();
        let to = self.log_dir.join(format!("{}.{}{DELETE_DIR_SUFFIX}", tp.dir_name(), unique_hex()));
        fs::rename(&from, &to).ctx("rename partition for deletion", &from)?;
        sync_dir(&self.log_dir)?;
        drop(log);
        fs::remove_dir_all(&to).ctx("remove deleted partition", &to)
    }

    pub fn partitions(&self) -> Vec<TopicPartition> {
        let mut tps: Vec<TopicPartition> =
            self.logs.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect();
        tps.sort();
        tps
    }

    fn all_logs(&self) -> Vec<(TopicPartition, SharedLog)> {
        let mut logs: Vec<_> = self
            .logs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(tp, log)| (tp.clone(), Arc::clone(log)))
            .collect();
        logs.sort_by(|a, b| a.0.cmp(&b.0));
        logs
    }

    /// Writes `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint`.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        let mut recovery_points = Vec::new();
        let mut log_starts = Vec::new();
        for (tp, log) in self.all_logs() {
            let log = lock(&log);
            recovery_points.push((tp.clone(), log.recovery_point()));
            log_starts.push((tp, log.log_start_offset()));
        }
        write_offset_checkpoint(&self.log_dir.join(RECOVERY_POINT_CHECKPOINT), &recovery_points)?;
        write_offset_checkpoint(&self.log_dir.join(LOG_START_OFFSET_CHECKPOINT), &log_starts)?;
        self.checkpoint_high_watermarks()?;
        self.checkpoint_cleaner_offsets()
    }

    /// Writes `replication-offset-checkpoint`: every partition's high watermark (Kafka
    /// writes it every `replica.high.watermark.checkpoint.interval.ms` and at shutdown).
    pub fn checkpoint_high_watermarks(&self) -> Result<(), LogError> {
        let hws: Vec<_> = self.all_logs().into_iter().map(|(tp, log)| (tp, lock(&log).high_watermark())).collect();
        write_offset_checkpoint(&self.log_dir.join(REPLICATION_OFFSET_CHECKPOINT), &hws)
    }

    /// Writes `cleaner-offset-checkpoint`: the first dirty offset of every compacted
    /// partition. Losing it only makes the next clean redo work: it restarts at the log
    /// start offset.
    fn checkpoint_cleaner_offsets(&self) -> Result<(), LogError> {
        let mut offsets = Vec::new();
        for (tp, log) in self.all_logs() {
            let log = lock(&log);
            if log.config().compact {
                offsets.push((tp, log.first_dirty_offset()));
            }
        }
        write_offset_checkpoint(&self.log_dir.join(CLEANER_OFFSET_CHECKPOINT), &offsets)
    }

    /// Kafka's `LogCleaner` pass: compacts, one at a time, every partition whose policy
    /// includes `compact` and that needs it; returns how many were cleaned. A failing
    /// partition is logged and skipped. The cleaner checkpoint is written after each clean.
    pub fn run_cleaner(&self, now_ms: i64) -> usize {
        let mut cleaned = 0;
        for (tp, log) in self.all_logs() {
            if tp.topic.starts_with(METADATA_TOPIC_PREFIX) {
                continue;
            }
            match clean_partition(&log, now_ms) {
                Ok(Some(stats)) => {
                    tracing::debug!(partition = %tp, ?stats, "partition cleaned");
                    cleaned += 1;
                    if let Err(error) = self.checkpoint_cleaner_offsets() {
                        tracing::error!(%error, "writing the cleaner checkpoint failed");
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::error!(partition = %tp, %error, "cleaning failed"),
            }
        }
        cleaned
    }

    /// Applies retention to every partition; returns how many segments were deleted.
    /// A failing partition is logged and skipped so the others still get cleaned.
    pub fn run_retention(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        for (tp, log) in self.all_logs() {
            match lock(&log).delete_retained_segments(now_ms) {
                Ok(n) => deleted += n,
                Err(error) => tracing::error!(partition = %tp, %error, "retention failed"),
            }
        }
        deleted
    }

    /// Forgets, in every partition, producers idle for `expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`, checked every `producer.id.expiration.check.interval.ms`).
    pub fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        let mut removed = 0;
        for (tp, log) in self.all_logs() {
            let n = lock(&log).remove_expired_producers(now_ms, expiration_ms);
            if n > 0 {
                tracing::debug!(partition = %tp, producers = n, "expired idle producers");
            }
            removed += n;
        }
        removed
    }

    /// Flushes the partitions whose `flush.messages` / `flush.ms` policy says so.
    pub fn flush_due(&self, now_ms: i64) {
        for (tp, log) in self.all_logs() {
            if let Err(error) = lock(&log).maybe_flush(now_ms) {
                tracing::error!(partition = %tp, %error, "flush failed");
            }
        }
    }

    /// Closes every log, checkpoints, and writes `.kafka_cleanshutdown`. The marker is
    /// written only if everything before it succeeded.
    pub fn shutdown(&self) -> Result<(), LogError> {
        let mut first_error = None;
        for (tp, log) in self.all_logs() {
            if let Err(error) = lock(&log).close() {
                tracing::error!(partition = %tp, %error, "close failed");
                first_error.get_or_insert(error);
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        self.checkpoint()?;
        write_atomically(&self.log_dir.join(CLEAN_SHUTDOWN_FILE), b"")
    }
}
