//! Kafka's `LogCleaner` for `cleanup.policy=compact`: keeps the latest record per key.
//!
//! ```text
//!  log_start        first_dirty (cleaner checkpoint)      end (first uncleanable)   active
//!    │  clean section       │        dirty section             │ newer than min lag,  │
//!    ▼──────────────────────▼──────────────────────────────────▼ above the HW ...     ▼
//!    └─────────── every segment here is rewritten ─────────────┘
//! ```
//!
//! One clean runs in three steps, so the partition lock is held only for the cheap ones:
//!
//! 1. `PartitionLog::plan_clean` (lock held): picks the cleanable segments (whole
//!    segments below the active segment, the high watermark and `min.compaction.lag.ms`),
//!    decides from the dirty ratio, `max.compaction.lag.ms` or an expired delete horizon
//!    whether to clean, and takes each segment's file handle. No I/O.
//! 2. `CleanPlan::execute` (no lock): builds the key → last offset map over the dirty
//!    segments, then rewrites every planned segment into fsynced `<base>.log.cleaned`
//!    files (see `swap` for the protocol). Segments below the active one never change,
//!    so reading them through the handles races with nothing.
//! 3. `PartitionLog::finish_clean` (lock held): checks that no planned segment was
//!    deleted or truncated meanwhile (else drops the `.cleaned` files), then swaps: a few
//!    renames, two directory fsyncs, and reopening the new segments' indexes.
//!
//! Which records stay (Kafka's `shouldRetainRecord`, KIP-534 tombstones):
//! - a record whose key has a later offset in the map goes; one whose key is absent from
//!   the map (its latest version is in the clean section) stays;
//! - a keyless record goes (Kafka counts it as invalid; compacted topics refuse them);
//! - a tombstone stays until its batch's delete horizon has passed. The first clean that
//!   keeps a tombstone stamps `now + delete.retention.ms` into its batch (attribute bit 6,
//!   base timestamp field), so the horizon survives restarts without extra state;
//! - control batches are copied unchanged, and batches that cannot be decoded are copied
//!   unchanged too (their keys stay out of the map, so nothing is lost by them);
//! - a batch with nothing left disappears, except a producer's last batch, which stays
//!   as an empty batch so its sequence numbers survive (Kafka's `RETAIN_EMPTY`).
//!
//! Rewritten batches keep their base offset, last offset delta, producer id, epoch, base
//! sequence and codec (records are re-compressed with the original codec). One cleaned
//! segment replaces one old segment; small segments are not merged.

mod codec;
mod offset_map;
pub(crate) mod swap;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::os::unix::fs::FileExt;

use gregor_protocol::record_batch::{RecordBatchHeader, BATCH_HEADER_LEN};

use crate::batch::{read_batch, read_header, BatchMeta};
use crate::config::LogConfig;
use crate::error::{IoContext, LogError};
use crate::segment::LogSegment;
use crate::txn_index::AbortedTxn;

pub(crate) use codec::ensure_keyed;
#[cfg(test)]
pub(crate) use codec::put_varlong;
use codec::{decode_batch, delete_horizon, rebuild_batch, DecodedRecord};
use offset_map::OffsetMap;
pub(crate) use offset_map::DEFAULT_DEDUPE_BUFFER_BYTES;
use swap::{remove_transient, CLEANED_SUFFIX};

/// Bytes of rewritten batches gathered before one write to the `.cleaned` file.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// What one clean did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// The cleaner checkpoint before the clean.
    pub first_dirty_offset: i64,
    /// The cleaner checkpoint after it: everything below is now clean.
    pub end_offset: i64,
    pub segments_cleaned: usize,
    /// Distinct keys found in the dirty section.
    pub keys_mapped: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_retained: u64,
}

/// A segment as the plan saw it: its open file stays readable whatever happens to its
/// name, and `finish_clean` compares handles to detect a replaced segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentSnapshot {
    pub(crate) base_offset: i64,
    pub(crate) file: Arc<File>,
    pub(crate) size: u64,
    /// For error messages only: retention may rename the file meanwhile.
    pub(crate) path: PathBuf,
}

impl SegmentSnapshot {
    pub(crate) fn of(segment: &LogSegment) -> Self {
        Self {
            base_offset: segment.base_offset(),
            file: Arc::clone(segment.file()),
            size: segment.size(),
            path: segment.path().to_path_buf(),
        }
    }

    /// Calls `f` with every batch, in order. A segment below the active one was validated
    /// when loaded or written, so a batch that does not parse aborts the clean.
    fn for_each_batch(&self, mut f: impl FnMut(&[u8]) -> Result<(), LogError>) -> Result<(), LogError> {
        let mut position = 0;
        while position < self.size {
            let meta = read_header(&self.file, position, self.size)
                .ctx("read segment to clean", &self.path)?
                .ok_or(LogError::CorruptRecord { reason: "unreadable batch in a segment being cleaned" })?;
            f(&read_batch(&self.file, position, &meta).ctx("read segment to clean", &self.path)?)?;
            position += meta.size;
        }
        Ok(())
    }
}

/// Everything step 2 needs, captured under the partition lock.
#[derive(Debug)]
pub(crate) struct CleanPlan {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) now_ms: i64,
    /// The cleanable segments, oldest first.
    pub(crate) segments: Vec<SegmentSnapshot>,
    /// Index in `segments` of the first dirty segment (`segments.len()` when none is).
    pub(crate) first_dirty: usize,
    pub(crate) first_dirty_offset: i64,
    /// The offset right after the cleanable segments.
    pub(crate) end_offset: i64,
    /// The ratio, `max.compaction.lag.ms` or a known expired horizon asks for a clean.
    /// When false, the clean section is scanned for delete horizons first.
    pub(crate) triggered: bool,
    pub(crate) producer_last_offsets: HashMap<i64, i64>,
    /// Aborted transactions starting below `end_offset`: their records go, as Kafka's
    /// cleaner drops them (the markers stay).
    pub(crate) aborted: Vec<AbortedTxn>,
    /// `PartitionLog`'s generation when planned; a truncation in between voids the clean.
    pub(crate) generation: u64,
    pub(crate) dedupe_buffer_bytes: usize,
}

/// The result of step 2.
#[derive(Debug)]
pub(crate) enum CleanOutcome {
    /// Nothing worth cleaning; the earliest delete horizon found in the clean section
    /// (`i64::MAX` when there is none).
    Skipped {
        earliest_delete_horizon_ms: i64,
    },
    Cleaned(CleanedSegments),
}

/// `.cleaned` files written and fsynced, waiting for the swap.
#[derive(Debug)]
pub(crate) struct CleanedSegments {
    pub(crate) generation: u64,
    pub(crate) segments: Vec<SegmentSnapshot>,
    pub(crate) earliest_delete_horizon_ms: i64,
    pub(crate) stats: CleanStats,
}

/// The retention rules for one clean.
struct Filter<'a> {
    map: &'a OffsetMap,
    aborted: &'a [AbortedTxn],
    now_ms: i64,
    delete_retention_ms: i64,
    producer_last_offsets: &'a HashMap<i64, i64>,
}

/// What becomes of one batch.
enum Filtered {
    Keep,
    Rewrite(Vec<u8>),
    Drop,
}

impl Filter<'_> {
    fn retain(&self, record: &DecodedRecord, horizon: Option<i64>) -> bool {
        let Some(key) = &record.key else {
            return false;
        };
        if self.map.get(key).is_some_and(|latest| record.offset < latest) {
            return false;
        }
        !record.is_tombstone() || horizon.is_none_or(|h| h > self.now_ms)
    }

    /// Applies the rules to one batch; also returns the delete horizon of what is kept
    /// if it still holds tombstones.
    fn batch(&self, bytes: &[u8], stats: &mut CleanStats) -> Result<(Filtered, Option<i64>), LogError> {
        let view = RecordBatchHeader::parse(bytes)?;
        if view.is_control() {
            return Ok((Filtered::Keep, None));
        }
        if is_aborted(self.aborted, &view) {
            stats.records_read += view.records_count().max(0) as u64;
            return Ok((Filtered::Drop, None));
        }
        let records = match decode_batch(&view) {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(base_offset = view.base_offset(), %error, "cleaner keeps a batch it cannot decode");
                return Ok((Filtered::Keep, None));
            }
        };
        stats.records_read += records.len() as u64;
        let horizon = delete_horizon(&view);
        let kept: Vec<&DecodedRecord> = records.iter().filter(|r| self.retain(r, horizon)).collect();
        stats.records_retained += kept.len() as u64;
        // A horizon is only kept while the batch holds tombstones, so a horizon found on
        // disk always means a tombstone to expire.
        let new_horizon = kept
            .iter()
            .any(|r| r.is_tombstone())
            .then(|| horizon.unwrap_or_else(|| self.now_ms.saturating_add(self.delete_retention_ms)));
        if kept.len() == records.len() && new_horizon == horizon {
            return Ok((Filtered::Keep, new_horizon));
        }
        if !kept.is_empty() {
            return Ok((Filtered::Rewrite(rebuild_batch(&view, &kept, new_horizon)?), new_horizon));
        }
        let producers_last =
            view.producer_id() >= 0 && self.producer_last_offsets.get(&view.producer_id()) == Some(&view.last_offset());
        if producers_last {
            return Ok((Filtered::Rewrite(rebuild_batch(&view, &[], None)?), None));
        }
        Ok((Filtered::Drop, None))
    }
}

impl CleanPlan {
    /// Step 2: builds the offset map and writes the `.cleaned` segments. Holds no lock;
    /// on failure, the `.cleaned` files written so far are removed.
    pub(crate) fn execute(self) -> Result<CleanOutcome, LogError> {
        if !self.triggered {
            let earliest = earliest_delete_horizon(&self.segments[..self.first_dirty])?;
            if earliest > self.now_ms {
                return Ok(CleanOutcome::Skipped { earliest_delete_horizon_ms: earliest });
            }
        }
        let (map, mapped) = self.build_offset_map()?;
        let to_clean = &self.segments[..mapped];
        let bases: Vec<i64> = to_clean.iter().map(|s| s.base_offset).collect();
        let end_offset = self.segments.get(mapped).map_or(self.end_offset, |s| s.base_offset);
        let mut stats = CleanStats {
            first_dirty_offset: self.first_dirty_offset,
            end_offset,
            segments_cleaned: to_clean.len(),
            keys_mapped: map.len(),
            ..CleanStats::default()
        };
        let filter = Filter {
            map: &map,
            aborted: &self.aborted,
            now_ms: self.now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            producer_last_offsets: &self.producer_last_offsets,
        };
        let mut earliest = i64::MAX;
        for segment in to_clean {
            match self.clean_segment(segment, &filter, &mut stats) {
                Ok(horizon) => earliest = earliest.min(horizon),
                Err(error) => {
                    remove_transient(&self.dir, &bases)?;
                    return Err(error);
                }
            }
        }
        Ok(CleanOutcome::Cleaned(CleanedSegments {
            generation: self.generation,
            segments: to_clean.to_vec(),
            earliest_delete_horizon_ms: earliest,
            stats,
        }))
    }

    /// Maps every key of the dirty segments to its last offset, whole segments at a
    /// time, stopping once the map is over its budget (the first segment always goes
    /// in). Returns the map and the index after the last segment mapped.
    fn build_offset_map(&self) -> Result<(OffsetMap, usize), LogError> {
        let mut map = OffsetMap::default();
        let mut mapped = self.first_dirty;
        for segment in &self.segments[self.first_dirty..] {
            if mapped > self.first_dirty && map.bytes_used() >= self.dedupe_buffer_bytes {
                break;
            }
            segment.for_each_batch(|bytes| {
                let view = RecordBatchHeader::parse(bytes)?;
                if view.is_control() || is_aborted(&self.aborted, &view) {
                    return Ok(());
                }
                match decode_batch(&view) {
                    Ok(records) => {
                        for record in records {
                            if let Some(key) = &record.key {
                                // Copied: a slice would pin the whole decompressed batch.
                                map.put(bytes::Bytes::copy_from_slice(key), record.offset);
                            }
                        }
                    }
                    Err(error) => tracing::warn!(base_offset = view.base_offset(), %error, "cleaner skips a batch it cannot decode"),
                }
                Ok(())
            })?;
            mapped += 1;
        }
        Ok((map, mapped))
    }

    /// Rewrites one segment into fsynced `.cleaned` files with rebuilt indexes. Returns
    /// the earliest delete horizon among the batches kept (`i64::MAX` if none).
    fn clean_segment(
        &self,
        segment: &SegmentSnapshot,
        filter: &Filter<'_>,
        stats: &mut CleanStats,
    ) -> Result<i64, LogError> {
        let mut out =
            LogSegment::create_with_suffix(&self.dir, segment.base_offset, &self.config, self.now_ms, CLEANED_SUFFIX)?;
        let mut pending = Vec::new();
        let mut metas = Vec::new();
        let mut earliest = i64::MAX;
        segment.for_each_batch(|bytes| {
            stats.bytes_read += bytes.len() as u64;
            let (filtered, horizon) = filter.batch(bytes, stats)?;
            let kept: &[u8] = match &filtered {
                Filtered::Keep => bytes,
                Filtered::Rewrite(rebuilt) => rebuilt,
                Filtered::Drop => return Ok(()),
            };
            earliest = earliest.min(horizon.unwrap_or(i64::MAX));
            metas.push(BatchMeta::from_view(&RecordBatchHeader::parse(kept)?, kept.len()));
            pending.extend_from_slice(kept);
            if pending.len() >= WRITE_CHUNK_BYTES {
                write_chunk(&mut out, &mut pending, &mut metas, self.now_ms, stats)?;
            }
            Ok(())
        })?;
        write_chunk(&mut out, &mut pending, &mut metas, self.now_ms, stats)?;
        out.flush()?;
        Ok(earliest)
    }
}

/// Whether the batch belongs to an aborted transaction.
fn is_aborted(aborted: &[AbortedTxn], view: &RecordBatchHeader<'_>) -> bool {
    view.is_transactional()
        && aborted.iter().any(|a| {
            a.producer_id == view.producer_id() && (a.first_offset..=a.last_offset).contains(&view.base_offset())
        })
}

fn write_chunk(
    out: &mut LogSegment,
    pending: &mut Vec<u8>,
    metas: &mut Vec<BatchMeta>,
    now_ms: i64,
    stats: &mut CleanStats,
) -> Result<(), LogError> {
    if !pending.is_empty() {
        out.append(pending, metas, now_ms)?;
        stats.bytes_written += pending.len() as u64;
        pending.clear();
        metas.clear();
    }
    Ok(())
}

/// The earliest delete horizon in `segments`, from batch headers alone (`i64::MAX` when
/// none has one). Used once after a restart, when the in-memory value is unknown.
fn earliest_delete_horizon(segments: &[SegmentSnapshot]) -> Result<i64, LogError> {
    let mut earliest = i64::MAX;
    let mut header = [0u8; BATCH_HEADER_LEN];
    for segment in segments {
        let mut position = 0;
        while position + BATCH_HEADER_LEN as u64 <= segment.size {
            segment.file.read_exact_at(&mut header, position).ctx("read segment", &segment.path)?;
            let Some(meta) = BatchMeta::from_header(&header) else {
                break;
            };
            if let Some(horizon) = horizon_of_header(&header) {
                earliest = earliest.min(horizon);
            }
            position += meta.size;
        }
    }
    Ok(earliest)
}

/// The delete horizon of a batch from its 61 header bytes alone.
fn horizon_of_header(header: &[u8; BATCH_HEADER_LEN]) -> Option<i64> {
    let attributes = i16::from_be_bytes([header[21], header[22]]);
    let mut base_timestamp = [0u8; 8];
    base_timestamp.copy_from_slice(&header[27..35]);
    (attributes & 0x40 != 0 && attributes & 0x20 == 0).then(|| i64::from_be_bytes(base_timestamp))
}

/// Removes the `.cleaned` files of a clean that will not be swapped in.
pub(crate) fn abandon(dir: &Path, segments: &[SegmentSnapshot]) -> Result<(), LogError> {
    let bases: Vec<i64> = segments.iter().map(|s| s.base_offset).collect();
    remove_transient(dir, &bases)
}
