//! Writing records: RecordBatch v2 encoding with any codec, Kafka's default partitioner
//! (murmur2 of the key, as the Java client computes it), and Produce to the leader.

use bytes::{Bytes, BytesMut};
use gregor_protocol::kafka_protocol::indexmap::IndexMap;
use gregor_protocol::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kafka_protocol::messages::{ProduceRequest, TopicName};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::client::Client;
use crate::error::{check, ClientError, Result};

/// Produce v13 names topics by id only; v3-12 carry names.
const PRODUCE_MAX_VERSION: i16 = 12;

/// One record to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// CreateTime in milliseconds since the epoch.
    pub timestamp: i64,
}

/// How to write.
#[derive(Debug, Clone, Copy)]
pub struct ProduceOptions {
    /// 0 (no answer), 1 (leader) or -1 (all in-sync replicas).
    pub acks: i16,
    pub compression: Compression,
    pub timeout_ms: i32,
}

impl Default for ProduceOptions {
    fn default() -> Self {
        Self { acks: -1, compression: Compression::None, timeout_ms: 30_000 }
    }
}

/// Parses a codec name: none, gzip, snappy, lz4, zstd.
pub fn parse_compression(name: &str) -> Option<Compression> {
    Some(match name.to_ascii_lowercase().as_str() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return None,
    })
}

/// Encodes `records` as one RecordBatch v2 (no producer id), compressed with `compression`.
pub fn encode_batch(records: &[ProduceRecord], compression: Compression) -> Result<BytesMut> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let i = i32::try_from(i).unwrap_or(i32::MAX);
            let headers: IndexMap<StrBytes, Option<Bytes>> =
                r.headers.iter().map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone())).collect();
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                // The encoder starts a new batch when offset - sequence changes: keep it
                // constant so all records share one batch with base sequence -1.
                sequence: i - 1,
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .map_err(|e| ClientError::codec("encode a record batch", e))?;
    Ok(buf)
}

pub use gregor_protocol::partitioner::{murmur2, partition_for_key};

impl Client {
    /// Writes `records` as one batch to `topic`/`partition` through its leader. Returns
    /// the base offset assigned, or `None` with acks=0 (no answer).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[ProduceRecord],
        options: &ProduceOptions,
    ) -> Result<Option<i64>> {
        let batch = encode_batch(records, options.compression)?.freeze();
        let request = ProduceRequest::default()
            .with_acks(options.acks)
            .with_timeout_ms(options.timeout_ms)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        let leader = self.leader(topic, partition).await?;
        let conn = self.node(leader).await?;
        if options.acks == 0 {
            conn.send_oneway(&request, Some(PRODUCE_MAX_VERSION)).await?;
            return Ok(None);
        }
        let response = conn.send(&request, Some(PRODUCE_MAX_VERSION)).await?;
        let p = response
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .ok_or_else(|| ClientError::Other(format!("the broker did not answer for {topic}-{partition}")))?;
        let message = p.error_message.as_ref().map(ToString::to_string).or_else(|| {
            p.record_errors.first().and_then(|e| e.batch_index_error_message.as_ref().map(ToString::to_string))
        });
        check(p.error_code, message.as_deref(), || format!("cannot write to {topic}-{partition}"))?;
        Ok(Some(p.base_offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips_with_every_codec() {
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let compression = parse_compression(codec).unwrap();
            let records = vec![
                ProduceRecord {
                    key: Some(Bytes::from_static(b"k")),
                    value: Some(Bytes::from_static(b"v")),
                    headers: vec![("h".into(), Some(Bytes::from_static(b"1")))],
                    timestamp: 1000,
                },
                ProduceRecord { value: Some(Bytes::from_static(b"w")), timestamp: 1001, ..Default::default() },
            ];
            let batch = encode_batch(&records, compression).unwrap();
            let decoded = crate::fetch::decode_batches(&batch.freeze(), 0).unwrap();
            assert_eq!(decoded.len(), 2, "{codec}");
            assert_eq!(decoded[0].key.as_deref(), Some(&b"k"[..]));
            assert_eq!(decoded[0].headers, vec![("h".to_owned(), Some(Bytes::from_static(b"1")))]);
            assert_eq!(decoded[1].offset, 1);
            assert_eq!(decoded[1].timestamp, 1001);
        }
    }
}
