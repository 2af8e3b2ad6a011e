//! Kafka's `ProducerStateManager`: per idempotent producer, its epoch and the metadata of
//! its last five batches, to drop retried duplicates and reject sequence gaps and zombies.
//!
//! Snapshots use Kafka's `ProducerSnapshot` v1 layout (`<offset>.snapshot`):
//! `version i16 | crc u32 (CRC-32C of the rest) | count i32 | entries`, each entry
//! `producer_id i64, epoch i16, last_sequence i32, last_offset i64, offset_delta i32,
//! timestamp i64, coordinator_epoch i32, current_txn_first_offset i64`. Like Kafka, a
//! snapshot keeps only each producer's last batch; replaying the log after it restores more.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use crate::batch::BatchMeta;
use crate::checkpoint::write_atomically;
use crate::error::{IoContext, LogError};
use crate::segment::file_name;

/// Batches remembered per producer: a producer has at most five requests in flight.
pub(crate) const NUM_BATCHES_TO_RETAIN: usize = 5;
pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_HEADER: usize = 10;
const SNAPSHOT_ENTRY: usize = 46;
/// Snapshots kept on disk; older ones are deleted when a new one is written.
const SNAPSHOTS_TO_KEEP: usize = 2;

/// Offsets and sequences of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub(crate) first_sequence: i32,
    pub(crate) last_sequence: i32,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) timestamp: i64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerStateEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    coordinator_epoch: i32,
}

impl ProducerStateEntry {
    fn last_sequence(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_sequence)
    }

    fn find_duplicate(&self, meta: &BatchMeta) -> Option<BatchMetadata> {
        if meta.producer_epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_sequence == meta.base_sequence && b.last_sequence == meta.last_sequence)
            .copied()
    }

    fn add(&mut self, meta: &BatchMeta) {
        if meta.producer_epoch != self.epoch {
            self.batches.clear();
            self.epoch = meta.producer_epoch;
        }
        if meta.base_sequence < 0 {
            return;
        }
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(BatchMetadata {
            first_sequence: meta.base_sequence,
            last_sequence: meta.last_sequence,
            first_offset: meta.base_offset,
            last_offset: meta.last_offset,
            timestamp: meta.max_timestamp,
        });
    }
}

/// Whether `next` follows `last`, wrapping at `i32::MAX` as Kafka's sequences do.
fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (last == i32::MAX && next == 0)
}

/// Kafka's `ProducerAppendInfo.checkProducerEpoch` + `checkSequence` for a leader append.
fn check(entry: Option<&ProducerStateEntry>, meta: &BatchMeta) -> Result<(), LogError> {
    let Some(entry) = entry else {
        return Ok(()); // unknown producer: its earlier state may have been removed, accept
    };
    let producer_id = meta.producer_id;
    if meta.producer_epoch < entry.epoch {
        return Err(LogError::InvalidProducerEpoch {
            producer_id,
            producer_epoch: meta.producer_epoch,
            current_epoch: entry.epoch,
        });
    }
    if meta.base_sequence < 0 {
        return Ok(());
    }
    let expected = if meta.producer_epoch > entry.epoch {
        Some(0)
    } else {
        entry
            .last_sequence()
            .filter(|last| !in_sequence(*last, meta.base_sequence))
            .map(|last| last.wrapping_add(1).max(0))
    };
    match expected {
        Some(expected_sequence) if expected_sequence != meta.base_sequence => {
            Err(LogError::OutOfOrderSequence { producer_id, expected_sequence, first_sequence: meta.base_sequence })
        }
        _ => Ok(()),
    }
}

#[derive(Debug)]
pub(crate) struct ProducerStateManager {
    dir: PathBuf,
    producers: HashMap<i64, ProducerStateEntry>,
}

/// Producer updates of one append, checked but not yet applied.
#[derive(Debug, Default)]
pub(crate) struct PendingProducers {
    updated: HashMap<i64, ProducerStateEntry>,
}

impl ProducerStateManager {
    pub(crate) fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), producers: HashMap::new() }
    }

    pub(crate) fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// The earlier append `meta` repeats, if it is a retry of one of the last five batches.
    pub(crate) fn find_duplicate(&self, pending: &PendingProducers, meta: &BatchMeta) -> Option<BatchMetadata> {
        let entry = pending.updated.get(&meta.producer_id).or_else(|| self.producers.get(&meta.producer_id))?;
        entry.find_duplicate(meta)
    }

    /// Checks `meta` (offsets already assigned) against the state so far plus `pending`,
    /// and records it in `pending`.
    pub(crate) fn check_and_stage(&self, pending: &mut PendingProducers, meta: &BatchMeta) -> Result<(), LogError> {
        let current = pending.updated.get(&meta.producer_id).or_else(|| self.producers.get(&meta.producer_id));
        check(current, meta)?;
        let mut entry =
            current.cloned().unwrap_or_else(|| ProducerStateEntry { epoch: meta.producer_epoch, ..Default::default() });
        entry.add(meta);
        pending.updated.insert(meta.producer_id, entry);
        Ok(())
    }

    pub(crate) fn apply(&mut self, pending: PendingProducers) {
        self.producers.extend(pending.updated);
    }

    /// Replays a batch read back from the log (recovery), without checks.
    pub(crate) fn replay(&mut self, meta: &BatchMeta) {
        if meta.has_producer_id() {
            let entry = self
                .producers
                .entry(meta.producer_id)
                .or_insert_with(|| ProducerStateEntry { epoch: meta.producer_epoch, ..Default::default() });
            entry.add(meta);
        }
    }

    /// Each producer's last batch offset: the cleaner keeps that batch (empty if need be)
    /// so the producer's last sequence survives compaction, as Kafka does.
    pub(crate) fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.producers.iter().filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset))).collect()
    }

    pub(crate) fn clear(&mut self) {
        self.producers.clear();
    }

    /// Offsets of the snapshot files in the directory, ascending.
    pub(crate) fn snapshot_offsets(&self) -> Result<Vec<i64>, LogError> {
        let mut offsets = Vec::new();
        for entry in fs::read_dir(&self.dir).ctx("list", &self.dir)? {
            let name = entry.ctx("list", &self.dir)?.file_name();
            let offset =
                name.to_str().and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX)).and_then(|n| n.parse::<i64>().ok());
            offsets.extend(offset);
        }
        offsets.sort_unstable();
        Ok(offsets)
    }

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir.join(file_name(offset, SNAPSHOT_SUFFIX))
    }

    /// Deletes snapshots past `end_offset` (their offsets are no longer in the log), then
    /// loads the newest readable one. Returns the offset to replay the log from, or `None`
    /// with an empty state when there is no usable snapshot.
    pub(crate) fn load_latest(&mut self, end_offset: i64) -> Result<Option<i64>, LogError> {
        self.clear();
        for offset in self.snapshot_offsets()?.into_iter().rev() {
            let path = self.snapshot_path(offset);
            if offset <= end_offset {
                if let Some(producers) = decode_snapshot(&fs::read(&path).ctx("read snapshot", &path)?) {
                    self.producers = producers;
                    return Ok(Some(offset));
                }
                tracing::warn!(path = %path.display(), "deleting corrupt producer snapshot");
            }
            fs::remove_file(&path).ctx("delete snapshot", &path)?;
        }
        Ok(None)
    }

    /// Writes `<offset>.snapshot` and deletes all but the newest few.
    pub(crate) fn take_snapshot(&self, offset: i64) -> Result<(), LogError> {
        write_atomically(&self.snapshot_path(offset), &encode_snapshot(&self.producers))?;
        let offsets = self.snapshot_offsets()?;
        for old in offsets.iter().rev().skip(SNAPSHOTS_TO_KEEP) {
            let path = self.snapshot_path(*old);
            fs::remove_file(&path).ctx("delete snapshot", &path)?;
        }
        Ok(())
    }
}

fn encode_snapshot(producers: &HashMap<i64, ProducerStateEntry>) -> Vec<u8> {
    let mut ids: Vec<&i64> = producers.keys().collect();
    ids.sort_unstable();
    let mut body = Vec::with_capacity(4 + ids.len() * SNAPSHOT_ENTRY);
    body.extend_from_slice(&(ids.len() as i32).to_be_bytes());
    for id in ids {
        let entry = &producers[id];
        let last = entry.batches.back().copied();
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&entry.epoch.to_be_bytes());
        body.extend_from_slice(&last.map_or(-1, |b| b.last_sequence).to_be_bytes());
        body.extend_from_slice(&last.map_or(-1, |b| b.last_offset).to_be_bytes());
        body.extend_from_slice(&last.map_or(0, |b| (b.last_offset - b.first_offset) as i32).to_be_bytes());
        body.extend_from_slice(&last.map_or(-1, |b| b.timestamp).to_be_bytes());
        body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&(-1i64).to_be_bytes());
    }
    let mut out = Vec::with_capacity(6 + body.len());
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Big-endian field reader over a snapshot body; bounds were checked up front.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.0[..N]);
        self.0 = &self.0[N..];
        out
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take())
    }
}

fn decode_snapshot(bytes: &[u8]) -> Option<HashMap<i64, ProducerStateEntry>> {
    if bytes.len() < SNAPSHOT_HEADER {
        return None;
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    let stored_crc = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let body = &bytes[6..];
    if version != SNAPSHOT_VERSION || crc32c::crc32c(body) != stored_crc {
        return None;
    }
    let count = usize::try_from(i32::from_be_bytes([body[0], body[1], body[2], body[3]])).ok()?;
    if body.len() != 4 + count.checked_mul(SNAPSHOT_ENTRY)? {
        return None;
    }
    let mut fields = Fields(&body[4..]);
    let mut producers = HashMap::with_capacity(count);
    for _ in 0..count {
        let (producer_id, entry) = decode_entry(&mut fields);
        producers.insert(producer_id, entry);
    }
    Some(producers)
}

fn decode_entry(f: &mut Fields<'_>) -> (i64, ProducerStateEntry) {
    let producer_id = f.i64();
    let epoch = f.i16();
    let last_sequence = f.i32();
    let last_offset = f.i64();
    let offset_delta = f.i32();
    let timestamp = f.i64();
    let coordinator_epoch = f.i32();
    let _current_txn_first_offset = f.i64();
    let mut batches = VecDeque::new();
    if last_offset >= 0 && last_sequence >= 0 {
        let first_sequence =
            (i64::from(last_sequence) - i64::from(offset_delta)).rem_euclid(i64::from(i32::MAX) + 1) as i32;
        let first_offset = last_offset - i64::from(offset_delta);
        batches.push_back(BatchMetadata { first_sequence, last_sequence, first_offset, last_offset, timestamp });
    }
    (producer_id, ProducerStateEntry { epoch, batches, coordinator_epoch })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(producer_epoch: i16, base_sequence: i32, count: i32, base_offset: i64) -> BatchMeta {
        BatchMeta {
            base_offset,
            last_offset: base_offset + i64::from(count) - 1,
            size: 100,
            max_timestamp: 10,
            leader_epoch: 0,
            producer_id: 7,
            producer_epoch,
            base_sequence,
            last_sequence: base_sequence + count - 1,
            records_count: count,
            is_log_append_time: false,
            crc: 0,
        }
    }

    fn stage(m: &ProducerStateManager, b: &BatchMeta) -> Result<PendingProducers, LogError> {
        let mut pending = PendingProducers::default();
        m.check_and_stage(&mut pending, b).map(|()| pending)
    }

    #[test]
    fn given_known_producer_when_sequences_arrive_should_apply_kafka_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        let p = stage(&m, &meta(0, 0, 3, 0)).unwrap();
        m.apply(p);
        assert!(m.find_duplicate(&PendingProducers::default(), &meta(0, 0, 3, 9)).is_some());
        assert!(matches!(stage(&m, &meta(0, 4, 1, 3)), Err(LogError::OutOfOrderSequence { expected_sequence: 3, .. })));
        assert!(stage(&m, &meta(0, 3, 1, 3)).is_ok());
        assert!(matches!(stage(&m, &meta(1, 5, 1, 3)), Err(LogError::OutOfOrderSequence { expected_sequence: 0, .. })));
        m.apply(stage(&m, &meta(1, 0, 1, 3)).unwrap());
        assert!(matches!(stage(&m, &meta(0, 3, 1, 4)), Err(LogError::InvalidProducerEpoch { .. })));
    }

    #[test]
    fn given_snapshot_when_loaded_should_restore_last_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        m.replay(&meta(2, 10, 5, 100));
        m.take_snapshot(105).unwrap();
        let mut loaded = ProducerStateManager::new(dir.path());
        assert_eq!(loaded.load_latest(200).unwrap(), Some(105));
        assert!(loaded.find_duplicate(&PendingProducers::default(), &meta(2, 10, 5, 0)).is_some());
        assert_eq!(loaded.load_latest(104).unwrap(), None);
        assert!(loaded.snapshot_offsets().unwrap().is_empty());
    }

    #[test]
    fn given_corrupt_snapshot_when_loaded_should_be_skipped() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(file_name(5, SNAPSHOT_SUFFIX)), [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        assert_eq!(m.load_latest(10).unwrap(), None);
        assert_eq!(m.producer_count(), 0);
    }

    #[test]
    fn given_max_sequence_when_next_is_zero_should_be_in_sequence() {
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
    }
}
