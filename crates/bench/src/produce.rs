//! Producer throughput: send as fast as librdkafka accepts, time until every message is
//! acknowledged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::common::{megabytes, Acks, Common, Compression, PayloadPool};
use crate::report::{round3, Report};

/// What to produce.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub(crate) topic: String,
    pub(crate) size: usize,
    pub(crate) acks: Acks,
    pub(crate) compression: Compression,
    pub(crate) partitions: i32,
}

impl Shape {
    /// Producer settings for this shape; `linger_ms` is librdkafka's `linger.ms`.
    pub(crate) fn producer_defaults(&self, linger_ms: u32) -> Vec<(&'static str, String)> {
        vec![
            ("acks", self.acks.to_string()),
            ("compression.codec", self.compression.to_string()),
            ("linger.ms", linger_ms.to_string()),
            ("queue.buffering.max.kbytes", "1048576".into()),
            ("message.timeout.ms", "60000".into()),
        ]
    }

    pub(crate) fn describe(&self) -> String {
        format!("{} B, acks={}, {}, ", self.size, self.acks, self.compression)
    }
}

/// When `produce` stops sending.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    Messages(u64),
    Seconds(f64),
}

impl Stop {
    pub(crate) fn from_args(messages: Option<u64>, seconds: Option<f64>) -> Self {
        match (messages, seconds) {
            (_, Some(s)) => Self::Seconds(s),
            (m, None) => Self::Messages(m.unwrap_or(1_000_000)),
        }
    }
}

/// Delivery reports, counted from librdkafka's callback.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    pub(crate) delivered: AtomicU64,
    pub(crate) delivered_bytes: AtomicU64,
    pub(crate) failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Deliveries {
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub(crate) fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                self.delivered_bytes.fetch_add(message.payload_len() as u64, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| error.to_string());
                }
            }
        }
    }
}

pub(crate) type CountingProducer = BaseProducer<Deliveries>;

/// Creates a producer whose deliveries are counted.
pub(crate) fn producer(common: &Common, defaults: &[(&str, String)]) -> anyhow::Result<CountingProducer> {
    common.config(defaults).create_with_context(Deliveries::default()).context("cannot create the librdkafka producer")
}

/// Enqueues one record, serving delivery reports while librdkafka's queue is full.
pub(crate) fn send(
    common: &Common,
    producer: &CountingProducer,
    mut record: BaseRecord<'_, (), [u8]>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => {
                producer.poll(Duration::ZERO);
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                producer.poll(Duration::from_millis(5));
                common.check_deadline("waiting for room in the producer queue")?;
            }
            Err((e, _)) => bail!("librdkafka refused a message: {e}"),
        }
    }
}

/// Waits until every enqueued message is acknowledged or failed.
pub(crate) fn flush(common: &Common, producer: &CountingProducer) -> anyhow::Result<()> {
    let timeout = common.remaining().max(Duration::from_secs(1));
    producer.flush(timeout).map_err(|e| anyhow::anyhow!("messages were still unacknowledged at the deadline: {e}"))
}

pub(crate) fn run(common: &Common, shape: &Shape, stop: Stop) -> anyhow::Result<Report> {
    let partitions = common.ensure_topic(&shape.topic, shape.partitions)?;
    let producer = producer(common, &shape.producer_defaults(5))?;
    let mut pool = PayloadPool::new(shape.size);
    let start = Instant::now();
    let end = match stop {
        Stop::Seconds(s) => Some(start + Duration::from_secs_f64(s)),
        Stop::Messages(_) => None,
    };
    let mut sent = 0u64;
    loop {
        match (stop, end) {
            (Stop::Messages(n), _) if sent >= n => break,
            (_, Some(end)) if sent & 255 == 0 && Instant::now() >= end => break,
            _ => {}
        }
        send(common, &producer, BaseRecord::to(&shape.topic).payload(pool.next(shape.size)))?;
        sent += 1;
        if sent & 65_535 == 0 {
            common.check_deadline("producing")?;
        }
    }
    flush(common, &producer)?;
    let elapsed = start.elapsed().as_secs_f64();
    report(shape, partitions, producer.context(), elapsed)
}

fn report(shape: &Shape, partitions: i32, d: &Deliveries, elapsed: f64) -> anyhow::Result<Report> {
    let delivered = d.delivered();
    if delivered == 0 {
        bail!("no message was acknowledged: {}", d.first_error().unwrap_or_else(|| "no error reported".into()));
    }
    let bytes = d.delivered_bytes.load(Ordering::Relaxed);
    let rate = delivered as f64 / elapsed;
    let mb_s = megabytes(bytes) / elapsed;
    let mut human = format!(
        "{delivered} msgs, {}{partitions} partitions in {elapsed:.2} s: {rate:.0} msgs/s, {mb_s:.1} MB/s",
        shape.describe()
    );
    if d.failed() > 0 {
        human.push_str(&format!(", {} FAILED ({})", d.failed(), d.first_error().unwrap_or_default()));
    }
    Ok(Report::new("produce", human)
        .field("topic", shape.topic.clone())
        .field("size", shape.size)
        .field("acks", shape.acks.to_string())
        .field("compression", shape.compression.to_string())
        .field("partitions", partitions)
        .field("messages", delivered)
        .field("failed", d.failed())
        .field("seconds", round3(elapsed))
        .field("msgs_per_sec", round3(rate))
        .field("mb_per_sec", round3(mb_s))
        .bytes(bytes))
}
