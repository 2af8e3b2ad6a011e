//! Record-by-record reading of one batch, decompressing as it goes (Kafka's
//! `DefaultRecordBatch.streamingIterator`).
//!
//! The key check of Produce to a compacted topic and ListOffsets by timestamp need each
//! record's offset, timestamp and whether it has a key, nothing more. Decoding the whole
//! batch would hold all of its decompressed bytes (up to the 128 MiB cap per batch,
//! per request); streaming holds the codec's buffers only. The cap still bounds the
//! work: a batch that decompresses past it is refused, as everywhere else.

use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;

use gregor_protocol::kafka_protocol::compression::MAX_DECOMPRESSED_BYTES;
use gregor_protocol::record_batch::{CompressionType, RecordBatchHeader};

use crate::error::LogError;

/// What the callers need of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordInfo {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) has_key: bool,
}

fn corrupt(reason: &'static str) -> LogError {
    LogError::CorruptRecord { reason }
}

/// Calls `f` with each record of the batch, in order, until it breaks. Fails on a bad
/// CRC, an unknown codec, a section that does not decompress or decompresses past the
/// cap, records that do not parse, and (when `f` read them all) a record count or
/// section length other than the header's.
pub(crate) fn for_each_record(
    view: &RecordBatchHeader<'_>,
    mut f: impl FnMut(RecordInfo) -> ControlFlow<()>,
) -> Result<(), LogError> {
    if !view.is_crc_valid() {
        return Err(corrupt("CRC-32C mismatch"));
    }
    let records = view.records();
    match view.compression().ok_or(corrupt("unknown compression codec"))? {
        CompressionType::None => walk(view, records, &mut f),
        CompressionType::Gzip => walk(view, BufReader::new(flate2::read::GzDecoder::new(records)), &mut f),
        CompressionType::Snappy => walk(view, BufReader::new(SnappyBlocks::new(records)), &mut f),
        CompressionType::Lz4 => {
            let decoder = lz4::Decoder::new(records).map_err(|_| corrupt("cannot decompress the records"))?;
            walk(view, BufReader::new(decoder), &mut f)
        }
        CompressionType::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(records)
                .map_err(|_| corrupt("cannot decompress the records"))?;
            walk(view, BufReader::new(decoder), &mut f)
        }
    }
}

fn walk(
    view: &RecordBatchHeader<'_>,
    input: impl BufRead,
    f: &mut impl FnMut(RecordInfo) -> ControlFlow<()>,
) -> Result<(), LogError> {
    let mut stream = Stream { input, read: 0 };
    let count = usize::try_from(view.records_count()).map_err(|_| corrupt("negative record count"))?;
    for _ in 0..count {
        let info = stream.record(view.base_offset(), view.base_timestamp())?;
        if f(info).is_break() {
            return Ok(());
        }
    }
    if !stream.at_end()? {
        return Err(corrupt("bytes left after the last record"));
    }
    Ok(())
}

/// A counting reader over the (decompressed) record section.
struct Stream<R> {
    input: R,
    read: u64,
}

impl<R: BufRead> Stream<R> {
    fn byte(&mut self) -> Result<u8, LogError> {
        let byte = *self.fill()?.first().ok_or(corrupt("record cut short"))?;
        self.consume(1)?;
        Ok(byte)
    }

    fn fill(&mut self) -> Result<&[u8], LogError> {
        self.input.fill_buf().map_err(io_error)
    }

    fn consume(&mut self, n: usize) -> Result<(), LogError> {
        self.input.consume(n);
        self.read = self.read.saturating_add(n as u64);
        if self.read > MAX_DECOMPRESSED_BYTES {
            return Err(corrupt("records decompress to more than 128 MiB"));
        }
        Ok(())
    }

    fn skip(&mut self, mut n: usize) -> Result<(), LogError> {
        while n > 0 {
            let available = self.fill()?.len().min(n);
            if available == 0 {
                return Err(corrupt("record cut short"));
            }
            self.consume(available)?;
            n -= available;
        }
        Ok(())
    }

    fn at_end(&mut self) -> Result<bool, LogError> {
        Ok(self.fill()?.is_empty())
    }

    fn varlong(&mut self) -> Result<i64, LogError> {
        read_varlong(|| self.byte())
    }

    fn varint(&mut self) -> Result<i32, LogError> {
        i32::try_from(self.varlong()?).map_err(|_| corrupt("varint out of range"))
    }

    /// A length (-1 for null) and, unless null, that many bytes skipped.
    fn skip_bytes(&mut self) -> Result<bool, LogError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(false);
        }
        self.skip(usize::try_from(len).map_err(|_| corrupt("negative length"))?)?;
        Ok(true)
    }

    /// One record: its fields must end exactly at its declared length.
    fn record(&mut self, base_offset: i64, base_timestamp: i64) -> Result<RecordInfo, LogError> {
        let len = u64::try_from(self.varint()?).map_err(|_| corrupt("negative record length"))?;
        let end = self.read.saturating_add(len);
        let _attributes = self.byte()?;
        let timestamp_delta = self.varlong()?;
        let offset_delta = self.varint()?;
        let has_key = self.skip_bytes()?;
        let _has_value = self.skip_bytes()?;
        let headers = self.varint()?;
        for _ in 0..headers.max(0) {
            if self.read >= end {
                return Err(corrupt("record fields past its length"));
            }
            let key_len = usize::try_from(self.varint()?).map_err(|_| corrupt("negative header key length"))?;
            self.skip(key_len)?;
            let _ = self.skip_bytes()?;
        }
        if headers < 0 || self.read != end {
            return Err(corrupt("record fields do not fill its length"));
        }
        // Offsets and timestamps wrap as in Kafka: the deltas come from the client.
        Ok(RecordInfo {
            offset: base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: base_timestamp.wrapping_add(timestamp_delta),
            has_key,
        })
    }
}

/// A zig-zag varlong of at most 10 bytes, taken one byte at a time from `next`.
pub(crate) fn read_varlong(mut next: impl FnMut() -> Result<u8, LogError>) -> Result<i64, LogError> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = next()?;
        value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(corrupt("varint longer than 10 bytes"))
}

fn io_error(e: io::Error) -> LogError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => corrupt("record cut short"),
        _ => corrupt("cannot decompress the records"),
    }
}

/// Kafka's snappy framing (xerial: a magic header, then length-prefixed blocks), or one
/// raw block, decompressed a block at a time.
struct SnappyBlocks<'a> {
    input: &'a [u8],
    block: Vec<u8>,
    pos: usize,
    raw: bool,
}

const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Snappy cannot expand a block more than about 21 times; a block declaring more lies.
const MAX_SNAPPY_EXPANSION: usize = 32;

impl<'a> SnappyBlocks<'a> {
    fn new(input: &'a [u8]) -> Self {
        match input.strip_prefix(XERIAL_MAGIC) {
            Some(blocks) => Self { input: blocks, block: Vec::new(), pos: 0, raw: false },
            None => Self { input, block: Vec::new(), pos: 0, raw: true },
        }
    }

    /// Decompresses the next block into `block`; false at the end of the input.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.input.is_empty() {
            return Ok(false);
        }
        let compressed = if self.raw {
            std::mem::take(&mut self.input)
        } else {
            let (len, rest) = self.input.split_at_checked(4).ok_or(io::ErrorKind::UnexpectedEof)?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let (block, rest) = rest.split_at_checked(len).ok_or(io::ErrorKind::UnexpectedEof)?;
            self.input = rest;
            block
        };
        let invalid = |_| io::Error::from(io::ErrorKind::InvalidData);
        let len = snap::raw::decompress_len(compressed).map_err(invalid)?;
        if len > compressed.len().saturating_mul(MAX_SNAPPY_EXPANSION) {
            return Err(io::ErrorKind::InvalidData.into());
        }
        self.block.resize(len, 0);
        let _ = snap::raw::Decoder::new().decompress(compressed, &mut self.block).map_err(invalid)?;
        self.pos = 0;
        Ok(true)
    }
}

impl Read for SnappyBlocks<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.block.len() - self.pos);
        out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use gregor_protocol::kafka_protocol::protocol::StrBytes;
    use gregor_protocol::kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::*;

    fn record(offset: i64, key: Option<&str>, header: bool) -> Record {
        let mut headers = gregor_protocol::kafka_protocol::indexmap::IndexMap::new();
        if header {
            let _ = headers.insert(StrBytes::from_static_str("h"), Some(bytes::Bytes::from_static(b"v")));
        }
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // One batch: the encoder splits where offset minus sequence changes.
            sequence: offset as i32,
            timestamp: 1_000 + offset,
            key: key.map(|k| bytes::Bytes::copy_from_slice(k.as_bytes())),
            value: Some(bytes::Bytes::from(vec![b'x'; 300])),
            headers,
        }
    }

    fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression };
        RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
        buf.to_vec()
    }

    fn infos(batch: &[u8]) -> Result<Vec<RecordInfo>, LogError> {
        let mut out = Vec::new();
        for_each_record(&RecordBatchHeader::parse(batch).unwrap(), |info| {
            out.push(info);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    const CODECS: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    #[test]
    fn given_every_codec_when_streamed_should_give_each_record_in_order() {
        let records: Vec<Record> = (0..200).map(|i| record(i, (i % 3 != 0).then_some("k"), i % 2 == 0)).collect();
        for codec in CODECS {
            let got = infos(&encode(&records, codec)).unwrap();
            let want: Vec<RecordInfo> = records
                .iter()
                .map(|r| RecordInfo { offset: r.offset, timestamp: r.timestamp, has_key: r.key.is_some() })
                .collect();
            assert_eq!(got, want, "{codec:?}");
        }
    }

    #[test]
    fn given_a_break_when_streamed_should_stop_there() {
        let records: Vec<Record> = (0..50).map(|i| record(i, Some("k"), false)).collect();
        for codec in CODECS {
            let batch = encode(&records, codec);
            let mut seen = 0;
            for_each_record(&RecordBatchHeader::parse(&batch).unwrap(), |info| {
                seen += 1;
                if info.offset == 9 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
            assert_eq!(seen, 10, "{codec:?}");
        }
    }

    /// Rewrites the header's record count and fixes the CRC.
    fn with_count(batch: &[u8], count: i32) -> Vec<u8> {
        let mut out = batch.to_vec();
        out[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn given_a_wrong_count_or_damaged_section_should_be_corrupt_not_panic() {
        let records: Vec<Record> = (0..20).map(|i| record(i, Some("k"), true)).collect();
        for codec in CODECS {
            let batch = encode(&records, codec);
            assert!(infos(&with_count(&batch, 19)).is_err(), "{codec:?}: bytes left over");
            assert!(infos(&with_count(&batch, 21)).is_err(), "{codec:?}: records missing");
            assert!(infos(&with_count(&batch, i32::MAX)).is_err(), "{codec:?}: huge count");
            for cut in [62, 70, batch.len() - 1] {
                let mut damaged = batch.clone();
                damaged[cut] ^= 0x5a;
                let crc = crc32c::crc32c(&damaged[21..]);
                damaged[17..21].copy_from_slice(&crc.to_be_bytes());
                let _ = infos(&damaged);
            }
        }
        let mut bad_crc = encode(&records, Compression::None);
        bad_crc[70] ^= 1;
        assert!(infos(&bad_crc).is_err());
    }

    /// A batch of one keyed record whose value is `value_len` zero bytes, zstd-compressed
    /// as it is written (the test never holds the value either).
    fn zstd_bomb(value_len: usize) -> Vec<u8> {
        use std::io::Write;
        let varlong = crate::cleaner::put_varlong;
        let mut head = Vec::new();
        let mut body = vec![0u8, 0, 0]; // attributes, timestamp delta, offset delta
        varlong(&mut body, 1);
        body.push(b'k');
        varlong(&mut body, value_len as i64);
        varlong(&mut head, (body.len() + value_len + 1) as i64);
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.write_all(&head).unwrap();
        encoder.write_all(&body).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..value_len / chunk.len() {
            encoder.write_all(&chunk).unwrap();
        }
        encoder.write_all(&[0]).unwrap(); // no headers
        let section = encoder.finish().unwrap();
        let mut batch = encode(&[record(0, Some("k"), false)], Compression::Zstd);
        batch.truncate(61);
        batch.extend_from_slice(&section);
        let len = (batch.len() - 12) as i32;
        batch[8..12].copy_from_slice(&len.to_be_bytes());
        batch[21..23].copy_from_slice(&4i16.to_be_bytes()); // zstd
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    #[test]
    fn given_a_record_expanding_to_100_mib_should_stream_it_and_refuse_past_the_cap() {
        let big = zstd_bomb(100 << 20);
        assert!(big.len() < 64 << 10, "{} compressed bytes", big.len());
        assert_eq!(infos(&big).unwrap(), vec![RecordInfo { offset: 0, timestamp: 1_000, has_key: true }]);
        assert!(matches!(infos(&zstd_bomb(129 << 20)), Err(LogError::CorruptRecord { .. })));
    }
}
