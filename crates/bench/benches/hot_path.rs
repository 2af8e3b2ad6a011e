//! Criterion micro-benchmarks of Gregor's produce and fetch hot path, on Gregor's own
//! crates: batch header parse + CRC-32C, `PartitionLog::append_as_leader`, offset and time
//! index lookups, a 1 MiB fetch read, and Produce/Fetch request encode/decode.
//!
//! Run: `cargo bench -p gregor-bench --bench hot_path` (add `-- append` to filter).
#![forbid(unsafe_code)]

use std::cell::OnceCell;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gregor_log::{LogConfig, PartitionLog};
use gregor_protocol::kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use gregor_protocol::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kafka_protocol::messages::{FetchResponse, ProduceRequest, TopicName};
use gregor_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use gregor_protocol::record_batch::RecordBatchHeader;
use gregor_protocol::records::encode_batch;
use gregor_protocol::TopicPartition;

/// Value size of every record in the generated batches.
const VALUE_LEN: usize = 100;
/// Records in the log used by the lookup and fetch benchmarks.
const LOOKUP_RECORDS: i64 = 100_000;
/// Records per batch in that log.
const LOOKUP_BATCH_RECORDS: i64 = 10;
/// Timestamp of the lookup log's first batch; batch `i` is stamped `BASE_TS + i`.
const BASE_TS: i64 = 1_700_000_000_000;
/// The append benchmark starts a fresh log after writing this much, to bound disk use.
const APPEND_RESET_BYTES: usize = 64 << 20;
/// Produce v9 and Fetch v12: flexible versions with topic names, as librdkafka 2.x sends.
const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

/// One uncompressed v2 batch of `count` records with `VALUE_LEN`-byte values.
fn batch(count: usize, timestamp_ms: i64) -> Vec<u8> {
    let records: Vec<_> =
        (0..count).map(|i| (Some(Bytes::from(format!("key-{i}"))), Some(Bytes::from(vec![b'v'; VALUE_LEN])))).collect();
    encode_batch(&records, timestamp_ms).expect("encode a benchmark batch").to_vec()
}

/// The smallest batch of `VALUE_LEN`-byte records that is at least `bytes` long.
fn batch_of_size(bytes: usize) -> Vec<u8> {
    let mut count = (bytes / (VALUE_LEN + 20)).max(1);
    loop {
        let b = batch(count, BASE_TS);
        if b.len() >= bytes {
            return b;
        }
        count += 1;
    }
}

fn open_log(dir: &Path) -> PartitionLog {
    PartitionLog::open(dir.join("bench-0"), TopicPartition::new("bench", 0), LogConfig::default(), 0, BASE_TS)
        .expect("open a benchmark log")
}

/// A cheap deterministic sequence of indexes in `0..n`, so lookups do not always hit
/// the same place.
fn spread(i: u64, n: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % n.max(1)
}

fn record_batch(c: &mut Criterion) {
    let batch = batch_of_size(16 << 10);
    let mut group = c.benchmark_group("record_batch");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("parse_validate_crc_16KiB", |b| {
        b.iter(|| {
            let header = RecordBatchHeader::parse(black_box(&batch)).expect("parse");
            header.validate_from_producer().expect("valid batch");
            black_box(header.last_offset())
        })
    });
    group.bench_function("crc32c_16KiB", |b| b.iter(|| crc32c::crc32c(black_box(&batch))));
    group.finish();
}

/// Appends `iters` copies of `template` and returns the time spent inside
/// `append_as_leader` only; copying the template and rolling to a fresh log are untimed.
fn timed_appends(template: &[u8], iters: u64) -> Duration {
    let mut dir = tempfile::tempdir().expect("create a temp dir");
    let mut log = open_log(dir.path());
    let mut buf = template.to_vec();
    let mut written = 0;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        if written >= APPEND_RESET_BYTES {
            drop(log);
            dir = tempfile::tempdir().expect("create a temp dir");
            log = open_log(dir.path());
            written = 0;
        }
        buf.copy_from_slice(template);
        let start = Instant::now();
        black_box(log.append_as_leader(&mut buf, 0, BASE_TS).expect("append"));
        total += start.elapsed();
        written += buf.len();
    }
    total
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_as_leader");
    for (name, size) in [("1KiB", 1usize << 10), ("16KiB", 16 << 10)] {
        let template = batch_of_size(size);
        group.throughput(Throughput::Bytes(template.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &template, |b, t| {
            b.iter_custom(|iters| timed_appends(t, iters))
        });
    }
    group.finish();
}

/// A log of `LOOKUP_RECORDS` records in batches of `LOOKUP_BATCH_RECORDS`, high watermark
/// at its end. The temp dir must outlive the log.
fn lookup_log() -> (tempfile::TempDir, PartitionLog) {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let mut log = open_log(dir.path());
    for i in 0..LOOKUP_RECORDS / LOOKUP_BATCH_RECORDS {
        let mut b = batch(LOOKUP_BATCH_RECORDS as usize, BASE_TS + i);
        log.append_as_leader(&mut b, 0, BASE_TS).expect("fill the lookup log");
    }
    log.update_high_watermark(log.log_end_offset());
    (dir, log)
}

fn index_lookup(c: &mut Criterion) {
    // Built on first use, so a filtered run (`-- append`) does not pay for it.
    let built = OnceCell::new();
    let batches = (LOOKUP_RECORDS / LOOKUP_BATCH_RECORDS) as u64;
    let mut group = c.benchmark_group("index_lookup_100k_records");
    let mut i = 0u64;
    group.bench_function("offset_read_plan", |b| {
        let (_, log) = built.get_or_init(lookup_log);
        b.iter(|| {
            i += 1;
            let offset = spread(i, LOOKUP_RECORDS as u64) as i64;
            black_box(log.read(black_box(offset), 1, log.high_watermark()).expect("plan a read").position)
        })
    });
    group.bench_function("fetch_offset_by_timestamp", |b| {
        let (_, log) = built.get_or_init(lookup_log);
        b.iter(|| {
            i += 1;
            let ts = BASE_TS + spread(i, batches) as i64;
            black_box(log.fetch_offset_by_timestamp(black_box(ts)).expect("time lookup"))
        })
    });
    group.finish();
}

fn fetch_read(c: &mut Criterion) {
    let built = OnceCell::new();
    let mut group = c.benchmark_group("fetch_read");
    group.throughput(Throughput::Bytes(1 << 20));
    let mut i = 0u64;
    // Start anywhere in the first half so a full 1 MiB always follows.
    group.bench_function("read_bytes_1MiB", |b| {
        let (_, log) = built.get_or_init(lookup_log);
        b.iter(|| {
            i += 1;
            let offset = spread(i, LOOKUP_RECORDS as u64 / 2) as i64;
            let plan = log.read(offset, 1 << 20, log.high_watermark()).expect("plan a read");
            black_box(plan.read_bytes().expect("read the range").len())
        })
    });
    group.finish();
}

fn produce_request(records: Bytes) -> ProduceRequest {
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(records));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("bench")))
        .with_partition_data(vec![partition]);
    ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![topic])
}

fn fetch_response(records: Bytes) -> FetchResponse {
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_high_watermark(100_000)
        .with_last_stable_offset(100_000)
        .with_records(Some(records));
    let topic = FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("bench")))
        .with_partitions(vec![partition]);
    FetchResponse::default().with_responses(vec![topic])
}

fn encode<M: Encodable>(message: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::with_capacity(message.compute_size(version).expect("size"));
    message.encode(&mut buf, version).expect("encode");
    buf.freeze()
}

fn codec(c: &mut Criterion) {
    let produce = produce_request(Bytes::from(batch_of_size(16 << 10)));
    let fetch = fetch_response(Bytes::from(vec![0u8; 1 << 20]));
    let produce_bytes = encode(&produce, PRODUCE_VERSION);
    let fetch_bytes = encode(&fetch, FETCH_VERSION);
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(produce_bytes.len() as u64));
    group.bench_function("produce_request_encode_16KiB", |b| b.iter(|| encode(black_box(&produce), PRODUCE_VERSION)));
    group.bench_function("produce_request_decode_16KiB", |b| {
        b.iter(|| ProduceRequest::decode(&mut black_box(produce_bytes.clone()), PRODUCE_VERSION).expect("decode"))
    });
    group.throughput(Throughput::Bytes(fetch_bytes.len() as u64));
    group.bench_function("fetch_response_encode_1MiB", |b| b.iter(|| encode(black_box(&fetch), FETCH_VERSION)));
    group.bench_function("fetch_response_decode_1MiB", |b| {
        b.iter(|| FetchResponse::decode(&mut black_box(fetch_bytes.clone()), FETCH_VERSION).expect("decode"))
    });
    group.finish();
}

criterion_group!(benches, record_batch, append, index_lookup, fetch_read, codec);
criterion_main!(benches);
