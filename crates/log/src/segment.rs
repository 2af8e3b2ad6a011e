//! Kafka's `LogSegment`: one `.log` file of whole batches plus its `.index` and `.timeindex`.
//!
//! Not synchronized: the owning `PartitionLog` serializes access. Readers get an
//! `Arc<File>` so a fetch can `pread` after the partition lock is released, even if the
//! segment is deleted meanwhile (an unlinked file stays readable while open).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use gregor_protocol::record_batch::BATCH_HEADER_LEN;

use crate::batch::{is_crc_valid_at, read_header, read_offset_and_size, BatchMeta};
use crate::config::LogConfig;
use crate::error::{IoContext, LogError};
use crate::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use crate::txn_index::{AbortedTxn, TransactionIndex, TXN_INDEX_SUFFIX};

/// Largest read while walking batch headers (four default index intervals).
const SCAN_CHUNK_BYTES: usize = 16 * 1024;
/// First read while walking batch headers: a few headers of small batches.
const SCAN_FIRST_READ_BYTES: usize = 512;

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

/// Kafka's file name for a base offset: 20 zero-padded digits plus the suffix.
pub(crate) fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// What an append would add, for `should_roll` (Kafka's `RollParams`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RollParams {
    pub(crate) messages_size: u64,
    pub(crate) max_timestamp: i64,
    pub(crate) max_offset: i64,
    pub(crate) now_ms: i64,
}

/// A batch found in a segment, and where it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    pub(crate) position: u64,
    pub(crate) meta: BatchMeta,
}

/// A byte range of whole batches inside one segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentSlice {
    pub(crate) file: Arc<File>,
    pub(crate) position: u64,
    pub(crate) length: u64,
    pub(crate) first: BatchMeta,
}

#[derive(Debug)]
pub(crate) struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<File>,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    txn_index: TransactionIndex,
    index_interval_bytes: u64,
    bytes_since_last_index_entry: u64,
    max_timestamp_so_far: i64,
    offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch: what `segment.ms` is measured from.
    rolling_based_timestamp: Option<i64>,
    created_ms: i64,
    last_modified_ms: i64,
    next_offset: i64,
}

fn open_log_file(path: &Path, truncate: bool) -> Result<File, LogError> {
    OpenOptions::new().read(true).write(true).create(true).truncate(truncate).open(path).ctx("open segment", path)
}

fn mtime_ms(file: &File) -> Option<i64> {
    let modified = file.metadata().ok()?.modified().ok()?;
    i64::try_from(modified.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

impl LogSegment {
    /// Creates an empty segment, replacing any leftover files with the same base offset.
    pub(crate) fn create(dir: &Path, base_offset: i64, config: &LogConfig, now_ms: i64) -> Result<Self, LogError> {
        Self::create_with_suffix(dir, base_offset, config, now_ms, "")
    }

    /// As `create`, with `extra` appended to all three file names: the cleaner writes
    /// `<base>.log.cleaned` (and its indexes) this way before swapping them in.
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        extra: &str,
    ) -> Result<Self, LogError> {
        // A new segment's transaction index starts empty; a cleaned one has none yet.
        let stale_txn_index = extra.is_empty().then_some(TXN_INDEX_SUFFIX);
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX].into_iter().chain(stale_txn_index) {
            let path = dir.join(format!("{}{extra}", file_name(base_offset, suffix)));
            if path.exists() {
                fs::remove_file(&path).ctx("remove stale index", &path)?;
            }
        }
        let log_path = dir.join(format!("{}{extra}", file_name(base_offset, LOG_SUFFIX)));
        let log = open_log_file(&log_path, true)?;
        Self::assemble(dir, base_offset, config, (log_path, log), now_ms, extra)
    }

    fn assemble(
        dir: &Path,
        base: i64,
        config: &LogConfig,
        (log_path, log): (PathBuf, File),
        now_ms: i64,
        extra: &str,
    ) -> Result<Self, LogError> {
        let size = log.metadata().ctx("stat segment", &log_path)?.len();
        let index_bytes = config.segment_index_bytes;
        let index_path = |suffix: &str| dir.join(format!("{}{extra}", file_name(base, suffix)));
        Ok(Self {
            base_offset: base,
            offset_index: OffsetIndex::open(&index_path(INDEX_SUFFIX), index_bytes)?,
            time_index: TimeIndex::open(&index_path(TIME_INDEX_SUFFIX), index_bytes)?,
            // A cleaned segment keeps the file of the one it replaces (see `rename_to_deleted`).
            txn_index: if extra.is_empty() {
                TransactionIndex::open(index_path(TXN_INDEX_SUFFIX))?
            } else {
                TransactionIndex::detached(index_path(TXN_INDEX_SUFFIX))
            },
            last_modified_ms: mtime_ms(&log).unwrap_or(now_ms),
            log_path,
            log: Arc::new(log),
            size,
            index_interval_bytes: config.index_interval_bytes,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: -1,
            offset_of_max_timestamp: base,
            rolling_based_timestamp: None,
            created_ms: now_ms,
            next_offset: base,
        })
    }

    /// Opens an existing segment without reading it all: the indexes are checked for
    /// sanity and only the batches after the last offset-index entry are scanned. The flag
    /// says whether the segment needs a full `recover` (bad index or a torn tail).
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(Self, bool), LogError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = open_log_file(&log_path, false)?;
        let indexes_exist =
            [INDEX_SUFFIX, TIME_INDEX_SUFFIX].iter().all(|s| dir.join(file_name(base_offset, s)).exists());
        let mut segment = Self::assemble(dir, base_offset, config, (log_path, log), now_ms, "")?;
        if !indexes_exist || !segment.offset_index.is_sane(segment.size) {
            return Ok((segment, true));
        }
        let clean_tail = segment.load_tail()?;
        let last_relative = (segment.next_offset > base_offset).then(|| segment.relative(segment.next_offset - 1));
        let sane = clean_tail && segment.time_index.is_sane(last_relative);
        if let Some(last) = segment.time_index.last().filter(|_| sane) {
            if last.timestamp > segment.max_timestamp_so_far {
                segment.max_timestamp_so_far = last.timestamp;
                segment.offset_of_max_timestamp = base_offset + i64::from(last.relative_offset);
            }
        }
        Ok((segment, !sane))
    }

    /// Scans headers from the last indexed batch to the end. False if that does not land
    /// exactly on the file end at a batch boundary, or offsets go backwards.
    fn load_tail(&mut self) -> Result<bool, LogError> {
        let first = read_header(&self.log, 0, self.size).ctx("read segment", &self.log_path)?;
        self.rolling_based_timestamp = first.map(|m| m.max_timestamp);
        let start = self.offset_index.last();
        let mut position = start.map_or(0, |e| u64::from(e.position));
        self.next_offset = self.base_offset;
        while let Some(meta) = read_header(&self.log, position, self.size).ctx("read segment", &self.log_path)? {
            let indexed = start.filter(|e| u64::from(e.position) == position);
            let bad_entry =
                indexed.is_some_and(|e| self.base_offset + i64::from(e.relative_offset) != meta.last_offset);
            if bad_entry || meta.base_offset < self.next_offset.max(self.base_offset) || !self.fits(meta.last_offset) {
                return Ok(false);
            }
            self.track_timestamp(&meta);
            self.next_offset = meta.next_offset();
            position += meta.size;
        }
        self.bytes_since_last_index_entry = position - start.map_or(0, |e| u64::from(e.position));
        Ok(position == self.size)
    }

    /// Kafka's `LogSegment.recover`: rebuilds both indexes from a full scan that checks
    /// every batch's size, CRC and offsets, and cuts the file at the first bad batch.
    /// `on_batch` sees each valid batch (the leader-epoch cache is rebuilt from them).
    /// Returns the number of bytes truncated.
    pub(crate) fn recover(&mut self, on_batch: &mut dyn FnMut(&BatchMeta)) -> Result<u64, LogError> {
        self.offset_index.truncate_entries(0)?;
        self.time_index.truncate_entries(0)?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp_so_far = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.rolling_based_timestamp = None;
        self.next_offset = self.base_offset;
        let mut position = 0;
        while let Some(meta) = read_header(&self.log, position, self.size).ctx("read segment", &self.log_path)? {
            let in_order = meta.base_offset >= self.next_offset && self.fits(meta.last_offset);
            if !in_order || !is_crc_valid_at(&self.log, position, &meta).ctx("read segment", &self.log_path)? {
                break;
            }
            self.index_batch(&meta, position)?;
            on_batch(&meta);
            position += meta.size;
        }
        self.txn_index.truncate_to(self.next_offset)?;
        let truncated = self.size - position;
        if truncated > 0 {
            tracing::warn!(segment = %self.log_path.display(), position, truncated, "truncating invalid bytes at the end of the segment");
            self.log.set_len(position).ctx("truncate segment", &self.log_path)?;
            self.size = position;
        }
        // Rebuilt indexes go to the page cache now (the next flush fsyncs them), so the
        // files on disk describe the recovered segment.
        self.offset_index.write_pending()?;
        self.time_index.write_pending()?;
        Ok(truncated)
    }

    /// Whether `offset` can be stored relative to the base offset in 4 bytes.
    fn fits(&self, offset: i64) -> bool {
        offset >= self.base_offset && offset - self.base_offset <= i64::from(u32::MAX)
    }

    fn relative(&self, offset: i64) -> u32 {
        (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32
    }

    fn track_timestamp(&mut self, meta: &BatchMeta) {
        if meta.max_timestamp > self.max_timestamp_so_far {
            self.max_timestamp_so_far = meta.max_timestamp;
            self.offset_of_max_timestamp = meta.last_offset;
        }
        if self.rolling_based_timestamp.is_none() {
            self.rolling_based_timestamp = Some(meta.max_timestamp);
        }
    }

    /// Adds index entries for a batch written at `position`, the way Kafka's
    /// `LogSegment.append` does: one entry once `index.interval.bytes` have passed.
    fn index_batch(&mut self, meta: &BatchMeta, position: u64) -> Result<(), LogError> {
        self.track_timestamp(meta);
        if self.bytes_since_last_index_entry > self.index_interval_bytes {
            let relative_offset = self.relative(meta.last_offset);
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            self.offset_index.append(OffsetEntry { relative_offset, position });
            self.maybe_append_time_entry()?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += meta.size;
        self.next_offset = meta.next_offset();
        Ok(())
    }

    fn maybe_append_time_entry(&mut self) -> Result<(), LogError> {
        if self.time_index.last().is_some_and(|e| e.timestamp >= self.max_timestamp_so_far) {
            return Ok(());
        }
        let relative_offset = self.relative(self.offset_of_max_timestamp);
        self.time_index.append(TimeEntry { timestamp: self.max_timestamp_so_far, relative_offset });
        Ok(())
    }

    /// Writes already validated, offset-stamped batches with one `pwrite`. On failure the
    /// file is cut back so no partial batch stays behind.
    pub(crate) fn append(&mut self, bytes: &[u8], metas: &[BatchMeta], now_ms: i64) -> Result<(), LogError> {
        use std::os::unix::fs::FileExt;
        if let Err(e) = self.log.write_all_at(bytes, self.size) {
            let _ = self.log.set_len(self.size);
            return Err(e).ctx("append to segment", &self.log_path);
        }
        let mut position = self.size;
        for meta in metas {
            self.index_batch(meta, position)?;
            position += meta.size;
        }
        self.size = position;
        self.last_modified_ms = now_ms;
        Ok(())
    }

    /// Kafka's `LogSegment.shouldRoll`.
    pub(crate) fn should_roll(&self, params: &RollParams, config: &LogConfig) -> bool {
        let waited_ms = match self.rolling_based_timestamp {
            Some(first) if first >= 0 => params.max_timestamp.saturating_sub(first),
            _ => params.now_ms.saturating_sub(self.created_ms),
        };
        let full = self.size > 0 && self.size + params.messages_size > config.segment_bytes;
        let expired = self.size > 0 && waited_ms > config.segment_ms;
        full || expired || self.offset_index.is_full() || self.time_index.is_full() || !self.fits(params.max_offset)
    }

    /// The first batch whose last offset is at or after `offset`, found from the nearest
    /// offset-index entry below it.
    pub(crate) fn translate_offset(&self, offset: i64) -> Result<Option<Located>, LogError> {
        let start = self.offset_index.floor(self.relative(offset)).map_or(0, |e| u64::from(e.position));
        self.scan_from(start, |meta| meta.last_offset >= offset)
    }

    /// Walks batch headers from `position` to the first batch `found` accepts. Reads in
    /// growing chunks rather than one read per header: the first read is small (large
    /// batches are found at once), later ones cover the rest of the stretch from the
    /// sparse index entry (`index.interval.bytes` apart) in one or two reads.
    fn scan_from(&self, mut position: u64, found: impl Fn(&BatchMeta) -> bool) -> Result<Option<Located>, LogError> {
        let mut chunk = [0u8; SCAN_CHUNK_BYTES];
        let mut step = SCAN_FIRST_READ_BYTES;
        while position + BATCH_HEADER_LEN as u64 <= self.size {
            let want = usize::try_from(self.size - position).map_or(step, |left| left.min(step));
            step = (step * 4).min(SCAN_CHUNK_BYTES);
            match self.log.read_exact_at(&mut chunk[..want], position) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e).ctx("read segment", &self.log_path),
            }
            let mut at = 0;
            while at + BATCH_HEADER_LEN <= want {
                let mut header = [0u8; BATCH_HEADER_LEN];
                header.copy_from_slice(&chunk[at..at + BATCH_HEADER_LEN]);
                let here = position + at as u64;
                let Some(meta) = BatchMeta::from_header(&header).filter(|m| here + m.size <= self.size) else {
                    return Ok(None);
                };
                if found(&meta) {
                    return Ok(Some(Located { position: here, meta }));
                }
                at += usize::try_from(meta.size).unwrap_or(usize::MAX);
            }
            position += at as u64;
        }
        Ok(None)
    }

    /// Whole batches from the one holding `fetch_offset`, up to `max_bytes` (at least one
    /// batch), none starting at or after `max_offset_exclusive`. `None` when the segment
    /// holds nothing at or after `fetch_offset`; a zero length when the high watermark
    /// blocks the first batch.
    pub(crate) fn slice(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset_exclusive: i64,
    ) -> Result<Option<SegmentSlice>, LogError> {
        let Some(first) = self.translate_offset(fetch_offset)? else {
            return Ok(None);
        };
        let start = first.position;
        let mut slice = SegmentSlice { file: Arc::clone(&self.log), position: start, length: 0, first: first.meta };
        if first.meta.base_offset >= max_offset_exclusive {
            return Ok(Some(slice));
        }
        let limit = (start + (max_bytes as u64).max(first.meta.size)).min(self.size);
        let mut end = self.skip_indexed(start + first.meta.size, limit, max_offset_exclusive);
        while end < limit {
            match read_offset_and_size(&self.log, end).ctx("read segment", &self.log_path)? {
                Some((base, size)) if base < max_offset_exclusive && size > 0 && end + size <= limit => end += size,
                _ => break,
            }
        }
        slice.length = end - start;
        Ok(Some(slice))
    }

    /// Jumps over batches known from the offset index to lie wholly inside `limit` and
    /// below `max_offset_exclusive`, so building a large read scans few headers.
    fn skip_indexed(&self, from: u64, limit: u64, max_offset_exclusive: i64) -> u64 {
        let entries = self.offset_index.entries();
        let base = self.base_offset;
        let usable = entries.partition_point(|e| {
            u64::from(e.position) <= limit && base + i64::from(e.relative_offset) < max_offset_exclusive
        });
        usable.checked_sub(1).map_or(from, |i| from.max(u64::from(entries[i].position)))
    }

    /// The first batch with a max timestamp at or after `timestamp_ms` (Kafka's
    /// `findOffsetByTimestamp`, batch level).
    pub(crate) fn find_batch_by_timestamp(&self, timestamp_ms: i64) -> Result<Option<Located>, LogError> {
        let from = self.time_index.floor(timestamp_ms).map(|e| e.relative_offset);
        let start = from.and_then(|r| self.offset_index.floor(r)).map_or(0, |e| u64::from(e.position));
        self.scan_from(start, |meta| meta.max_timestamp >= timestamp_ms)
    }

    /// Cuts the segment before the batch holding `offset` and rebuilds its indexes.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if let Some(found) = self.translate_offset(offset)? {
            self.log.set_len(found.position).ctx("truncate segment", &self.log_path)?;
            self.size = found.position;
            self.recover(&mut |_| {})?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> Result<(), LogError> {
        self.log.sync_data().ctx("fsync segment", &self.log_path)?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.txn_index.flush()
    }

    /// Records an aborted transaction whose marker is in this segment.
    pub(crate) fn append_aborted_txn(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        self.txn_index.append(entry)
    }

    pub(crate) fn txn_index(&self) -> &TransactionIndex {
        &self.txn_index
    }

    /// The base offset of the batch starting at `position`, or the segment's next offset
    /// when none does: the end of a fetch that stops there.
    pub(crate) fn offset_at(&self, position: u64) -> Result<i64, LogError> {
        if position >= self.size {
            return Ok(self.next_offset);
        }
        let found = read_offset_and_size(&self.log, position).ctx("read segment", &self.log_path)?;
        Ok(found.map_or(self.next_offset, |(base, _)| base))
    }

    /// Renames the segment's files to `<name>.deleted` and returns their new paths. With
    /// `keep_txn_index` the `.txnindex` stays: a cleaned segment replacing this one
    /// covers the same offsets and takes it over.
    pub(crate) fn rename_to_deleted(&mut self, keep_txn_index: bool) -> Result<Vec<PathBuf>, LogError> {
        let deleted = |p: &Path| PathBuf::from(format!("{}{DELETED_SUFFIX}", p.display()));
        let log_to = deleted(&self.log_path);
        fs::rename(&self.log_path, &log_to).ctx("rename segment", &self.log_path)?;
        self.log_path = log_to.clone();
        let index_to = deleted(self.offset_index.path());
        self.offset_index.rename(index_to.clone())?;
        let time_to = deleted(self.time_index.path());
        self.time_index.rename(time_to.clone())?;
        let mut paths = vec![log_to, index_to, time_to];
        if !keep_txn_index {
            let txn_to = deleted(self.txn_index.path());
            if self.txn_index.rename(txn_to.clone())? {
                paths.push(txn_to);
            }
        }
        Ok(paths)
    }

    pub(crate) fn set_config(&mut self, config: &LogConfig) {
        self.index_interval_bytes = config.index_interval_bytes;
        self.offset_index.set_max_index_bytes(config.segment_index_bytes);
        self.time_index.set_max_index_bytes(config.segment_index_bytes);
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// One past the last offset stored, or the base offset when empty.
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
    pub(crate) fn path(&self) -> &Path {
        &self.log_path
    }
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.log
    }
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp_so_far
    }
    /// Max timestamp of the first batch (Kafka's `getFirstBatchTimestamp`), for
    /// `max.compaction.lag.ms`.
    pub(crate) fn first_batch_timestamp(&self) -> Option<i64> {
        self.rolling_based_timestamp
    }
    pub(crate) fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    /// Kafka's `largestTimestamp`: the newest batch timestamp, or the file's last
    /// modification when no batch carries one.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp_so_far >= 0 {
            self.max_timestamp_so_far
        } else {
            self.last_modified_ms
        }
    }
}

impl LogSegment {
    /// The batch right after `located`, if the segment holds one.
    pub(crate) fn batch_after(&self, located: &Located) -> Result<Option<Located>, LogError> {
        let position = located.position + located.meta.size;
        let meta = read_header(&self.log, position, self.size).ctx("read segment", &self.log_path)?;
        Ok(meta.map(|meta| Located { position, meta }))
    }
}
