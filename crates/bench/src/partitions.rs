//! Many partitions: create one topic with `--count` partitions, write one message to each,
//! and report how long both took and, with `--pid`, the broker's memory before and after.

use std::time::Instant;

use anyhow::bail;
use rdkafka::producer::{BaseRecord, Producer};

use crate::common::Common;
use crate::produce::{flush, producer, send};
use crate::report::{round3, BrokerProbe, ProcSample, Report};

pub(crate) fn run(common: &Common, topic: &str, count: i32, probe: Option<&BrokerProbe>) -> anyhow::Result<Report> {
    let meta = common.metadata_client()?;
    if common.topic_partitions(&meta, topic)?.is_some() {
        bail!("topic {topic} already exists; pass a new --topic or use a fresh broker");
    }
    let before = probe.map(BrokerProbe::sample).transpose()?;
    let start = Instant::now();
    common.create_topic(topic, count)?;
    let created = common.wait_for_topic(&meta, topic)?;
    let create_seconds = start.elapsed().as_secs_f64();
    if created != count {
        bail!("topic {topic} has {created} partitions, not the {count} asked for");
    }
    let producer = producer(common, &[("acks", "all".to_string()), ("linger.ms", "5".into())])?;
    let value = [b'x'; 100];
    let start = Instant::now();
    for partition in 0..count {
        send(common, &producer, BaseRecord::to(topic).partition(partition).payload(&value[..]))?;
    }
    flush(common, &producer)?;
    let produce_seconds = start.elapsed().as_secs_f64();
    let d = producer.context();
    let after = probe.map(BrokerProbe::sample).transpose()?;
    let mut human = format!(
        "{count} partitions created in {create_seconds:.2} s, one message to each in {produce_seconds:.2} s \
         ({} acknowledged",
        d.delivered()
    );
    if d.failed() > 0 {
        human.push_str(&format!(", {} FAILED: {}", d.failed(), d.first_error().unwrap_or_default()));
    }
    human.push(')');
    let mut report = Report::new("partitions", human)
        .field("topic", topic)
        .field("partitions", count)
        .field("create_seconds", round3(create_seconds))
        .field("produce_seconds", round3(produce_seconds))
        .field("delivered", d.delivered())
        .field("failed", d.failed());
    if let (Some(before), Some(after)) = (before, after) {
        report = with_memory(report, count, &before, &after);
    }
    Ok(report)
}

/// Adds the broker's RSS before and after and the growth per 1,000 partitions.
fn with_memory(report: Report, count: i32, before: &ProcSample, after: &ProcSample) -> Report {
    let growth_kb = after.rss_kb as f64 - before.rss_kb as f64;
    let per_1000_mb = growth_kb / 1024.0 / f64::from(count) * 1000.0;
    report
        .note(&format!(", broker RSS {:.1} -> {:.1} MB", before.rss_kb as f64 / 1024.0, after.rss_kb as f64 / 1024.0))
        .note(&format!(" = {per_1000_mb:.1} MB per 1000 partitions"))
        .field("broker_rss_before_kb", before.rss_kb)
        .field("broker_rss_after_kb", after.rss_kb)
        .field("broker_rss_mb_per_1000_partitions", round3(per_1000_mb))
}
