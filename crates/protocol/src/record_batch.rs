//! A zero-copy view of the RecordBatch v2 header (Kafka's `DefaultRecordBatch`).
//!
//! The broker never re-encodes what a producer sent: it checks the header and the CRC,
//! writes the base offset (and, for `LogAppendTime` topics, the max timestamp) in place,
//! and stores the bytes as they are. Everything here works on `&[u8]` / `&mut [u8]`.
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset
//!      8     4  batch_length          (bytes after this field)
//!     12     4  partition_leader_epoch
//!     16     1  magic                 (2)
//!     17     4  crc                   (CRC-32C of bytes 21..end)
//!     21     2  attributes
//!     23     4  last_offset_delta
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id
//!     51     2  producer_epoch
//!     53     4  base_sequence
//!     57     4  records_count
//!     61        records...
//! ```

use crate::ProtocolError;

/// Size of the v2 batch header; the smallest possible batch.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before `batch_length` ends: the offset and length fields themselves.
pub const LOG_OVERHEAD: usize = 12;
/// The only record format Gregor stores.
pub const MAGIC_V2: i8 = 2;
/// `producer_id` of batches from producers that are not idempotent.
pub const NO_PRODUCER_ID: i64 = -1;
/// `base_sequence` of batches from producers that are not idempotent.
pub const NO_SEQUENCE: i32 = -1;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Compression codec of a batch (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    fn from_bits(bits: i16) -> Option<Self> {
        Some(match bits {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            _ => return None,
        })
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads the total size (header included) of the batch starting at `bytes`, from its
/// first 12 bytes. `None` if fewer than 12 bytes are there or the length is negative.
pub fn batch_size(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < LOG_OVERHEAD {
        return None;
    }
    let len = i32_at(bytes, BATCH_LENGTH);
    usize::try_from(len).ok().map(|l| l + LOG_OVERHEAD)
}

/// A read-only view of one whole batch (header and records).
#[derive(Debug, Clone, Copy)]
pub struct RecordBatchHeader<'a> {
    bytes: &'a [u8],
}

impl<'a> RecordBatchHeader<'a> {
    /// Views the batch at the start of `bytes`, which must hold the whole batch
    /// (exactly, or followed by more data). Checks only the sizes and the magic byte.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ProtocolError> {
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(ProtocolError::CorruptBatch("batch shorter than its 61-byte header"));
        }
        let size = batch_size(bytes).ok_or(ProtocolError::CorruptBatch("negative batch length"))?;
        if size < BATCH_HEADER_LEN {
            return Err(ProtocolError::CorruptBatch("batch length below the header size"));
        }
        if size > bytes.len() {
            return Err(ProtocolError::CorruptBatch("batch length exceeds the bytes sent"));
        }
        let magic = bytes[MAGIC] as i8;
        if magic != MAGIC_V2 {
            return Err(ProtocolError::UnsupportedMagic(magic));
        }
        Ok(Self { bytes: &bytes[..size] })
    }

    /// The whole batch, header included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Total size in bytes, header included.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
    pub fn base_offset(&self) -> i64 {
        i64_at(self.bytes, BASE_OFFSET)
    }
    pub fn last_offset_delta(&self) -> i32 {
        i32_at(self.bytes, LAST_OFFSET_DELTA)
    }
    /// Wraps like Kafka's `baseOffset + lastOffsetDelta`: the base offset of a batch a
    /// client sent is not yet the broker's (it may be anything), and a wrapped result
    /// below the base offset marks the batch as unusable instead of panicking.
    pub fn last_offset(&self) -> i64 {
        self.base_offset().wrapping_add(i64::from(self.last_offset_delta()))
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        i32_at(self.bytes, PARTITION_LEADER_EPOCH)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC] as i8
    }
    pub fn crc(&self) -> u32 {
        u32_at(self.bytes, CRC)
    }
    pub fn attributes(&self) -> i16 {
        i16_at(self.bytes, ATTRIBUTES)
    }
    /// `None` for the reserved codec ids 5-7.
    pub fn compression(&self) -> Option<CompressionType> {
        CompressionType::from_bits(self.attributes() & COMPRESSION_MASK)
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & TIMESTAMP_TYPE_BIT != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    pub fn base_timestamp(&self) -> i64 {
        i64_at(self.bytes, BASE_TIMESTAMP)
    }
    pub fn max_timestamp(&self) -> i64 {
        i64_at(self.bytes, MAX_TIMESTAMP)
    }
    pub fn producer_id(&self) -> i64 {
        i64_at(self.bytes, PRODUCER_ID)
    }
    pub fn producer_epoch(&self) -> i16 {
        i16_at(self.bytes, PRODUCER_EPOCH)
    }
    pub fn base_sequence(&self) -> i32 {
        i32_at(self.bytes, BASE_SEQUENCE)
    }
    /// Sequence of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        let seq = self.base_sequence();
        if seq == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        let last = i64::from(seq) + i64::from(self.last_offset_delta());
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
    pub fn records_count(&self) -> i32 {
        i32_at(self.bytes, RECORDS_COUNT)
    }
    /// The record bytes after the header (compressed when `compression()` is not `None`).
    pub fn records(&self) -> &'a [u8] {
        &self.bytes[BATCH_HEADER_LEN..]
    }
    /// CRC-32C of everything from `attributes` to the end, as stored in `crc`.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[ATTRIBUTES..])
    }
    pub fn is_crc_valid(&self) -> bool {
        self.compute_crc() == self.crc()
    }

    /// Full check of a batch as a producer sent it: CRC, codec and counts.
    pub fn validate_from_producer(&self) -> Result<(), ProtocolError> {
        if !self.is_crc_valid() {
            return Err(ProtocolError::CorruptBatch("CRC-32C mismatch"));
        }
        if self.compression().is_none() {
            return Err(ProtocolError::CorruptBatch("unknown compression codec"));
        }
        let count = self.records_count();
        if count <= 0 {
            return Err(ProtocolError::InvalidRecord("batch holds no records"));
        }
        if self.last_offset_delta() != count - 1 {
            return Err(ProtocolError::InvalidRecord("last offset delta does not match the record count"));
        }
        Ok(())
    }
}

/// Writes the base offset of the batch at the start of `batch` (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch (not covered by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as `LogAppendTime` with `timestamp_ms` as its max timestamp and
/// recomputes the CRC, as Kafka's `DefaultRecordBatch.setMaxTimestamp` does.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    let attributes = i16_at(batch, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES..]);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Iterates over the whole batches in a buffer, in order. Stops at the first batch
/// that does not parse or is cut short; `remainder()` then tells how many bytes were left.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> BatchIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }
    /// Byte position of the next batch.
    pub fn position(&self) -> usize {
        self.position
    }
    /// Bytes not consumed as whole batches.
    pub fn remainder(&self) -> &'a [u8] {
        &self.bytes[self.position..]
    }
}

impl<'a> Iterator for BatchIter<'a> {
    /// The byte position of the batch in the buffer, and its view.
    type Item = (usize, RecordBatchHeader<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.bytes[self.position..];
        let batch = RecordBatchHeader::parse(rest).ok()?;
        let at = self.position;
        self.position += batch.size();
        Some((at, batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built uncompressed batch with `count` empty records.
    pub(crate) fn sample_batch(count: i32) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..count {
            // length, attributes, timestamp delta, offset delta, key len -1, value len -1, headers 0
            let body = [0u8, 0, (i as u8) << 1, 1, 1, 0];
            records.push(body.len() as u8 * 2);
            records.extend_from_slice(&body);
        }
        let mut b = vec![0u8; BATCH_HEADER_LEN];
        b.extend_from_slice(&records);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
        b[MAGIC] = 2;
        b[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&(count - 1).to_be_bytes());
        b[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&(-1i64).to_be_bytes());
        b[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&(-1i32).to_be_bytes());
        b[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES..]);
        b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn given_valid_batch_when_parsed_should_expose_fields() {
        let b = sample_batch(3);
        let h = RecordBatchHeader::parse(&b).unwrap();
        assert_eq!(h.records_count(), 3);
        assert_eq!(h.last_offset_delta(), 2);
        assert!(h.is_crc_valid());
        h.validate_from_producer().unwrap();
    }

    #[test]
    fn given_flipped_byte_when_validated_should_report_crc() {
        let mut b = sample_batch(2);
        let last = b.len() - 1;
        b[last] ^= 1;
        let h = RecordBatchHeader::parse(&b).unwrap();
        assert!(matches!(h.validate_from_producer(), Err(ProtocolError::CorruptBatch(_))));
    }

    #[test]
    fn given_base_offset_write_should_keep_crc_valid() {
        let mut b = sample_batch(1);
        set_base_offset(&mut b, 42);
        set_partition_leader_epoch(&mut b, 7);
        let h = RecordBatchHeader::parse(&b).unwrap();
        assert_eq!(h.base_offset(), 42);
        assert_eq!(h.partition_leader_epoch(), 7);
        assert!(h.is_crc_valid());
    }

    #[test]
    fn given_log_append_time_should_rewrite_crc() {
        let mut b = sample_batch(1);
        set_log_append_time(&mut b, 1234);
        let h = RecordBatchHeader::parse(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp(), 1234);
        assert!(h.is_crc_valid());
    }

    #[test]
    fn given_truncated_buffer_iter_should_stop_with_remainder() {
        let mut buf = sample_batch(1);
        let one = buf.len();
        buf.extend_from_slice(&sample_batch(2)[..20]);
        let mut it = BatchIter::new(&buf);
        assert_eq!(it.next().map(|(p, _)| p), Some(0));
        assert!(it.next().is_none());
        assert_eq!(it.position(), one);
        assert_eq!(it.remainder().len(), 20);
    }

    #[test]
    fn given_garbage_when_parsed_should_error_not_panic() {
        for len in 0..80 {
            let junk = vec![0xffu8; len];
            let _ = RecordBatchHeader::parse(&junk);
            let _ = batch_size(&junk);
        }
    }
}
