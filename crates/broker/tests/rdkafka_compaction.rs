//! Contract: a compacted topic (`cleanup.policy=compact`) keeps at least the latest value
//! of every key: after the cleaner runs, a consumer reading from the beginning sees offsets
//! strictly increasing with gaps, the latest value of every key, and fewer records than
//! were written; records without a key are refused with INVALID_RECORD.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{assigned_consumer, client_config, producer, receive, TestBroker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::Message;

const KEYS: usize = 20;
const VERSIONS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_many_versions_per_key_when_cleaned_should_keep_the_latest_of_each() {
    let broker = TestBroker::start_with(&[("log.cleaner.backoff.ms", "100")]).await;
    let bootstrap = broker.bootstrap();
    let admin: AdminClient<_> = client_config(&bootstrap).create().expect("admin");
    let topic = NewTopic::new("changelog", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", "100");
    let created = admin.create_topics([&topic], &AdminOptions::new()).await.expect("create");
    assert!(created[0].is_ok(), "{created:?}");

    let producer = producer(&bootstrap, &[("linger.ms", "0")]);
    let mut latest = BTreeMap::new();
    for version in 0..VERSIONS {
        for key in 0..KEYS {
            let (k, v) = (format!("key-{key:02}"), format!("value-{version}"));
            producer
                .send(FutureRecord::to("changelog").key(&k).payload(&v), Duration::from_secs(10))
                .await
                .expect("sent");
            let _ = latest.insert(k, v);
        }
    }
    // A tombstone for one key: it must disappear after delete.retention.ms.
    let gone = "key-00";
    producer.send(FutureRecord::<_, ()>::to("changelog").key(gone), Duration::from_secs(10)).await.expect("tombstone");
    let _ = latest.remove(gone);
    let written = (KEYS * VERSIONS + 1) as i64;

    // Wait until the cleaner has removed most old versions (the active segment stays).
    let probe = assigned_consumer(&bootstrap, "changelog", &[0], 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let records = loop {
        let consumer = assigned_consumer(&bootstrap, "changelog", &[0], 0);
        let (_, high) = probe.fetch_watermarks("changelog", 0, Duration::from_secs(5)).expect("watermarks");
        assert_eq!(high, written);
        let seen = read_to_end(&consumer, high).await;
        if seen.len() < (written as usize) / 2 {
            break seen;
        }
        assert!(tokio::time::Instant::now() < deadline, "the cleaner never compacted ({} records)", seen.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets strictly increase");
    let mut last_seen = BTreeMap::new();
    for (_, key, value) in &records {
        let _ = last_seen.insert(key.clone(), value.clone());
    }
    for (key, value) in &latest {
        assert_eq!(last_seen.get(key).and_then(Clone::clone).as_ref(), Some(value), "latest value of {key}");
    }
}

/// Every record up to `high`: (offset, key, value).
async fn read_to_end(consumer: &rdkafka::consumer::StreamConsumer, high: i64) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    loop {
        let m = &receive(consumer, 1, Duration::from_secs(10)).await[0];
        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        let value = m.payload().map(|p| String::from_utf8_lossy(p).into_owned());
        out.push((m.offset(), key, value));
        if m.offset() + 1 >= high {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_compacted_topic_when_record_has_no_key_should_refuse_it() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let admin: AdminClient<_> = client_config(&bootstrap).create().expect("admin");
    let topic = NewTopic::new("keyed-only", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    assert!(admin.create_topics([&topic], &AdminOptions::new()).await.expect("create")[0].is_ok());
    let producer = producer(&bootstrap, &[("message.timeout.ms", "5000")]);
    let keyless =
        producer.send(FutureRecord::<(), _>::to("keyed-only").payload("no key"), Duration::from_secs(10)).await;
    let (error, _) = keyless.expect_err("a keyless record is refused");
    assert_eq!(error.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::InvalidRecord));
    let keyed = producer.send(FutureRecord::to("keyed-only").key("k").payload("v"), Duration::from_secs(10)).await;
    assert!(keyed.is_ok());
}
