//! Reading: Fetch from partition leaders, record batch decoding (any codec), and
//! ListOffsets (earliest, latest, by timestamp).

use std::collections::BTreeMap;

use bytes::Bytes;
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use gregor_protocol::kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::records::{RecordBatchDecoder, TimestampType};
use gregor_protocol::record_batch::BatchIter;

use crate::client::Client;
use crate::error::{check, ClientError, Result};

/// Fetch v13+ names topics by id only; v4-12 carry names.
const FETCH_MAX_VERSION: i16 = 12;

/// ListOffsets timestamp for the log start offset.
pub const EARLIEST: i64 = -2;
/// ListOffsets timestamp for the log end offset (the high watermark).
pub const LATEST: i64 = -1;

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub timestamp: i64,
    /// True for LogAppendTime, false for CreateTime.
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Where to read one partition from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Fetch limits and isolation.
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    /// 0 read_uncommitted, 1 read_committed.
    pub isolation_level: i8,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            isolation_level: 0,
        }
    }
}

/// What one partition returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Data records at or after the requested offset (control records dropped).
    pub records: Vec<ConsumedRecord>,
    /// The offset after the last whole batch returned (also past control batches),
    /// `None` when no whole batch came back.
    pub next_offset: Option<i64>,
}

/// An offset found by ListOffsets, with the timestamp it matched (-1 if none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTime {
    pub offset: i64,
    pub timestamp: i64,
}

/// Decodes the whole batches in `bytes` (a trailing partial batch is ignored) and keeps
/// the data records whose offset is at least `from_offset`.
pub fn decode_batches(bytes: &Bytes, from_offset: i64) -> Result<Vec<ConsumedRecord>> {
    let mut out = Vec::new();
    for (position, batch) in BatchIter::new(bytes) {
        if batch.last_offset() < from_offset {
            continue;
        }
        let mut slice = bytes.slice(position..position + batch.size());
        let set = RecordBatchDecoder::decode(&mut slice).map_err(|e| ClientError::codec("decode a record batch", e))?;
        out.extend(set.records.into_iter().filter(|r| !r.control && r.offset >= from_offset).map(|r| ConsumedRecord {
            offset: r.offset,
            timestamp: r.timestamp,
            log_append_time: r.timestamp_type == TimestampType::LogAppend,
            key: r.key,
            value: r.value,
            headers: r.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }));
    }
    Ok(out)
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

impl Client {
    /// Fetches every position from its partition's leader (one request per leader).
    pub async fn fetch(
        &mut self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedPartition>> {
        let mut by_leader: BTreeMap<i32, Vec<&FetchPosition>> = BTreeMap::new();
        for p in positions {
            let leader = self.leader(&p.topic, p.partition).await?;
            by_leader.entry(leader).or_default().push(p);
        }
        let mut out = Vec::new();
        for (leader, positions) in by_leader {
            out.extend(self.fetch_from(leader, &positions, options).await?);
        }
        Ok(out)
    }

    async fn fetch_from(
        &mut self,
        leader: i32,
        positions: &[&FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedPartition>> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for p in positions {
            let partition = FetchPartition::default()
                .with_partition(p.partition)
                .with_fetch_offset(p.offset)
                .with_partition_max_bytes(options.partition_max_bytes);
            match topics.iter_mut().find(|t| t.topic.0.as_str() == p.topic) {
                Some(t) => t.partitions.push(partition),
                None => {
                    topics.push(FetchTopic::default().with_topic(topic_name(&p.topic)).with_partitions(vec![partition]))
                }
            }
        }
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(options.max_wait_ms)
            .with_min_bytes(options.min_bytes)
            .with_max_bytes(options.max_bytes)
            .with_isolation_level(options.isolation_level)
            .with_session_epoch(-1)
            .with_topics(topics);
        let response = self.node(leader).await?.send(&request, Some(FETCH_MAX_VERSION)).await?;
        check(response.error_code, None, || "fetch failed".to_owned())?;
        let mut out = Vec::new();
        for t in response.responses {
            for p in t.partitions {
                let from = positions
                    .iter()
                    .find(|q| q.topic == t.topic.0.as_str() && q.partition == p.partition_index)
                    .map_or(0, |q| q.offset);
                let (records, next_offset) = match &p.records {
                    Some(bytes) if p.error_code == 0 => {
                        let next = BatchIter::new(bytes).last().map(|(_, b)| b.last_offset() + 1);
                        (decode_batches(bytes, from)?, next)
                    }
                    _ => (Vec::new(), None),
                };
                out.push(FetchedPartition {
                    topic: t.topic.0.to_string(),
                    partition: p.partition_index,
                    error_code: p.error_code,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                    records,
                    next_offset,
                });
            }
        }
        Ok(out)
    }

    /// ListOffsets for `(partition, timestamp)` pairs of one topic (`EARLIEST`, `LATEST`
    /// or milliseconds), each asked of its leader. An offset of -1 means no record at or
    /// after that timestamp.
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        queries: &[(i32, i64)],
        isolation_level: i8,
    ) -> Result<BTreeMap<i32, OffsetAndTime>> {
        let mut by_leader: BTreeMap<i32, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for &(partition, timestamp) in queries {
            let leader = self.leader(topic, partition).await?;
            by_leader
                .entry(leader)
                .or_default()
                .push(ListOffsetsPartition::default().with_partition_index(partition).with_timestamp(timestamp));
        }
        let mut out = BTreeMap::new();
        for (leader, partitions) in by_leader {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation_level)
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(partitions)]);
            let response = self.node(leader).await?.send(&request, None).await?;
            for p in response.topics.iter().flat_map(|t| t.partitions.iter()) {
                check(p.error_code, None, || format!("cannot list offsets of {topic}-{}", p.partition_index))?;
                out.insert(p.partition_index, OffsetAndTime { offset: p.offset, timestamp: p.timestamp });
            }
        }
        Ok(out)
    }

    /// Log start and end offsets of every listed partition of `topic`.
    pub async fn watermarks(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, (i64, i64)>> {
        let q = |ts: i64| partitions.iter().map(|&p| (p, ts)).collect::<Vec<_>>();
        let start = self.list_offsets(topic, &q(EARLIEST), 0).await?;
        let end = self.list_offsets(topic, &q(LATEST), 0).await?;
        Ok(partitions
            .iter()
            .map(|p| {
                let s = start.get(p).map_or(-1, |o| o.offset);
                let e = end.get(p).map_or(-1, |o| o.offset);
                (*p, (s, e))
            })
            .collect())
    }
}
