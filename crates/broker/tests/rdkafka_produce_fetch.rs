//! Contract: what librdkafka (through the `rdkafka` crate) produces to Gregor reads back
//! byte for byte (keys, values, headers, timestamps, partitions) at stable offsets, with
//! every compression codec, across a clean restart; fetches long-poll and wake on append.

mod common;

use std::time::Duration;

use common::{assigned_consumer, payload, producer, receive, TestBroker};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(20);

/// Record timestamps start an hour ago: recent enough that the default 7-day retention
/// keeps them (older CreateTime records are deleted at the first retention pass).
/// Computed once per test run, so a producer and its checks always agree.
fn base_timestamp() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        (now.as_millis() as i64 / 1000) * 1000 - 3_600_000
    })
}

async fn produce_numbered(bootstrap: &str, topic: &str, count: usize, extra: &[(&str, &str)]) -> Vec<(i32, i64)> {
    let producer = producer(bootstrap, extra);
    let base = base_timestamp();
    let mut delivered = Vec::new();
    for i in 0..count {
        let key = format!("key-{i}");
        let value = format!("value-{i}-{}", "x".repeat(i % 50));
        let headers = OwnedHeaders::new().insert(Header { key: "n", value: Some(i.to_string().as_bytes()) });
        let record = FutureRecord::to(topic).key(&key).payload(&value).headers(headers).timestamp(base + i as i64);
        let delivery = producer.send(record, Duration::from_secs(10)).await.expect("delivered");
        delivered.push((delivery.partition, delivery.offset));
    }
    delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_keyed_messages_with_headers_when_consumed_should_match_exactly() {
    let broker = TestBroker::start_with(&[("num.partitions", "3")]).await;
    let bootstrap = broker.bootstrap();
    let delivered = produce_numbered(&bootstrap, "orders", 60, &[("linger.ms", "5")]).await;
    let base = base_timestamp();
    let consumer = assigned_consumer(&bootstrap, "orders", &[0, 1, 2], 0);
    let messages = receive(&consumer, 60, WAIT).await;
    for m in &messages {
        let i: usize = std::str::from_utf8(m.key().unwrap()).unwrap()["key-".len()..].parse().unwrap();
        assert_eq!(payload(m), format!("value-{i}-{}", "x".repeat(i % 50)).as_bytes());
        assert_eq!((m.partition(), m.offset()), delivered[i], "message {i} is where it was acknowledged");
        assert_eq!(m.timestamp().to_millis(), Some(base + i as i64));
        let header = m.headers().unwrap().get(0);
        assert_eq!((header.key, header.value), ("n", Some(i.to_string().as_bytes())));
    }
    let partitions: std::collections::BTreeSet<i32> = delivered.iter().map(|d| d.0).collect();
    assert!(partitions.len() > 1, "keys spread over partitions: {partitions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_each_compression_codec_should_round_trip() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("compressed-{codec}");
        let delivered =
            produce_numbered(&bootstrap, &topic, 40, &[("compression.type", codec), ("linger.ms", "20")]).await;
        assert_eq!(delivered.iter().map(|d| d.1).max(), Some(39), "{codec}: offsets are dense");
        // Start inside a compressed multi-record batch: the broker returns the whole
        // batch and the client skips records before the requested offset.
        let consumer = assigned_consumer(&bootstrap, &topic, &[0], 17);
        let messages = receive(&consumer, 23, WAIT).await;
        assert_eq!(messages.first().map(|m| m.offset()), Some(17), "{codec}");
        assert_eq!(payload(&messages[0]), format!("value-17-{}", "x".repeat(17)).as_bytes(), "{codec}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_clean_restart_should_keep_data_and_continue_offsets() {
    let mut broker = TestBroker::start().await;
    let first = produce_numbered(&broker.bootstrap(), "durable", 25, &[("acks", "all")]).await;
    assert_eq!(first.last(), Some(&(0, 24)));
    broker.restart().await;
    let bootstrap = broker.bootstrap();
    let second = produce_numbered(&bootstrap, "durable", 5, &[("acks", "all")]).await;
    assert_eq!(second.first(), Some(&(0, 25)), "offsets continue after restart");
    let consumer = assigned_consumer(&bootstrap, "durable", &[0], 0);
    let watermarks = consumer.fetch_watermarks("durable", 0, Duration::from_secs(10)).expect("watermarks");
    assert_eq!(watermarks, (0, 30));
    let messages = receive(&consumer, 30, WAIT).await;
    let offsets: Vec<i64> = messages.iter().map(Message::offset).collect();
    assert_eq!(offsets, (0..30).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_waiting_consumer_when_message_appended_should_receive_it() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    produce_numbered(&bootstrap, "live", 1, &[]).await;
    let consumer = assigned_consumer(&bootstrap, "live", &[0], 1);
    // The consumer's fetch is parked in the broker (fetch.wait.max.ms) when this lands.
    let late = tokio::spawn({
        let bootstrap = bootstrap.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            produce_numbered(&bootstrap, "live", 2, &[]).await
        }
    });
    let messages = receive(&consumer, 1, WAIT).await;
    assert_eq!(messages[0].offset(), 1);
    late.await.expect("producer task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_timestamps_when_offsets_for_times_should_find_first_at_or_after() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let base = base_timestamp();
    produce_numbered(&bootstrap, "timed", 10, &[]).await;
    let consumer = assigned_consumer(&bootstrap, "timed", &[0], 0);
    let (low, high) = consumer.fetch_watermarks("timed", 0, Duration::from_secs(10)).expect("watermarks");
    assert_eq!((low, high), (0, 10));
    let mut query = TopicPartitionList::new();
    query.add_partition_offset("timed", 0, Offset::Offset(base + 4)).unwrap();
    let found = consumer.offsets_for_times(query, Duration::from_secs(10)).expect("offsets for times");
    assert_eq!(found.find_partition("timed", 0).unwrap().offset(), Offset::Offset(4));
    let mut future = TopicPartitionList::new();
    future.add_partition_offset("timed", 0, Offset::Offset(base + 7_200_000)).unwrap();
    let found = consumer.offsets_for_times(future, Duration::from_secs(10)).expect("offsets for times");
    assert_eq!(found.find_partition("timed", 0).unwrap().offset(), Offset::End, "no record that late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_small_segments_and_retention_bytes_should_move_log_start_and_reset_consumers() {
    let broker = TestBroker::start_with(&[
        ("log.segment.bytes", "2048"),
        ("log.retention.bytes", "4096"),
        ("log.retention.check.interval.ms", "100"),
        ("log.segment.delete.delay.ms", "0"),
    ])
    .await;
    let bootstrap = broker.bootstrap();
    produce_numbered(&bootstrap, "retained", 200, &[]).await;
    let probe = assigned_consumer(&bootstrap, "retained", &[0], 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    let low = loop {
        let (low, high) = probe.fetch_watermarks("retained", 0, Duration::from_secs(10)).expect("watermarks");
        assert_eq!(high, 200);
        if low > 0 {
            break low;
        }
        assert!(tokio::time::Instant::now() < deadline, "retention never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A consumer positioned before the log start gets OFFSET_OUT_OF_RANGE and resets
    // to the earliest offset per auto.offset.reset.
    let consumer: rdkafka::consumer::StreamConsumer = common::client_config(&bootstrap)
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("retained", 0, Offset::Offset(0)).unwrap();
    consumer.assign(&tpl).unwrap();
    let first = receive(&consumer, 1, WAIT).await;
    assert!(first[0].offset() >= low, "resumed at {} with log start {low}", first[0].offset());
}
