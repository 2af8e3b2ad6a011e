//! Kafka's sparse segment indexes, kept in memory and written to disk when the segment
//! is flushed (fsync points, roll, clean shutdown).
//!
//! `OffsetIndex` entries are 8 bytes (relative offset, file position); `TimeIndex` entries
//! are 12 bytes (timestamp, relative offset); all big-endian, as Kafka writes them. Kafka
//! pre-allocates and memory-maps index files; here the file always holds exactly its
//! persisted entries, so nothing needs trimming at close and no `unsafe` is needed.
//! No file handle is kept between writes: a partition costs one descriptor (its `.log`)
//! instead of three, which is what lets 10,000 partitions fit common `ulimit -n` values.
//! Entries not yet written are lost in a crash, which costs nothing: an unflushed segment
//! lies past the recovery point and is recovered (its indexes rebuilt) at the next start,
//! and a sane but short index only makes `load_tail` scan a little further. Indexes carry
//! no checksum: after a crash they are checked for sanity and rebuilt if needed.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError};

/// Largest index file loaded into memory (Kafka caps `segment.index.bytes` far below).
const MAX_LOADABLE_INDEX_BYTES: u64 = 256 * 1024 * 1024;

/// One fixed-size index entry.
pub(crate) trait IndexEntry: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn encode(&self, out: &mut [u8]);
    fn decode(bytes: &[u8]) -> Self;
    fn relative_offset(&self) -> u32;
}

/// Offset index entry: the last offset of a batch (relative to the segment base offset)
/// and the byte position where that batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

/// Time index entry: the largest timestamp seen so far and the offset of its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) relative_offset: u32,
}

fn u32_from(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        Self { relative_offset: u32_from(&b[..4]), position: u32_from(&b[4..8]) }
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        Self { timestamp: i64::from_be_bytes(ts), relative_offset: u32_from(&b[8..12]) }
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

/// An index file and its entries.
#[derive(Debug)]
pub(crate) struct IndexFile<E> {
    path: PathBuf,
    entries: Vec<E>,
    /// Entries `..persisted` are in the file.
    persisted: usize,
    /// Written or truncated since the last fsync.
    unsynced: bool,
    max_entries: usize,
    /// False when the file on disk was not a whole number of entries.
    whole_entries: bool,
}

pub(crate) type OffsetIndex = IndexFile<OffsetEntry>;
pub(crate) type TimeIndex = IndexFile<TimeEntry>;

impl<E: IndexEntry> IndexFile<E> {
    /// Opens (creating if missing) and loads the index at `path`. Damage is not an error
    /// here: `is_sane` tells the caller to rebuild.
    pub(crate) fn open(path: &Path, max_index_bytes: u64) -> Result<Self, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx("open index", path)?;
        let len = file.metadata().ctx("stat index", path)?.len();
        // A damaged file may claim any size; past the cap it is rebuilt, not loaded.
        let loadable = len <= MAX_LOADABLE_INDEX_BYTES;
        let mut bytes = vec![0u8; if loadable { len as usize } else { 0 }];
        file.read_exact_at(&mut bytes, 0).ctx("read index", path)?;
        let entries: Vec<E> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        Ok(Self {
            path: path.to_path_buf(),
            persisted: entries.len(),
            unsynced: false,
            entries,
            max_entries: (max_index_bytes / E::SIZE as u64).max(1) as usize,
            whole_entries: loadable && len % E::SIZE as u64 == 0,
        })
    }

    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }
    pub(crate) fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whole entries with strictly increasing relative offsets (Kafka's sanity check,
    /// made stricter because it costs nothing with the entries in memory).
    pub(crate) fn has_sane_shape(&self) -> bool {
        self.whole_entries && self.entries.windows(2).all(|w| w[0].relative_offset() < w[1].relative_offset())
    }

    /// Adds an entry in memory; `flush` writes it.
    pub(crate) fn append(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Keeps the first `len` entries and cuts the file to match.
    pub(crate) fn truncate_entries(&mut self, len: usize) -> Result<(), LogError> {
        self.entries.truncate(len);
        self.whole_entries = true;
        self.persisted = self.persisted.min(len);
        let file = self.open_for_write()?;
        file.set_len((self.persisted * E::SIZE) as u64).ctx("truncate index", &self.path)?;
        self.unsynced = true;
        Ok(())
    }

    /// Writes the entries not yet in the file, then fsyncs it.
    pub(crate) fn flush(&mut self) -> Result<(), LogError> {
        if self.persisted == self.entries.len() && !self.unsynced {
            return Ok(());
        }
        let file = self.write_pending()?;
        file.sync_data().ctx("fsync index", &self.path)?;
        self.unsynced = false;
        Ok(())
    }

    /// Writes the entries not yet in the file, without waiting for the disk.
    pub(crate) fn write_pending(&mut self) -> Result<File, LogError> {
        let file = self.open_for_write()?;
        let mut bytes = vec![0u8; (self.entries.len() - self.persisted) * E::SIZE];
        for (entry, out) in self.entries[self.persisted..].iter().zip(bytes.chunks_exact_mut(E::SIZE)) {
            entry.encode(out);
        }
        file.write_all_at(&bytes, (self.persisted * E::SIZE) as u64).ctx("append to index", &self.path)?;
        self.persisted = self.entries.len();
        self.unsynced = true;
        Ok(file)
    }

    fn open_for_write(&self) -> Result<File, LogError> {
        OpenOptions::new().write(true).create(true).truncate(false).open(&self.path).ctx("open index", &self.path)
    }

    pub(crate) fn set_max_index_bytes(&mut self, max_index_bytes: u64) {
        self.max_entries = (max_index_bytes / E::SIZE as u64).max(1) as usize;
    }

    /// Moves the file (for `.deleted`).
    pub(crate) fn rename(&mut self, to: PathBuf) -> Result<(), LogError> {
        std::fs::rename(&self.path, &to).ctx("rename index", &self.path)?;
        self.path = to;
        Ok(())
    }
}

impl OffsetIndex {
    /// The entry with the largest offset at or below `relative_offset`, if any.
    pub(crate) fn floor(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let idx = self.entries.partition_point(|e| e.relative_offset <= relative_offset);
        idx.checked_sub(1).map(|i| self.entries[i])
    }

    /// Positions must also increase and stay inside the log file.
    pub(crate) fn is_sane(&self, log_size: u64) -> bool {
        self.has_sane_shape()
            && self.entries.windows(2).all(|w| w[0].position < w[1].position)
            && self.entries.last().is_none_or(|e| u64::from(e.position) < log_size)
    }
}

impl TimeIndex {
    /// The entry with the largest timestamp at or below `timestamp`, if any.
    pub(crate) fn floor(&self, timestamp: i64) -> Option<TimeEntry> {
        let idx = self.entries.partition_point(|e| e.timestamp <= timestamp);
        idx.checked_sub(1).map(|i| self.entries[i])
    }

    /// Timestamps must also increase, and offsets must not point past the segment end.
    pub(crate) fn is_sane(&self, max_relative_offset: Option<u32>) -> bool {
        self.has_sane_shape()
            && self.entries.windows(2).all(|w| w[0].timestamp < w[1].timestamp)
            && self.entries.last().is_none_or(|e| max_relative_offset.is_some_and(|m| e.relative_offset <= m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_entries_when_reopened_should_load_them_and_floor_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&path, 1024).unwrap();
        idx.append(OffsetEntry { relative_offset: 5, position: 100 });
        idx.append(OffsetEntry { relative_offset: 9, position: 300 });
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "entries wait for the flush");
        idx.flush().unwrap();
        drop(idx);
        let idx = OffsetIndex::open(&path, 1024).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        assert!(idx.is_sane(400));
        assert!(!idx.is_sane(300));
        assert_eq!(idx.floor(4), None);
        assert_eq!(idx.floor(7).unwrap().position, 100);
        assert_eq!(idx.floor(100).unwrap().position, 300);
    }

    #[test]
    fn given_partial_entry_on_disk_when_opened_should_not_be_sane() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        std::fs::write(&path, [1u8; 13]).unwrap();
        let idx = TimeIndex::open(&path, 1024).unwrap();
        assert!(!idx.is_sane(Some(100)));
    }

    #[test]
    fn given_max_bytes_when_filled_should_report_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = OffsetIndex::open(&dir.path().join("0.index"), 16).unwrap();
        idx.append(OffsetEntry { relative_offset: 1, position: 0 });
        assert!(!idx.is_full());
        idx.append(OffsetEntry { relative_offset: 2, position: 10 });
        assert!(idx.is_full());
        idx.flush().unwrap();
        idx.truncate_entries(1).unwrap();
        assert!(!idx.is_full());
        assert_eq!(std::fs::metadata(dir.path().join("0.index")).unwrap().len(), 8, "the file is cut too");
    }
}
