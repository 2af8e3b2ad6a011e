//! Consumer throughput: read every partition of a topic from the beginning up to the end
//! offsets seen at start, timed from the first message to the last.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{megabytes, Common};
use crate::report::{round3, Report};

/// Give up when no message arrives for this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A consumer of its own, settings for throughput, no group coordination or commits.
pub(crate) fn consumer(common: &Common, defaults: &[(&str, String)]) -> anyhow::Result<BaseConsumer> {
    let mut all = vec![
        ("group.id", "gregor-bench".to_string()),
        ("enable.auto.commit", "false".into()),
        ("enable.auto.offset.store", "false".into()),
        ("allow.auto.create.topics", "false".into()),
        ("enable.partition.eof", "false".into()),
    ];
    all.extend(defaults.iter().cloned());
    common.config(&all).create().context("cannot create the librdkafka consumer")
}

/// Assigns `topic`'s partitions at the given start offsets.
pub(crate) fn assign(consumer: &BaseConsumer, topic: &str, starts: &[Offset]) -> anyhow::Result<()> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in starts.iter().enumerate() {
        list.add_partition_offset(topic, partition as i32, *offset)
            .map_err(|e| anyhow!("cannot set the start offset of partition {partition}: {e}"))?;
    }
    consumer.assign(&list).map_err(|e| anyhow!("cannot assign the partitions of {topic}: {e}"))
}

/// Each partition's (log start, end) offsets.
pub(crate) fn watermarks(
    common: &Common,
    client: &BaseConsumer,
    topic: &str,
    n: i32,
) -> anyhow::Result<Vec<(i64, i64)>> {
    (0..n)
        .map(|p| {
            client
                .fetch_watermarks(topic, p, Duration::from_secs(10).min(common.remaining()))
                .with_context(|| format!("cannot read the end offset of {topic}-{p}"))
        })
        .collect()
}

struct Progress {
    /// Each partition's offset still to reach (its end offset at start).
    targets: Vec<i64>,
    remaining_partitions: usize,
    messages: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Instant,
}

impl Progress {
    fn record(&mut self, partition: i32, offset: i64, len: usize) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = now;
        self.messages += 1;
        self.bytes += len as u64;
        if let Some(target) = self.targets.get_mut(partition as usize) {
            if *target > 0 && offset + 1 >= *target {
                *target = 0;
                self.remaining_partitions -= 1;
            }
        }
    }
}

pub(crate) fn run(common: &Common, topic: &str, limit: Option<u64>, seconds: Option<f64>) -> anyhow::Result<Report> {
    let meta = common.metadata_client()?;
    let Some(partitions) = common.topic_partitions(&meta, topic)? else {
        bail!("topic {topic} does not exist on {}; run `gregor-bench produce --topic {topic}` first", common.bootstrap);
    };
    let marks = watermarks(common, &meta, topic, partitions)?;
    let expected: i64 = marks.iter().map(|(low, high)| high - low).sum();
    if expected <= 0 {
        bail!("topic {topic} is empty; run `gregor-bench produce --topic {topic}` first");
    }
    // librdkafka postpones a partition's next fetch by fetch.queue.backoff.ms (1 s by
    // default) once its local queue holds queued.min.messages: a broker that answers
    // faster than this loop drains would be charged a 1 s stall in about half the runs.
    let settings = [("fetch.max.bytes", "52428800".to_string()), ("fetch.queue.backoff.ms", "10".to_string())];
    let consumer = consumer(common, &settings)?;
    assign(&consumer, topic, &vec![Offset::Beginning; partitions as usize])?;
    let targets: Vec<i64> = marks.iter().map(|(low, high)| if high > low { *high } else { 0 }).collect();
    let remaining_partitions = targets.iter().filter(|t| **t > 0).count();
    let mut progress =
        Progress { targets, remaining_partitions, messages: 0, bytes: 0, first: None, last: Instant::now() };
    // With --messages the count alone decides: some brokers report end offsets below the
    // last record (the tansu build measured here does).
    let by_offsets = limit.is_none();
    let limit = limit.unwrap_or(u64::MAX);
    let end = seconds.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut idle_since = Instant::now();
    while (!by_offsets || progress.remaining_partitions > 0)
        && progress.messages < limit
        && end.is_none_or(|e| Instant::now() < e)
    {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                progress.record(m.partition(), m.offset(), m.payload_len());
                idle_since = Instant::now();
            }
            Some(Err(e)) => bail!("the consumer failed after {} messages: {e}", progress.messages),
            None if idle_since.elapsed() >= IDLE_TIMEOUT => {
                bail!("no message for {} s after {} messages", IDLE_TIMEOUT.as_secs(), progress.messages)
            }
            None => common.check_deadline("consuming")?,
        }
    }
    Ok(report(topic, partitions, &progress))
}

fn report(topic: &str, partitions: i32, p: &Progress) -> Report {
    let elapsed = p.first.map_or(0.0, |f| p.last.duration_since(f).as_secs_f64()).max(1e-6);
    let rate = p.messages as f64 / elapsed;
    let mb_s = megabytes(p.bytes) / elapsed;
    let human = format!(
        "{} msgs from {topic} ({partitions} partitions) in {elapsed:.2} s: {rate:.0} msgs/s, {mb_s:.1} MB/s",
        p.messages
    );
    Report::new("consume", human)
        .field("topic", topic)
        .field("partitions", partitions)
        .field("messages", p.messages)
        .field("seconds", round3(elapsed))
        .field("msgs_per_sec", round3(rate))
        .field("mb_per_sec", round3(mb_s))
        .bytes(p.bytes)
}
