//! The records inside a stored batch, decoded and re-encoded by the cleaner itself.
//!
//! kafka-protocol's decoder reserves memory from the declared record count before
//! reading any record, and its encoder derives the base offset from the first record it
//! is given. The cleaner needs the opposite on both counts: a count that cannot be
//! trusted (it comes from disk) and a base offset, last offset delta and base sequence
//! kept from the original batch, as Kafka's `MemoryRecords.buildRetainedRecordsInto`
//! keeps them. So records are parsed and written here; only the (de)compression codecs
//! come from kafka-protocol.

use std::ops::ControlFlow;

use bytes::{Buf, Bytes, BytesMut};
use gregor_protocol::kafka_protocol::compression::{self as codecs, Compressor, Decompressor};
use gregor_protocol::record_batch::{CompressionType, RecordBatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};

use crate::error::LogError;

/// Attribute bits (Kafka's `DefaultRecordBatch`).
const COMPRESSION_MASK: i16 = 0x07;
const DELETE_HORIZON_BIT: i16 = 0x40;
/// The smallest record body: attributes, timestamp delta, offset delta, key and value
/// lengths and the header count, one byte each, after a one-byte length.
const MIN_RECORD_BYTES: usize = 7;
/// Header field positions this module rewrites.
const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORDS_COUNT_AT: usize = 57;

fn corrupt(reason: &'static str) -> LogError {
    LogError::CorruptRecord { reason }
}

/// One record of a decoded batch. Key, value and the raw header section share the
/// decompressed buffer.
#[derive(Debug, Clone)]
pub(crate) struct DecodedRecord {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    attributes: u8,
    offset_delta: i32,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    /// The header count and headers exactly as stored, copied verbatim on rewrite.
    headers: Bytes,
}

impl DecodedRecord {
    pub(crate) fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// Whether a batch carries a delete horizon (KIP-534) and, if so, which: it is stored
/// in the base timestamp field.
pub(crate) fn delete_horizon(view: &RecordBatchHeader<'_>) -> Option<i64> {
    (view.attributes() & DELETE_HORIZON_BIT != 0).then(|| view.base_timestamp())
}

/// Decodes every record of one whole batch (any codec). Fails on a bad CRC, an unknown
/// codec, or records that do not exactly fill the (decompressed) record section.
pub(crate) fn decode_batch(view: &RecordBatchHeader<'_>) -> Result<Vec<DecodedRecord>, LogError> {
    if !view.is_crc_valid() {
        return Err(corrupt("CRC-32C mismatch"));
    }
    let codec = view.compression().ok_or(corrupt("unknown compression codec"))?;
    let raw = decompress(view.records(), codec)?;
    let count = usize::try_from(view.records_count()).map_err(|_| corrupt("negative record count"))?;
    // The count is untrusted: never reserve more than the bytes could hold.
    let mut records = Vec::with_capacity(count.min(raw.len() / MIN_RECORD_BYTES));
    let mut reader = Reader { buf: &raw, pos: 0 };
    for _ in 0..count {
        records.push(reader.record(&raw, view.base_offset(), view.base_timestamp())?);
    }
    if reader.pos != raw.len() {
        return Err(corrupt("bytes left after the last record"));
    }
    Ok(records)
}

/// Kafka refuses keyless records in compacted topics ("Compacted topic cannot accept
/// message without key"); control batches carry no user records and are exempt. The
/// records are streamed, so a produced batch is never held decompressed.
pub(crate) fn ensure_keyed(batch: &[u8]) -> Result<(), LogError> {
    let view = RecordBatchHeader::parse(batch)?;
    if view.is_control() {
        return Ok(());
    }
    let (mut index, mut keyless) = (0i32, Vec::new());
    crate::record_stream::for_each_record(&view, |record| {
        if !record.has_key {
            keyless.push(index);
        }
        index = index.saturating_add(1);
        ControlFlow::Continue(())
    })?;
    if keyless.is_empty() {
        return Ok(());
    }
    Err(LogError::RecordsRejected {
        reason: "Compacted topic cannot accept message without key",
        batch_indexes: keyless,
    })
}

fn decompress(records: &[u8], codec: CompressionType) -> Result<Bytes, LogError> {
    fn run<D: Decompressor<Bytes>>(mut input: Bytes) -> Result<Bytes, LogError> {
        D::decompress(&mut input, |buf| Ok(buf.copy_to_bytes(buf.remaining())))
            .map_err(|_| corrupt("cannot decompress the records"))
    }
    let input = Bytes::copy_from_slice(records);
    match codec {
        CompressionType::None => Ok(input),
        CompressionType::Gzip => run::<codecs::Gzip>(input),
        CompressionType::Snappy => run::<codecs::Snappy>(input),
        CompressionType::Lz4 => run::<codecs::Lz4>(input),
        CompressionType::Zstd => run::<codecs::Zstd>(input),
    }
}

fn compress(raw: &[u8], codec: CompressionType) -> Result<Vec<u8>, LogError> {
    fn run<C: Compressor<BytesMut>>(raw: &[u8]) -> Result<Vec<u8>, LogError>
    where
        C::BufMut: bytes::BufMut,
    {
        let mut out = BytesMut::new();
        C::compress(&mut out, |buf| {
            bytes::BufMut::put_slice(buf, raw);
            Ok(())
        })
        .map_err(|_| corrupt("cannot compress the retained records"))?;
        Ok(out.to_vec())
    }
    match codec {
        CompressionType::None => Ok(raw.to_vec()),
        CompressionType::Gzip => run::<codecs::Gzip>(raw),
        CompressionType::Snappy => run::<codecs::Snappy>(raw),
        CompressionType::Lz4 => run::<codecs::Lz4>(raw),
        CompressionType::Zstd => run::<codecs::Zstd>(raw),
    }
}

/// Bounds-checked reader over the decompressed record section.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varlong(&mut self) -> Result<i64, LogError> {
        crate::record_stream::read_varlong(|| {
            let byte = *self.buf.get(self.pos).ok_or(corrupt("record cut short"))?;
            self.pos += 1;
            Ok(byte)
        })
    }

    fn varint(&mut self) -> Result<i32, LogError> {
        i32::try_from(self.varlong()?).map_err(|_| corrupt("varint out of range"))
    }

    /// A length-prefixed byte string, `None` for length -1.
    fn bytes(&mut self, whole: &Bytes, end: usize) -> Result<Option<Bytes>, LogError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| corrupt("negative length"))?;
        let stop = self.pos.checked_add(len).filter(|s| *s <= end).ok_or(corrupt("field past the record end"))?;
        let out = whole.slice(self.pos..stop);
        self.pos = stop;
        Ok(Some(out))
    }

    fn record(&mut self, whole: &Bytes, base_offset: i64, base_timestamp: i64) -> Result<DecodedRecord, LogError> {
        let len = usize::try_from(self.varint()?).map_err(|_| corrupt("negative record length"))?;
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len()).ok_or(corrupt("record past the end"))?;
        let attributes = *self.buf.get(self.pos).ok_or(corrupt("record cut short"))?;
        self.pos += 1;
        let timestamp_delta = self.varlong()?;
        let offset_delta = self.varint()?;
        let key = self.bytes(whole, end)?;
        let value = self.bytes(whole, end)?;
        if self.pos > end {
            return Err(corrupt("record fields past its length"));
        }
        let headers = whole.slice(self.pos..end);
        self.pos = end;
        Ok(DecodedRecord {
            offset: base_offset.saturating_add(i64::from(offset_delta)),
            timestamp: base_timestamp.saturating_add(timestamp_delta),
            attributes,
            offset_delta,
            key,
            value,
            headers,
        })
    }
}

pub(crate) fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&Bytes>) {
    match bytes {
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varlong(out, -1),
    }
}

fn encode_record(out: &mut Vec<u8>, record: &DecodedRecord, base_timestamp: i64) {
    let mut body = Vec::with_capacity(16 + record.headers.len());
    body.push(record.attributes);
    put_varlong(&mut body, record.timestamp.saturating_sub(base_timestamp));
    put_varlong(&mut body, i64::from(record.offset_delta));
    put_bytes(&mut body, record.key.as_ref());
    put_bytes(&mut body, record.value.as_ref());
    body.extend_from_slice(&record.headers);
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// Rebuilds `view` with only `kept` (a subsequence of its records), the way Kafka's
/// cleaner does: same base offset, last offset delta, producer id, epoch, base sequence,
/// leader epoch, timestamp type and codec; the record count and max timestamp follow the
/// records kept. With `horizon`, the delete-horizon bit is set and the base timestamp
/// holds it (record timestamp deltas are rewritten against it). An empty `kept` gives
/// Kafka's empty batch: a bare header, kept to preserve a producer's last sequence.
pub(crate) fn rebuild_batch(
    view: &RecordBatchHeader<'_>,
    kept: &[&DecodedRecord],
    horizon: Option<i64>,
) -> Result<Vec<u8>, LogError> {
    let codec = view.compression().ok_or(corrupt("unknown compression codec"))?;
    let max_timestamp = if view.is_log_append_time() || kept.is_empty() {
        view.max_timestamp()
    } else {
        kept.iter().map(|r| r.timestamp).max().unwrap_or(-1)
    };
    let base_timestamp = match (horizon, kept.first()) {
        (Some(h), _) => h,
        (None, Some(_)) => view.base_timestamp(),
        (None, None) => max_timestamp,
    };
    let mut raw = Vec::new();
    for record in kept {
        encode_record(&mut raw, record, base_timestamp);
    }
    let mut attributes = view.attributes() & !DELETE_HORIZON_BIT;
    let records = if kept.is_empty() {
        attributes &= !COMPRESSION_MASK;
        Vec::new()
    } else {
        compress(&raw, codec)?
    };
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records.len());
    out.extend_from_slice(&view.bytes()[..BATCH_HEADER_LEN]);
    out.extend_from_slice(&records);
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| corrupt("rebuilt batch too large"))?;
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    out[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    out[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn record(offset: i64, key: Option<&str>, value: Option<&str>) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 3,
            producer_id: 9,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp: 1_000 + offset,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        }
    }

    fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression }).unwrap();
        buf.to_vec()
    }

    #[test]
    fn given_compressed_batch_when_rebuilt_with_a_subset_should_keep_offsets_and_header() {
        for compression in [Compression::None, Compression::Gzip, Compression::Lz4, Compression::Snappy] {
            let records =
                vec![record(0, Some("a"), Some("1")), record(1, Some("b"), None), record(2, Some("a"), Some("3"))];
            let bytes = encode(&records, compression);
            let view = RecordBatchHeader::parse(&bytes).unwrap();
            let decoded = decode_batch(&view).unwrap();
            assert_eq!(decoded.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![0, 1, 2]);
            let kept = [&decoded[1]];
            let rebuilt = rebuild_batch(&view, &kept, Some(50_000)).unwrap();
            let new_view = RecordBatchHeader::parse(&rebuilt).unwrap();
            assert!(new_view.is_crc_valid());
            assert_eq!((new_view.base_offset(), new_view.last_offset(), new_view.records_count()), (0, 2, 1));
            assert_eq!((new_view.producer_id(), new_view.base_sequence()), (9, 0));
            assert_eq!(delete_horizon(&new_view), Some(50_000));
            let mut buf = Bytes::from(rebuilt.clone());
            let set = RecordBatchDecoder::decode(&mut buf).unwrap();
            assert_eq!(set.records.len(), 1);
            assert_eq!((set.records[0].offset, set.records[0].timestamp), (1, 1_001));
            assert!(set.records[0].value.is_none());
        }
    }

    #[test]
    fn given_no_records_kept_when_rebuilt_should_give_an_empty_batch_with_the_same_offsets() {
        let bytes = encode(&[record(0, Some("a"), Some("1")), record(1, Some("b"), Some("2"))], Compression::Gzip);
        let view = RecordBatchHeader::parse(&bytes).unwrap();
        let empty = rebuild_batch(&view, &[], None).unwrap();
        let v = RecordBatchHeader::parse(&empty).unwrap();
        assert_eq!((v.size(), v.records_count(), v.last_offset(), v.max_timestamp()), (61, 0, 1, 1_001));
        assert!(v.is_crc_valid());
        assert!(decode_batch(&v).unwrap().is_empty());
    }

    #[test]
    fn given_keyless_record_when_checked_should_be_invalid() {
        let bytes = encode(&[record(0, Some("a"), Some("1")), record(1, None, Some("2"))], Compression::None);
        assert!(matches!(ensure_keyed(&bytes), Err(LogError::RecordsRejected { .. })));
        let bytes = encode(&[record(0, Some("a"), None)], Compression::Lz4);
        ensure_keyed(&bytes).unwrap();
    }

    #[test]
    fn given_garbage_records_when_decoded_should_error_not_panic() {
        let bytes = encode(&[record(0, Some("key"), Some("value")), record(1, Some("k"), None)], Compression::None);
        for cut in BATCH_HEADER_LEN..bytes.len() {
            for flip in [0x80u8, 0xff, 0x01] {
                let mut broken = bytes.clone();
                broken[cut] ^= flip;
                let crc = crc32c::crc32c(&broken[ATTRIBUTES_AT..]);
                broken[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
                let _ = decode_batch(&RecordBatchHeader::parse(&broken).unwrap());
            }
        }
        let mut huge = bytes.clone();
        huge[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&huge[ATTRIBUTES_AT..]);
        huge[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_batch(&RecordBatchHeader::parse(&huge).unwrap()).is_err());
    }
}
