//! openraft's log storage over the `__cluster_metadata-0` partition: Kafka's segment
//! files, indexes and leader-epoch checkpoint, one batch per Raft entry (offset = index,
//! `partitionLeaderEpoch` = term), with the vote and the committed and purged ids in the
//! `quorum-state` file beside them.
//!
//! openraft calls these methods one at a time from its core task, so one lock serialises
//! them; the log's I/O is synchronous (a metadata entry is small) and runs in place of
//! the async worker (`block_in_place`), as the broker's produce path does.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use gregor_log::{LogConfig, PartitionLog};
use gregor_protocol::record_batch::BatchIter;
use gregor_protocol::TopicPartition;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use crate::error::to_io;
use crate::quorum_state::{LogIdJson, QuorumStateFile};
use crate::{blocking, now_ms};
use crate::{entry, epoch_of, Entry, LogId, QuorumError, TypeConfig, Vote};

/// Bytes read from the log at a time when openraft asks for a range of entries.
const READ_CHUNK_BYTES: usize = 4 << 20;

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    log: PartitionLog,
    state: QuorumStateFile,
}

/// The metadata log as openraft's `RaftLogStorage` and `RaftLogReader` (clones share it).
#[derive(Debug, Clone)]
pub struct MetadataLogStore {
    inner: Arc<Mutex<Inner>>,
}

impl MetadataLogStore {
    /// Opens `dir` (the `__cluster_metadata-0` directory), recovering the log after a crash.
    pub fn open(dir: &Path, now_ms: i64) -> Result<Self, QuorumError> {
        let state = match QuorumStateFile::load(dir)? {
            Some(state) => state,
            None => {
                // Written before the first entry (openraft's initialize appends the voters
                // before any vote is saved), so a log with entries always has a
                // quorum-state and is never mistaken for a pre-quorum log after a crash.
                let state = QuorumStateFile { voted_id: -1, ..Default::default() };
                std::fs::create_dir_all(dir).map_err(|e| QuorumError::io(dir, e))?;
                state.store(dir)?;
                state
            }
        };
        let log_start = state.purged.map_or(0, |p| p.offset + 1);
        let tp = TopicPartition::new(gregor_metadata::METADATA_TOPIC, 0);
        let mut log = PartitionLog::open_with_log_start_offset(
            dir.to_owned(),
            tp,
            log_config(),
            0,
            log_start_i64(log_start),
            now_ms,
        )?;
        let end = log.log_end_offset();
        log.update_high_watermark(end);
        Ok(Self { inner: Arc::new(Mutex::new(Inner { dir: dir.to_owned(), log, state })) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this log has never held an entry nor a vote: a node that may bootstrap.
    pub fn is_pristine(&self) -> bool {
        let inner = self.lock();
        inner.log.log_end_offset() == 0 && inner.state.purged.is_none() && inner.state.vote().is_none()
    }

    /// The log end offset (next index) and log start offset, for DescribeQuorum and tests.
    pub fn offsets(&self) -> (i64, i64) {
        let inner = self.lock();
        (inner.log.log_end_offset(), inner.log.log_start_offset())
    }

    /// Segment files on disk, for tests of log compaction by snapshot.
    pub fn segment_count(&self) -> usize {
        self.lock().log.segment_count()
    }

    /// Flushes and closes the log (a clean shutdown).
    pub fn close(&self) -> Result<(), QuorumError> {
        Ok(self.lock().log.close()?)
    }
}

/// The metadata log keeps everything until a snapshot lets openraft purge it, and allows
/// batches as big as a request (one topic creation with 10,000 partitions is ~1 MB).
fn log_config() -> LogConfig {
    LogConfig { retention_ms: -1, retention_bytes: -1, max_message_bytes: 128 << 20, ..LogConfig::default() }
}

fn log_start_i64(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

impl Inner {
    /// Entries with index in `[start, end)`, read from the segments.
    fn read_entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, QuorumError> {
        let (log_start, log_end) = (self.log.log_start_offset(), self.log.log_end_offset());
        let end = log_start_i64(end).min(log_end);
        // Entries before the log start are skipped: openraft's contract lets a read range
        // begin before the first entry (the suite checks it), so gaps are not errors here;
        // `purge` keeps quorum-state and segments consistent instead.
        let mut offset = log_start_i64(start).max(log_start);
        let mut out = Vec::new();
        while offset < end {
            let bytes = self
                .log
                .read(offset, READ_CHUNK_BYTES, end)?
                .read_bytes()
                .map_err(|e| QuorumError::io(&self.dir, e))?;
            let before = offset;
            for (_, batch) in BatchIter::new(&bytes) {
                if batch.base_offset() < offset {
                    continue;
                }
                if batch.base_offset() != offset || batch.base_offset() >= end {
                    break;
                }
                let records = gregor_protocol::records::decode_records(bytes::Bytes::copy_from_slice(batch.bytes()))
                    .map_err(|e| QuorumError::BadEntry { offset, reason: e.to_string() })?;
                let value = records.first().and_then(|r| r.value.as_deref()).unwrap_or_default();
                let term = u64::try_from(batch.partition_leader_epoch()).unwrap_or(0);
                out.push(entry::decode(offset as u64, term, value)?);
                offset += 1;
            }
            if offset == before {
                return Err(QuorumError::BadEntry { offset, reason: "no entry at this offset".into() });
            }
        }
        Ok(out)
    }

    fn last_log_id(&self) -> Result<Option<LogId>, QuorumError> {
        let end = self.log.log_end_offset();
        if end <= self.log.log_start_offset() {
            return Ok(self.state.purged.map(LogIdJson::log_id));
        }
        let last = (end - 1) as u64;
        Ok(self.read_entries(last, last + 1)?.pop().map(|e| e.log_id))
    }

    fn append(&mut self, entries: Vec<Entry>) -> Result<(), QuorumError> {
        let now = now_ms();
        for entry in entries {
            let index = log_start_i64(entry.log_id.index);
            let empty = self.log.log_end_offset() == self.log.log_start_offset();
            if empty && index > self.log.log_end_offset() {
                // The first entry after everything before it was purged (a snapshot).
                self.log.truncate_fully_and_start_at(index)?;
            }
            let expected = self.log.log_end_offset();
            if index != expected {
                return Err(QuorumError::BadEntry {
                    offset: log_start_i64(entry.log_id.index),
                    reason: format!("appended out of order: the log ends at {expected}"),
                });
            }
            let mut batch = entry::encode(&entry, now)?;
            let _ = self.log.append_as_leader(&mut batch, epoch_of(entry.log_id.leader_id.term), now)?;
            let end = self.log.log_end_offset();
            self.log.update_high_watermark(end);
        }
        self.log.flush()?;
        Ok(())
    }

    /// Durable on return (the log fsyncs a truncation): entries a node dropped as
    /// conflicting must not come back after a crash, once it acted on their absence.
    fn truncate_after(&mut self, last: Option<LogId>) -> Result<(), QuorumError> {
        let keep_to = last.map_or(self.log.log_start_offset(), |l| log_start_i64(l.index + 1));
        self.log.truncate_to(keep_to.max(self.log.log_start_offset()))?;
        self.log.flush()?;
        Ok(())
    }

    /// Records the purge in quorum-state first, then drops the segments: a crash between
    /// the two leaves segments that the next open ignores (the log starts after the
    /// purged id), never a quorum-state that claims entries the segments no longer hold.
    fn purge(&mut self, upto: LogId) -> Result<(), QuorumError> {
        let next = log_start_i64(upto.index + 1);
        self.state.purged = Some(LogIdJson::of(&upto));
        self.state.store(&self.dir)?;
        if next > self.log.log_end_offset() {
            // A snapshot newer than the whole log (installed from the leader).
            self.log.truncate_fully_and_start_at(next)?;
        } else if next > self.log.log_start_offset() {
            self.log.increment_log_start_offset(next)?;
            let _ = self.log.delete_retained_segments(now_ms())?;
        }
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for MetadataLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, std::io::Error> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e + 1,
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        let inner = self.lock();
        blocking(|| inner.read_entries(start, end)).map_err(to_io)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, std::io::Error> {
        Ok(self.lock().state.vote())
    }
}

impl RaftLogStorage<TypeConfig> for MetadataLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, std::io::Error> {
        let inner = self.lock();
        let last = blocking(|| inner.last_log_id()).map_err(to_io)?;
        Ok(LogState { last_purged_log_id: inner.state.purged.map(LogIdJson::log_id), last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), std::io::Error> {
        let mut inner = self.lock();
        inner.state.set_vote(vote);
        let dir = inner.dir.clone();
        blocking(|| inner.state.store(&dir)).map_err(to_io)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), std::io::Error> {
        let mut inner = self.lock();
        inner.state.committed = committed.as_ref().map(LogIdJson::of);
        let dir = inner.dir.clone();
        blocking(|| inner.state.store(&dir)).map_err(to_io)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, std::io::Error> {
        Ok(self.lock().state.committed.map(LogIdJson::log_id))
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), std::io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let result = {
            let mut inner = self.lock();
            blocking(|| inner.append(entries)).map_err(to_io)
        };
        // Durable (fsynced) before openraft counts the entries as this node's vote.
        let report = result.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string()));
        callback.io_completed(report);
        result
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), std::io::Error> {
        let mut inner = self.lock();
        blocking(|| inner.truncate_after(last_log_id)).map_err(to_io)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), std::io::Error> {
        let mut inner = self.lock();
        blocking(|| inner.purge(log_id)).map_err(to_io)
    }
}
