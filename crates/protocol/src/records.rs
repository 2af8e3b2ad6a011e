//! Building and reading whole record batches for the broker's own logs (the metadata log,
//! `__consumer_offsets`): plain key/value records, uncompressed, one batch per write so a
//! torn write can never apply half of a change.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::ProtocolError;

/// One record as the broker's internal logs hold it, with the producer context of its
/// batch (coordinators replay transactional records differently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// -1 when the batch had no producer id.
    pub producer_id: i64,
    pub transactional: bool,
    /// For a control record (transaction marker): `Some(true)` commit, `Some(false)` abort.
    pub control: Option<bool>,
}

/// The producer a batch is written for. Coordinators write transactional offset commits
/// under the client's producer id and epoch, and markers under the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub transactional: bool,
}

impl BatchProducer {
    /// No producer: the broker's own non-transactional writes.
    pub const NONE: Self = Self { producer_id: -1, producer_epoch: -1, transactional: false };
}

/// Control record type of a commit marker (Kafka's `ControlRecordType.COMMIT`).
const CONTROL_COMMIT: i16 = 1;
/// Control record type of an abort marker.
const CONTROL_ABORT: i16 = 0;

fn malformed(e: anyhow::Error) -> ProtocolError {
    ProtocolError::Malformed { what: "record batch", source: e }
}

/// Encodes `(key, value)` pairs as one uncompressed v2 batch stamped `timestamp_ms`.
pub fn encode_batch(records: &[(Option<Bytes>, Option<Bytes>)], timestamp_ms: i64) -> Result<BytesMut, ProtocolError> {
    encode_batch_for(records, timestamp_ms, BatchProducer::NONE)
}

/// As [`encode_batch`], written for `producer` (no sequence numbers: coordinators write
/// these, not the producer itself, as Kafka's coordinators do).
pub fn encode_batch_for(
    records: &[(Option<Bytes>, Option<Bytes>)],
    timestamp_ms: i64,
    producer: BatchProducer,
) -> Result<BytesMut, ProtocolError> {
    encode(records, timestamp_ms, producer, false)
}

/// A transaction marker: a control batch of one record, key `(version 0, type)` and
/// value `(version 0, coordinator_epoch)`, in Kafka's `EndTransactionMarker` layout.
pub fn encode_control_batch(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    timestamp_ms: i64,
) -> Result<BytesMut, ProtocolError> {
    let kind = if commit { CONTROL_COMMIT } else { CONTROL_ABORT };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let producer = BatchProducer { producer_id, producer_epoch, transactional: true };
    encode(&[(Some(Bytes::from(key)), Some(Bytes::from(value)))], timestamp_ms, producer, true)
}

/// The commit flag of a control record key, or `None` if it is no transaction marker.
pub fn control_commit_flag(key: &[u8]) -> Option<bool> {
    match key {
        [_, _, t0, t1, ..] => match i16::from_be_bytes([*t0, *t1]) {
            CONTROL_COMMIT => Some(true),
            CONTROL_ABORT => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn encode(
    records: &[(Option<Bytes>, Option<Bytes>)],
    timestamp_ms: i64,
    producer: BatchProducer,
    control: bool,
) -> Result<BytesMut, ProtocolError> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.transactional,
            control,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.producer_id,
            producer_epoch: producer.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence changes; keeping it
            // constant gives one batch whose base sequence is -1 (no idempotent producer).
            sequence: i as i32 - 1,
            timestamp: timestamp_ms,
            key: key.clone(),
            value: value.clone(),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options).map_err(malformed)?;
    Ok(buf)
}

/// Decodes every data record of the whole batches in `bytes` (any codec).
pub fn decode_records(bytes: Bytes) -> Result<Vec<KeyValue>, ProtocolError> {
    Ok(decode_records_and_markers(bytes)?.into_iter().filter(|r| r.control.is_none()).collect())
}

/// Decodes every record, transaction markers included (other control records are dropped).
pub fn decode_records_and_markers(mut bytes: Bytes) -> Result<Vec<KeyValue>, ProtocolError> {
    let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(malformed)?;
    Ok(sets
        .into_iter()
        .flat_map(|s| s.records)
        .filter_map(|r| {
            let control =
                if r.control { Some(control_commit_flag(r.key.as_deref().unwrap_or_default())?) } else { None };
            Some(KeyValue {
                offset: r.offset,
                key: r.key,
                value: r.value,
                producer_id: r.producer_id,
                transactional: r.transactional,
                control,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_decompression_bomb_should_refuse_it_without_allocating_its_size() {
        use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Zstd, MAX_DECOMPRESSED_BYTES};
        fn bomb<C: Compressor<BytesMut>>() -> Bytes
        where
            C::BufMut: bytes::BufMut,
        {
            let zeros = vec![0u8; MAX_DECOMPRESSED_BYTES as usize + 1];
            let mut out = BytesMut::new();
            C::compress(&mut out, |b| {
                bytes::BufMut::put_slice(b, &zeros);
                Ok(())
            })
            .unwrap();
            out.freeze()
        }
        let refused = |r: anyhow::Result<usize>| r.is_err_and(|e| e.to_string().contains("more than"));
        assert!(refused(Zstd::decompress(&mut bomb::<Zstd>(), |b| Ok(b.len()))));
        assert!(refused(Gzip::decompress(&mut bomb::<Gzip>(), |b| Ok(b.len()))));
        assert!(refused(Lz4::decompress(&mut bomb::<Lz4>(), |b| Ok(b.len()))));
    }
    use crate::record_batch::BatchIter;

    #[test]
    fn given_pairs_should_encode_one_batch_and_decode_back() {
        let pairs = vec![
            (Some(Bytes::from_static(b"k1")), Some(Bytes::from_static(b"v1"))),
            (Some(Bytes::from_static(b"k2")), None),
            (None, Some(Bytes::from_static(b"v3"))),
        ];
        let buf = encode_batch(&pairs, 42).unwrap();
        let batches: Vec<_> = BatchIter::new(&buf).collect();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].1.base_sequence(), -1);
        let decoded = decode_records(buf.freeze()).unwrap();
        let back: Vec<_> = decoded.into_iter().map(|r| (r.key, r.value)).collect();
        assert_eq!(back, pairs);
    }

    #[test]
    fn given_control_batch_should_decode_as_marker() {
        let buf = encode_control_batch(42, 3, 7, true, 5).unwrap();
        let (_, header) = BatchIter::new(&buf).next().unwrap();
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id(), header.producer_epoch(), header.base_sequence()), (42, 3, -1));
        let decoded = decode_records_and_markers(buf.clone().freeze()).unwrap();
        assert_eq!(decoded.len(), 1);
        assert_eq!((decoded[0].control, decoded[0].producer_id), (Some(true), 42));
        assert!(decode_records(buf.freeze()).unwrap().is_empty());
        let abort = encode_control_batch(42, 3, 7, false, 5).unwrap();
        assert_eq!(decode_records_and_markers(abort.freeze()).unwrap()[0].control, Some(false));
    }

    #[test]
    fn given_transactional_producer_should_mark_the_batch() {
        let producer = BatchProducer { producer_id: 9, producer_epoch: 2, transactional: true };
        let buf = encode_batch_for(&[(Some(Bytes::from_static(b"k")), None)], 1, producer).unwrap();
        let (_, header) = BatchIter::new(&buf).next().unwrap();
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!((header.producer_id(), header.producer_epoch(), header.base_sequence()), (9, 2, -1));
    }

    /// A batch whose header claims 2^31-1 records (CRC valid) must fail to decode without
    /// reserving memory for them (vendor/kafka-protocol/PATCHES.md).
    #[test]
    fn given_huge_record_count_should_fail_without_allocating() {
        let mut buf = encode_batch(&[(Some(Bytes::from_static(b"k")), Some(Bytes::from_static(b"v")))], 1).unwrap();
        buf[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        buf[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        let crc = crc32c::crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_records(buf.freeze()).is_err());
    }
}
