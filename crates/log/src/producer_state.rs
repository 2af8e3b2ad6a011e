//! Kafka's `ProducerStateManager`: per idempotent producer, its epoch and the metadata of
//! its last five batches, to drop retried duplicates and reject sequence gaps and zombies.
//!
//! Snapshots use Kafka's `ProducerSnapshot` v1 layout (`<offset>.snapshot`):
//! `version i16 | crc u32 (CRC-32C of the rest) | count i32 | entries`, each entry
//! `producer_id i64, epoch i16, last_sequence i32, last_offset i64, offset_delta i32,
//! timestamp i64, coordinator_epoch i32, current_txn_first_offset i64`. Like Kafka, a
//! snapshot keeps only each producer's last batch; replaying the log after it restores more.
//!
//! Transactions: a producer's first transactional batch opens its transaction
//! (`current_txn_first_offset`); the coordinator's marker closes it. The open
//! transactions, ordered by first offset, give the partition's first unstable offset,
//! which bounds what read_committed consumers may see (the last stable offset).

use std::collections::{BTreeMap, HashMap, VecDeque};
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
    /// First offset of the producer's open transaction in this partition.
    current_txn_first_offset: Option<i64>,
    /// Timestamp of the producer's last batch or marker.
    last_timestamp: i64,
}

/// A transaction a marker just ended in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    /// The offset of the marker.
    pub(crate) last_offset: i64,
    pub(crate) is_aborted: bool,
}

/// One producer as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// -1 when no sequenced batch is remembered.
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// -1 when the producer has no open transaction here.
    pub current_txn_start_offset: i64,
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

    fn new(epoch: i16) -> Self {
        Self { epoch, coordinator_epoch: -1, last_timestamp: -1, ..Default::default() }
    }

    fn update_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    /// Records a data batch; returns the first offset of a transaction it opens.
    fn add(&mut self, meta: &BatchMeta) -> Option<i64> {
        self.update_epoch(meta.producer_epoch);
        self.last_timestamp = meta.max_timestamp;
        let opened = (meta.is_transactional && self.current_txn_first_offset.is_none()).then_some(meta.base_offset);
        if opened.is_some() {
            self.current_txn_first_offset = opened;
        }
        self.add_sequence(meta);
        opened
    }

    /// Records a transaction marker (epoch and coordinator epoch already checked).
    fn end_txn(&mut self, meta: &BatchMeta, commit: bool, coordinator_epoch: i32) -> CompletedTxn {
        let completed = CompletedTxn {
            producer_id: meta.producer_id,
            first_offset: self.current_txn_first_offset.take().unwrap_or(meta.base_offset),
            last_offset: meta.base_offset,
            is_aborted: !commit,
        };
        self.update_epoch(meta.producer_epoch);
        self.coordinator_epoch = coordinator_epoch;
        self.last_timestamp = meta.max_timestamp;
        completed
    }

    fn add_sequence(&mut self, meta: &BatchMeta) {
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
    if !meta.is_transactional && entry.current_txn_first_offset.is_some() {
        return Err(LogError::InvalidTxnState {
            producer_id,
            reason: "a non-transactional batch during a transaction",
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

/// Kafka's `checkProducerEpoch` + coordinator-epoch check for a transaction marker.
fn check_marker(entry: Option<&ProducerStateEntry>, meta: &BatchMeta, coordinator_epoch: i32) -> Result<(), LogError> {
    let Some(entry) = entry else { return Ok(()) };
    if meta.producer_epoch < entry.epoch {
        return Err(LogError::InvalidProducerEpoch {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            current_epoch: entry.epoch,
        });
    }
    if coordinator_epoch < entry.coordinator_epoch {
        return Err(LogError::TransactionCoordinatorFenced {
            producer_id: meta.producer_id,
            coordinator_epoch,
            current: entry.coordinator_epoch,
        });
    }
    Ok(())
}

#[derive(Debug)]
pub(crate) struct ProducerStateManager {
    dir: PathBuf,
    producers: HashMap<i64, ProducerStateEntry>,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
}

/// Producer updates of one append, checked but not yet applied.
#[derive(Debug, Default)]
pub(crate) struct PendingProducers {
    updated: HashMap<i64, ProducerStateEntry>,
    opened: Vec<(i64, i64)>,
    completed: Vec<CompletedTxn>,
}

impl ProducerStateManager {
    pub(crate) fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), producers: HashMap::new(), ongoing: BTreeMap::new() }
    }

    /// The first offset of the oldest open transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Kafka's `lastStableOffset(completedTxn)`: where the LSO stands once `txn` is over,
    /// recorded with an aborted transaction so fetches know when to stop looking.
    fn stable_offset_after(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, producer)| **producer != txn.producer_id)
            .map_or(txn.last_offset + 1, |(first, _)| *first)
    }

    pub(crate) fn producers(&self) -> Vec<ProducerInfo> {
        let mut out: Vec<ProducerInfo> = self
            .producers
            .iter()
            .map(|(id, e)| ProducerInfo {
                producer_id: *id,
                producer_epoch: e.epoch,
                last_sequence: e.last_sequence().unwrap_or(-1),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_unstable_by_key(|p| p.producer_id);
        out
    }

    pub(crate) fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// Kafka's `removeExpiredProducers` (KIP-854): forgets producers whose last batch or
    /// marker is `expiration_ms` or more before `now_ms` and that have no open transaction
    /// here, so producer state cannot grow without bound. Returns how many it forgot.
    pub(crate) fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
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
        let mut entry = current.cloned().unwrap_or_else(|| ProducerStateEntry::new(meta.producer_epoch));
        if let Some(first) = entry.add(meta) {
            pending.opened.push((first, meta.producer_id));
        }
        pending.updated.insert(meta.producer_id, entry);
        Ok(())
    }

    /// Checks a transaction marker (offset assigned) and records it in `pending`.
    pub(crate) fn check_and_stage_marker(
        &self,
        pending: &mut PendingProducers,
        meta: &BatchMeta,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<(), LogError> {
        let current = pending.updated.get(&meta.producer_id).or_else(|| self.producers.get(&meta.producer_id));
        check_marker(current, meta, coordinator_epoch)?;
        let mut entry = current.cloned().unwrap_or_else(|| ProducerStateEntry::new(meta.producer_epoch));
        pending.completed.push(entry.end_txn(meta, commit, coordinator_epoch));
        pending.updated.insert(meta.producer_id, entry);
        Ok(())
    }

    /// Applies checked updates; returns the transactions they ended, each with the last
    /// stable offset right after it.
    pub(crate) fn apply(&mut self, pending: PendingProducers) -> Vec<(CompletedTxn, i64)> {
        self.producers.extend(pending.updated);
        self.ongoing.extend(pending.opened);
        self.complete(pending.completed)
    }

    fn complete(&mut self, completed: Vec<CompletedTxn>) -> Vec<(CompletedTxn, i64)> {
        completed
            .into_iter()
            .map(|txn| {
                let stable = self.stable_offset_after(&txn);
                if self.ongoing.get(&txn.first_offset) == Some(&txn.producer_id) {
                    self.ongoing.remove(&txn.first_offset);
                }
                (txn, stable)
            })
            .collect()
    }

    /// Replays a data batch read back from the log (recovery), without checks.
    pub(crate) fn replay(&mut self, meta: &BatchMeta) {
        if meta.has_producer_id() {
            let entry =
                self.producers.entry(meta.producer_id).or_insert_with(|| ProducerStateEntry::new(meta.producer_epoch));
            if let Some(first) = entry.add(meta) {
                self.ongoing.insert(first, meta.producer_id);
            }
        }
    }

    /// Replays a transaction marker read back from the log; returns the transaction it
    /// ended and the last stable offset after it.
    pub(crate) fn replay_marker(
        &mut self,
        meta: &BatchMeta,
        commit: bool,
        coordinator_epoch: i32,
    ) -> (CompletedTxn, i64) {
        let entry =
            self.producers.entry(meta.producer_id).or_insert_with(|| ProducerStateEntry::new(meta.producer_epoch));
        let txn = entry.end_txn(meta, commit, coordinator_epoch);
        self.complete(vec![txn]).remove(0)
    }

    /// Each producer's last batch offset: the cleaner keeps that batch (empty if need be)
    /// so the producer's last sequence survives compaction, as Kafka does.
    pub(crate) fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.producers.iter().filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset))).collect()
    }

    pub(crate) fn clear(&mut self) {
        self.producers.clear();
        self.ongoing.clear();
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
                    self.ongoing = producers
                        .iter()
                        .filter_map(|(id, e)| e.current_txn_first_offset.map(|first| (first, *id)))
                        .collect();
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
        body.extend_from_slice(&last.map_or(entry.last_timestamp, |b| b.timestamp).to_be_bytes());
        body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
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
    let current_txn_first_offset = Some(f.i64()).filter(|o| *o >= 0);
    let mut batches = VecDeque::new();
    if last_offset >= 0 && last_sequence >= 0 {
        let first_sequence =
            (i64::from(last_sequence) - i64::from(offset_delta)).rem_euclid(i64::from(i32::MAX) + 1) as i32;
        let first_offset = last_offset - i64::from(offset_delta);
        batches.push_back(BatchMetadata { first_sequence, last_sequence, first_offset, last_offset, timestamp });
    }
    (
        producer_id,
        ProducerStateEntry { epoch, batches, coordinator_epoch, current_txn_first_offset, last_timestamp: timestamp },
    )
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
            is_transactional: false,
            is_control: false,
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

    fn txn_meta(producer_epoch: i16, base_sequence: i32, count: i32, base_offset: i64) -> BatchMeta {
        BatchMeta { is_transactional: true, ..meta(producer_epoch, base_sequence, count, base_offset) }
    }

    fn marker(producer_epoch: i16, offset: i64) -> BatchMeta {
        BatchMeta { is_control: true, base_sequence: -1, last_sequence: -1, ..txn_meta(producer_epoch, -1, 1, offset) }
    }

    #[test]
    fn given_transaction_when_marked_should_track_first_unstable_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        m.apply(stage(&m, &txn_meta(0, 0, 2, 10)).unwrap());
        m.apply(stage(&m, &txn_meta(0, 2, 2, 12)).unwrap());
        assert_eq!(m.first_unstable_offset(), Some(10));
        assert!(matches!(stage(&m, &meta(0, 4, 1, 14)), Err(LogError::InvalidTxnState { .. })));
        m.take_snapshot(14).unwrap();
        let mut pending = PendingProducers::default();
        m.check_and_stage_marker(&mut pending, &marker(0, 14), false, 3).unwrap();
        let completed = m.apply(pending);
        let expected = CompletedTxn { producer_id: 7, first_offset: 10, last_offset: 14, is_aborted: true };
        assert_eq!(completed, vec![(expected, 15)]);
        assert_eq!(m.first_unstable_offset(), None);
        let mut pending = PendingProducers::default();
        let stale = m.check_and_stage_marker(&mut pending, &marker(0, 15), true, 2);
        assert!(matches!(stale, Err(LogError::TransactionCoordinatorFenced { .. })));
        let mut loaded = ProducerStateManager::new(dir.path());
        assert_eq!(loaded.load_latest(14).unwrap(), Some(14));
        assert_eq!(loaded.first_unstable_offset(), Some(10), "the snapshot keeps the open transaction");
    }

    #[test]
    fn given_max_sequence_when_next_is_zero_should_be_in_sequence() {
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
    }
}
