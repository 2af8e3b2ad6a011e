//! Kafka's `TransactionIndex`: the aborted transactions whose abort marker lies in one
//! segment (`<base>.txnindex`), so read_committed fetches can tell clients which
//! producers' records to drop.
//!
//! Entries are Kafka's 34-byte `AbortedTxn` v0, big-endian: `version i16 | producer_id
//! i64 | first_offset i64 | last_offset i64 | last_stable_offset i64`. The file is created
//! on the first abort only (most segments never see one) and always holds exactly its
//! entries; a partial trailing entry (torn write) is cut on open. The entries are also
//! kept in memory: they are few, and every read_committed fetch consults them.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError};

pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";
const ENTRY_SIZE: usize = 34;
const ENTRY_VERSION: i16 = 0;

/// One aborted transaction: the producer's records in `[first_offset, last_offset]`
/// (the abort marker) are to be skipped. `last_stable_offset` is the partition's LSO
/// right after the abort: no transaction that began before it is still open then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut out = [0u8; ENTRY_SIZE];
        out[..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().unwrap_or_default());
        (i16::from_be_bytes([b[0], b[1]]) == ENTRY_VERSION).then(|| Self {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

#[derive(Debug)]
pub(crate) struct TransactionIndex {
    path: PathBuf,
    file: Option<File>,
    entries: Vec<AbortedTxn>,
}

impl TransactionIndex {
    /// Opens the index at `path` if it exists, cutting a torn or unreadable tail.
    pub(crate) fn open(path: PathBuf) -> Result<Self, LogError> {
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self { path, file: None, entries: Vec::new() })
            }
            Err(e) => return Err(e).ctx("read transaction index", &path),
        };
        let entries: Vec<AbortedTxn> = bytes.chunks_exact(ENTRY_SIZE).map_while(AbortedTxn::decode).collect();
        let file = OpenOptions::new().read(true).write(true).open(&path).ctx("open transaction index", &path)?;
        let valid = (entries.len() * ENTRY_SIZE) as u64;
        if valid != bytes.len() as u64 {
            tracing::warn!(path = %path.display(), "cutting a torn transaction index");
            file.set_len(valid).ctx("truncate transaction index", &path)?;
        }
        Ok(Self { path, file: Some(file), entries })
    }

    /// An index with no file, for segments written by the cleaner (they keep the file of
    /// the segment they replace: the offsets of aborted transactions do not change).
    pub(crate) fn detached(path: PathBuf) -> Self {
        Self { path, file: None, entries: Vec::new() }
    }

    pub(crate) fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    pub(crate) fn contains_marker(&self, last_offset: i64) -> bool {
        self.entries.iter().any(|e| e.last_offset == last_offset)
    }

    pub(crate) fn append(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&self.path)
                .ctx("create transaction index", &self.path)?;
            self.file = Some(file);
        }
        let position = (self.entries.len() * ENTRY_SIZE) as u64;
        if let Some(file) = &self.file {
            file.write_all_at(&entry.encode(), position).ctx("write transaction index", &self.path)?;
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Drops the entries of markers at or after `offset` (the log was cut there).
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        if let Some(file) = &self.file {
            file.set_len((keep * ENTRY_SIZE) as u64).ctx("truncate transaction index", &self.path)?;
        }
        Ok(())
    }

    pub(crate) fn flush(&self) -> Result<(), LogError> {
        match &self.file {
            Some(file) => file.sync_data().ctx("fsync transaction index", &self.path),
            None => Ok(()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file (if any) to `to`; returns whether a file was renamed.
    pub(crate) fn rename(&mut self, to: PathBuf) -> Result<bool, LogError> {
        let existed = self.file.is_some();
        if existed {
            fs::rename(&self.path, &to).ctx("rename transaction index", &self.path)?;
        }
        self.path = to;
        Ok(existed)
    }

    /// Kafka's `collectAbortedTxns`: entries touching `[fetch_offset, upper_bound)`, and
    /// whether the search is complete (an entry shows every transaction that started
    /// below `upper_bound` had ended, so later segments cannot add any).
    pub(crate) fn collect(&self, fetch_offset: i64, upper_bound: i64, out: &mut Vec<AbortedTxn>) -> bool {
        for entry in &self.entries {
            if entry.last_offset >= fetch_offset && entry.first_offset < upper_bound {
                out.push(*entry);
            }
            if entry.last_stable_offset >= upper_bound {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(producer_id: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn { producer_id, first_offset: first, last_offset: last, last_stable_offset: lso }
    }

    #[test]
    fn given_entries_when_reopened_should_load_them_and_cut_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut index = TransactionIndex::open(path.clone()).unwrap();
        assert!(!path.exists(), "created lazily");
        index.append(entry(1, 0, 5, 6)).unwrap();
        index.append(entry(2, 3, 9, 10)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0, 0, 1]);
        fs::write(&path, bytes).unwrap();
        let reopened = TransactionIndex::open(path.clone()).unwrap();
        assert_eq!(reopened.entries(), &[entry(1, 0, 5, 6), entry(2, 3, 9, 10)]);
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
    }

    #[test]
    fn given_range_when_collecting_should_return_overlapping_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TransactionIndex::open(dir.path().join("x.txnindex")).unwrap();
        index.append(entry(1, 0, 5, 3)).unwrap();
        index.append(entry(2, 3, 9, 10)).unwrap();
        index.append(entry(3, 12, 15, 16)).unwrap();
        let mut out = Vec::new();
        assert!(index.collect(6, 10, &mut out));
        assert_eq!(out, vec![entry(2, 3, 9, 10)]);
        out.clear();
        assert!(!index.collect(0, 100, &mut out));
        assert_eq!(out.len(), 3);
        index.truncate_to(9).unwrap();
        assert_eq!(index.entries(), &[entry(1, 0, 5, 3)]);
    }
}
