//! End-to-end latency at a fixed rate, as the OpenMessaging Benchmark measures it: the
//! producer stamps each message's intended send time in its first 8 bytes, a consumer in
//! the same process records `now - stamp` in an HdrHistogram. Stamping the intended time
//! (not the time the send happened) keeps a stalled producer from hiding latency
//! (coordinated omission).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::Offset;

use crate::common::{Common, PayloadPool};
use crate::consume::{assign, consumer, watermarks};
use crate::produce::{flush, producer, send, Shape};
use crate::report::{round3, Report};

/// Bytes of the send-time stamp at the start of each value.
const STAMP_LEN: usize = 8;
/// How long the consumer waits for the last messages after the producer is done.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The send schedule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    pub(crate) rate: u32,
    pub(crate) seconds: f64,
    pub(crate) warmup: f64,
}

/// A monotonic clock in microseconds, anchored to the wall clock at start.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    wall_start_us: u64,
}

impl Clock {
    fn new() -> Self {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self { start: Instant::now(), wall_start_us: wall.as_micros() as u64 }
    }

    fn now_us(&self) -> u64 {
        self.at_us(self.start.elapsed())
    }

    fn at_us(&self, since_start: Duration) -> u64 {
        self.wall_start_us + since_start.as_micros() as u64
    }
}

/// What the producer tells the consumer thread.
#[derive(Debug, Default)]
struct Shared {
    producer_done: AtomicBool,
    delivered: AtomicU64,
}

#[derive(Debug)]
struct Collected {
    histogram: Histogram<u64>,
    received: u64,
}

pub(crate) fn run(common: &Common, shape: &Shape, pace: Pace) -> anyhow::Result<Report> {
    if shape.size < STAMP_LEN {
        bail!("--size must be at least {STAMP_LEN} bytes for latency, which stamps the send time in the value");
    }
    if pace.seconds <= 0.0 {
        bail!("--seconds must be greater than 0 for latency");
    }
    let partitions = common.ensure_topic(&shape.topic, shape.partitions)?;
    let meta = common.metadata_client()?;
    let starts: Vec<Offset> = watermarks(common, &meta, &shape.topic, partitions)?
        .into_iter()
        .map(|(_, high)| Offset::Offset(high))
        .collect();
    let consumer = consumer(common, &[])?;
    assign(&consumer, &shape.topic, &starts)?;
    let producer = producer(common, &shape.producer_defaults(1))?;
    let clock = Clock::new();
    let measure_from_us = clock.at_us(Duration::from_secs_f64(pace.warmup));
    let shared = Arc::new(Shared::default());
    let consumer_shared = Arc::clone(&shared);
    let hard_end = Instant::now() + common.remaining();
    let collector = thread::Builder::new()
        .name("latency-consumer".into())
        .spawn(move || collect(&consumer, &consumer_shared, clock, measure_from_us, hard_end))
        .context("cannot start the consumer thread")?;
    let sent = produce_paced(common, shape, pace, clock, &producer);
    let flushed = sent.and_then(|sent| flush(common, &producer).map(|()| sent));
    shared.delivered.store(producer.context().delivered(), Ordering::Release);
    shared.producer_done.store(true, Ordering::Release);
    let collected = collector.join().map_err(|_| anyhow!("the consumer thread panicked"))??;
    let (sent, send_seconds) = flushed?;
    report(shape, partitions, pace, sent as f64 / send_seconds, producer.context().failed(), &collected)
}

/// Sends at `pace.rate` for warm-up plus measured seconds; returns the count and the
/// seconds the sending took.
fn produce_paced(
    common: &Common,
    shape: &Shape,
    pace: Pace,
    clock: Clock,
    producer: &crate::produce::CountingProducer,
) -> anyhow::Result<(u64, f64)> {
    let total = ((pace.warmup + pace.seconds) * f64::from(pace.rate)).round().max(1.0) as u64;
    let interval = 1.0 / f64::from(pace.rate);
    let mut pool = PayloadPool::new(shape.size);
    let mut value = vec![0u8; shape.size];
    let mut sent = 0u64;
    while sent < total {
        let due = Duration::from_secs_f64(sent as f64 * interval);
        let now = clock.start.elapsed();
        if due > now {
            producer.poll(Duration::ZERO);
            thread::sleep(due - now);
            continue;
        }
        value[..STAMP_LEN].copy_from_slice(&clock.at_us(due).to_be_bytes());
        value[STAMP_LEN..].copy_from_slice(pool.next(shape.size - STAMP_LEN));
        send(common, producer, BaseRecord::to(&shape.topic).payload(&value[..]))?;
        sent += 1;
        if sent & 4095 == 0 {
            common.check_deadline("producing at the target rate")?;
        }
    }
    Ok((sent, clock.start.elapsed().as_secs_f64()))
}

/// Receives messages, recording each measured one's latency in microseconds, until all
/// delivered messages arrived or [`DRAIN_TIMEOUT`] passed after the producer finished.
fn collect(
    consumer: &BaseConsumer,
    shared: &Shared,
    clock: Clock,
    measure_from_us: u64,
    hard_end: Instant,
) -> anyhow::Result<Collected> {
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).context("cannot create the latency histogram")?;
    let mut received = 0u64;
    let mut drain_started: Option<Instant> = None;
    loop {
        if shared.producer_done.load(Ordering::Acquire) {
            let drain = *drain_started.get_or_insert_with(Instant::now);
            if received >= shared.delivered.load(Ordering::Acquire) || drain.elapsed() >= DRAIN_TIMEOUT {
                break;
            }
        } else if Instant::now() >= hard_end {
            bail!("the run hit its --timeout while measuring latency");
        }
        match consumer.poll(Duration::from_millis(20)) {
            Some(Ok(m)) => {
                let now = clock.now_us();
                let Some(stamp) = m.payload().and_then(|p| p.get(..STAMP_LEN)) else { continue };
                let stamp = u64::from_be_bytes(stamp.try_into().unwrap_or_default());
                received += 1;
                if stamp >= measure_from_us {
                    histogram.saturating_record(now.saturating_sub(stamp).max(1));
                }
            }
            Some(Err(e)) => bail!("the consumer failed after {received} messages: {e}"),
            None => {}
        }
    }
    Ok(Collected { histogram, received })
}

fn ms(h: &Histogram<u64>, quantile: f64) -> f64 {
    round3(h.value_at_quantile(quantile) as f64 / 1000.0)
}

fn report(
    shape: &Shape,
    partitions: i32,
    pace: Pace,
    send_rate: f64,
    failed: u64,
    c: &Collected,
) -> anyhow::Result<Report> {
    let h = &c.histogram;
    if h.is_empty() {
        bail!("no measured message came back within {} s of the end of sending", DRAIN_TIMEOUT.as_secs());
    }
    let (p50, p99, p999, max) = (ms(h, 0.5), ms(h, 0.99), ms(h, 0.999), round3(h.max() as f64 / 1000.0));
    let mut human = format!(
        "{} msgs, {}{partitions} partitions at {} msgs/s (sent {send_rate:.0}/s): \
         p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms, max {max:.2} ms",
        h.len(),
        shape.describe(),
        pace.rate
    );
    if failed > 0 {
        human.push_str(&format!(", {failed} FAILED"));
    }
    Ok(Report::new("latency", human)
        .field("topic", shape.topic.clone())
        .field("size", shape.size)
        .field("acks", shape.acks.to_string())
        .field("compression", shape.compression.to_string())
        .field("partitions", partitions)
        .field("target_rate", pace.rate)
        .field("send_rate", round3(send_rate))
        .field("received", c.received)
        .field("measured", h.len())
        .field("failed", failed)
        .field("p50_ms", p50)
        .field("p99_ms", p99)
        .field("p999_ms", p999)
        .field("max_ms", max))
}
