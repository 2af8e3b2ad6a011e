//! Shared helpers for the integration tests: a real broker on 127.0.0.1 (port 0) over a
//! temporary data dir, started through the same public API an embedding user calls.
#![allow(dead_code, unreachable_pub)] // each test file uses its own subset

pub mod raw;

use std::time::Duration;

use gregor_broker::{BrokerConfig, RunningBroker};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, TopicPartitionList};

pub struct TestBroker {
    pub dir: tempfile::TempDir,
    pub broker: Option<RunningBroker>,
    extra: Vec<(String, String)>,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let extra = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut t = Self { dir, broker: None, extra };
        t.broker = Some(t.launch("PLAINTEXT://127.0.0.1:0").await);
        t
    }

    async fn launch(&self, listeners: &str) -> RunningBroker {
        let mut pairs = vec![
            ("log.dirs".to_string(), self.dir.path().display().to_string()),
            ("listeners".to_string(), listeners.to_string()),
        ];
        pairs.extend(self.extra.iter().cloned());
        let config = BrokerConfig::from_pairs(pairs).expect("config");
        gregor_broker::start(config).await.expect("broker starts")
    }

    pub fn bootstrap(&self) -> String {
        self.broker.as_ref().expect("running").bootstrap_servers()
    }

    /// Clean shutdown, then a new broker on the same port and data dir.
    pub async fn restart(&mut self) {
        let bootstrap = self.bootstrap();
        self.broker.take().expect("running").shutdown().await.expect("clean shutdown");
        self.broker = Some(self.launch(&format!("PLAINTEXT://{bootstrap}")).await);
    }
}

pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    let _ = c.set("bootstrap.servers", bootstrap).set("socket.timeout.ms", "10000");
    // GREGOR_TEST_DEBUG=fetch,protocol shows librdkafka's view when a test fails.
    if let Ok(debug) = std::env::var("GREGOR_TEST_DEBUG") {
        let _ = c.set("debug", debug);
    }
    c
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = client_config(bootstrap);
    let _ = c.set("message.timeout.ms", "15000");
    for (k, v) in extra {
        let _ = c.set(*k, *v);
    }
    c.create().expect("producer")
}

/// A consumer assigned to `partitions` of `topic` from offset `from`, without a group.
pub fn assigned_consumer(bootstrap: &str, topic: &str, partitions: &[i32], from: i64) -> StreamConsumer {
    let consumer: StreamConsumer = client_config(bootstrap)
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, rdkafka::Offset::Offset(from)).expect("offset");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// Receives exactly `count` messages or panics after `timeout`.
pub async fn receive(consumer: &StreamConsumer, count: usize, timeout: Duration) -> Vec<OwnedMessage> {
    let mut out = Vec::with_capacity(count);
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < count {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => out.push(m.detach()),
            Ok(Err(e)) => panic!("consumer error after {} messages: {e}", out.len()),
            Err(_) => panic!("timed out with {} of {count} messages", out.len()),
        }
    }
    out
}

pub fn payload(m: &OwnedMessage) -> &[u8] {
    m.payload().unwrap_or_default()
}

/// Produces `count` values "v<n>" to one partition and waits for each acknowledgement.
pub async fn produce_values(bootstrap: &str, topic: &str, partition: i32, count: usize) {
    let producer = producer(bootstrap, &[]);
    for i in 0..count {
        let value = format!("v{i}");
        let record = rdkafka::producer::FutureRecord::<(), _>::to(topic).partition(partition).payload(&value);
        producer.send(record, std::time::Duration::from_secs(10)).await.expect("delivered");
    }
}
