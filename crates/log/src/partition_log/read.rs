//! Fetch planning and timestamp lookups.

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::record_batch::RecordBatchHeader;

use super::PartitionLog;
use crate::batch::read_batch;
use crate::error::{IoContext, LogError};
use crate::record_stream::for_each_record;
use crate::segment::{Located, LogSegment};

/// Where the bytes of a fetch are: a range of whole batches in one segment file. Built
/// cheaply under the partition lock; `read_bytes` does the I/O after the lock is released.
/// The file handle keeps the data readable even if the segment is deleted meanwhile.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    file: Option<Arc<File>>,
    /// Byte position of the first batch in the segment file.
    pub position: u64,
    /// Bytes to read; 0 when there is nothing to return.
    pub length: usize,
    /// Base offset of the first batch returned (at or below the fetch offset), or the
    /// fetch offset when the plan is empty.
    pub first_offset: i64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

impl ReadPlan {
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Reads the planned bytes with `pread`. If the log was truncated meanwhile the result
    /// may be shorter, possibly ending in a partial batch, which Kafka clients skip.
    pub fn read_bytes(&self) -> io::Result<Bytes> {
        let Some(file) = self.file.as_ref().filter(|_| self.length > 0) else {
            return Ok(Bytes::new());
        };
        let mut buf = vec![0u8; self.length];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], self.position + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(Bytes::from(buf))
    }
}

/// A record's timestamp and offset, as ListOffsets returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp_ms: i64,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

/// Decodes the batch at `located` to find the first record whose timestamp satisfies
/// `wanted`. `LogAppendTime` batches give every record the batch's max timestamp, so
/// their first record answers without decoding. A batch that cannot be decoded answers
/// with `fallback`.
fn find_record(
    segment: &LogSegment,
    located: &Located,
    wanted: impl Fn(i64) -> bool,
    fallback: (i64, i64),
) -> Result<(i64, i64), LogError> {
    let meta = &located.meta;
    if meta.is_log_append_time {
        return Ok((meta.max_timestamp, meta.base_offset));
    }
    let bytes = read_batch(segment.file(), located.position, meta).ctx("read batch", segment.path())?;
    let mut found = None;
    let streamed = RecordBatchHeader::parse(&bytes).map_err(|_| ()).and_then(|view| {
        for_each_record(&view, |record| {
            if !wanted(record.timestamp) {
                return ControlFlow::Continue(());
            }
            found = Some((record.timestamp, record.offset));
            ControlFlow::Break(())
        })
        .map_err(|_| ())
    });
    if streamed.is_err() {
        tracing::warn!(base_offset = meta.base_offset, "cannot decode batch for a timestamp lookup");
        return Ok(fallback);
    }
    Ok(found.unwrap_or(fallback))
}

impl PartitionLog {
    /// Plans a fetch from `fetch_offset`: whole batches from the one holding it, within
    /// one segment, up to `max_bytes` but always at least one batch, none starting at or
    /// after `max_offset_exclusive` (the high watermark for consumers).
    pub fn read(&self, fetch_offset: i64, max_bytes: usize, max_offset_exclusive: i64) -> Result<ReadPlan, LogError> {
        if fetch_offset < self.log_start_offset || fetch_offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        let mut plan = ReadPlan {
            file: None,
            position: 0,
            length: 0,
            first_offset: fetch_offset,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        };
        if fetch_offset == self.log_end_offset {
            return Ok(plan);
        }
        for segment in self.segments_from(fetch_offset) {
            if let Some(slice) = segment.slice(fetch_offset, max_bytes, max_offset_exclusive)? {
                if slice.length > 0 {
                    plan.first_offset = slice.first.base_offset;
                    plan.position = slice.position;
                    plan.length = slice.length as usize;
                    plan.file = Some(slice.file);
                }
                break;
            }
        }
        Ok(plan)
    }

    /// The segment that may hold `offset`, then all later ones.
    pub(super) fn segments_from(&self, offset: i64) -> impl Iterator<Item = &LogSegment> {
        let first = self.segments.range(..=offset).next_back().map_or(i64::MIN, |(base, _)| *base);
        self.segments.range(first..).map(|(_, s)| s)
    }

    /// ListOffsets by timestamp: the first record with a timestamp at or after
    /// `timestamp_ms`, or `None` when every record is older.
    pub fn fetch_offset_by_timestamp(&self, timestamp_ms: i64) -> Result<Option<TimestampAndOffset>, LogError> {
        for segment in self.segments.values().filter(|s| s.max_timestamp() >= timestamp_ms) {
            let Some(located) = segment.find_batch_by_timestamp(timestamp_ms)? else {
                continue;
            };
            let fallback = (located.meta.max_timestamp, located.meta.base_offset);
            let (timestamp, offset) = find_record(segment, &located, |t| t >= timestamp_ms, fallback)?;
            let offset = offset.max(self.log_start_offset);
            return Ok(Some(self.with_epoch(timestamp, offset)));
        }
        Ok(None)
    }

    /// ListOffsets `MAX_TIMESTAMP`: the (first) record with the largest timestamp.
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampAndOffset>, LogError> {
        let Some(segment) = self.segments.values().filter(|s| s.max_timestamp() >= 0).reduce(|best, s| {
            if s.max_timestamp() > best.max_timestamp() {
                s
            } else {
                best
            }
        }) else {
            return Ok(None);
        };
        let max = segment.max_timestamp();
        let Some(located) = segment.translate_offset(segment.offset_of_max_timestamp())? else {
            return Ok(None);
        };
        let (timestamp, offset) = find_record(segment, &located, |t| t == max, (max, located.meta.last_offset))?;
        Ok(Some(self.with_epoch(timestamp, offset)))
    }

    fn with_epoch(&self, timestamp_ms: i64, offset: i64) -> TimestampAndOffset {
        TimestampAndOffset { timestamp_ms, offset, leader_epoch: self.epoch_cache.epoch_for_offset(offset) }
    }
}
