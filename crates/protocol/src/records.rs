//! Building and reading whole record batches for the broker's own logs (the metadata log,
//! `__consumer_offsets`): plain key/value records, uncompressed, one batch per write so a
//! torn write can never apply half of a change.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::ProtocolError;

/// One record as the broker's internal logs hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

fn malformed(e: anyhow::Error) -> ProtocolError {
    ProtocolError::Malformed { what: "record batch", source: e }
}

/// Encodes `(key, value)` pairs as one uncompressed v2 batch stamped `timestamp_ms`.
pub fn encode_batch(records: &[(Option<Bytes>, Option<Bytes>)], timestamp_ms: i64) -> Result<BytesMut, ProtocolError> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
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

/// Decodes every record of the whole batches in `bytes` (any codec).
pub fn decode_records(mut bytes: Bytes) -> Result<Vec<KeyValue>, ProtocolError> {
    let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(malformed)?;
    Ok(sets
        .into_iter()
        .flat_map(|s| s.records)
        .filter(|r| !r.control)
        .map(|r| KeyValue { offset: r.offset, key: r.key, value: r.value })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
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
