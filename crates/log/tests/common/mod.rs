//! Batch builders and helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use bytes::{Bytes, BytesMut};
use gregor_log::{LogConfig, PartitionLog};
use gregor_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use gregor_protocol::TopicPartition;
use std::path::{Path, PathBuf};

/// What a test batch looks like.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub count: i32,
    pub first_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub value_len: usize,
    pub transactional: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            count: 1,
            first_timestamp: 1_000,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            value_len: 10,
            transactional: false,
        }
    }
}

/// Encodes one v2 batch with `spec.count` records, timestamps `first_timestamp + i`.
pub fn batch(spec: Spec) -> Vec<u8> {
    let records: Vec<Record> = (0..spec.count)
        .map(|i| Record {
            transactional: spec.transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: spec.producer_id,
            producer_epoch: spec.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: spec.base_sequence.wrapping_add(i),
            timestamp: spec.first_timestamp + i64::from(i),
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; spec.value_len])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .unwrap();
    buf.to_vec()
}

pub fn plain(count: i32, first_timestamp: i64) -> Vec<u8> {
    batch(Spec { count, first_timestamp, ..Spec::default() })
}

pub fn transactional(producer_id: i64, producer_epoch: i16, base_sequence: i32, count: i32) -> Vec<u8> {
    batch(Spec { count, producer_id, producer_epoch, base_sequence, transactional: true, ..Spec::default() })
}

pub fn idempotent(producer_id: i64, producer_epoch: i16, base_sequence: i32, count: i32) -> Vec<u8> {
    batch(Spec { count, producer_id, producer_epoch, base_sequence, ..Spec::default() })
}

/// (offset, timestamp) of every record in `bytes`.
pub fn decode_offsets(bytes: &Bytes) -> Vec<(i64, i64)> {
    let mut buf = bytes.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
    sets.iter().flat_map(|s| s.records.iter().map(|r| (r.offset, r.timestamp))).collect()
}

pub fn tp() -> TopicPartition {
    TopicPartition::new("orders", 0)
}

pub fn partition_dir(root: &Path) -> PathBuf {
    root.join(tp().dir_name())
}

pub fn open(root: &Path, config: LogConfig, recovery_point: i64) -> PartitionLog {
    PartitionLog::open(partition_dir(root), tp(), config, recovery_point, 10_000).unwrap()
}

pub fn append(log: &mut PartitionLog, mut bytes: Vec<u8>) -> gregor_log::AppendInfo {
    log.append_as_leader(&mut bytes, 0, 10_000).unwrap()
}

/// Reads everything from `offset` to the end as (offset, timestamp) pairs.
pub fn read_all(log: &PartitionLog, mut offset: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    while offset < log.log_end_offset() {
        let plan = log.read(offset, 1 << 20, i64::MAX).unwrap();
        let records = decode_offsets(&plan.read_bytes().unwrap());
        assert!(!records.is_empty(), "no progress at {offset}");
        offset = records.last().unwrap().0 + 1;
        out.extend(records);
    }
    out
}

pub fn segment_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

pub fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 1024, index_interval_bytes: 128, ..LogConfig::default() }
}
