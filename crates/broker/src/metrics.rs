//! The broker's counters (Kafka's `BrokerTopicStats` and `RequestMetrics`), kept as
//! atomics so the produce and fetch paths pay one relaxed add per partition and request,
//! no lock and no allocation: each hosted partition holds its topic's counters (looked up
//! once, when the partition is installed), and request metrics are a fixed table indexed
//! by API key. Gauges (partitions, ISR, log sizes, lag) are not kept at all: a scrape
//! computes them from the metadata image, the logs and the group coordinator
//! ([`crate::BrokerHandle::metrics`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds (ms) of the request latency histogram's buckets; `+Inf` is implied.
pub const LATENCY_BUCKETS_MS: [f64; 14] =
    [0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0];

/// One topic's traffic through this broker (Kafka's `BrokerTopicMetrics`).
#[derive(Debug, Default)]
pub(crate) struct TopicMetrics {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    replication_bytes_in: AtomicU64,
    replication_bytes_out: AtomicU64,
}

impl TopicMetrics {
    /// A produce appended `records` records of `bytes` bytes as leader.
    pub(crate) fn produced(&self, records: u32, bytes: usize) {
        let _ = self.messages_in.fetch_add(u64::from(records), Relaxed);
        let _ = self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    /// A fetch answered `bytes` of records, to a consumer or to a follower.
    pub(crate) fn fetched(&self, bytes: usize, by_follower: bool) {
        let counter = if by_follower { &self.replication_bytes_out } else { &self.bytes_out };
        let _ = counter.fetch_add(bytes as u64, Relaxed);
    }

    /// This broker, as a follower, appended `bytes` fetched from the leader.
    pub(crate) fn replicated_in(&self, bytes: usize) {
        let _ = self.replication_bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    fn snapshot(&self, topic: &str) -> TopicTraffic {
        TopicTraffic {
            topic: topic.to_owned(),
            messages_in: self.messages_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            replication_bytes_in: self.replication_bytes_in.load(Relaxed),
            replication_bytes_out: self.replication_bytes_out.load(Relaxed),
        }
    }
}

/// Counters of one API (Kafka's `RequestMetrics`, `name=TotalTimeMs,request=...`).
#[derive(Debug, Default)]
struct ApiMetrics {
    requests: AtomicU64,
    errors: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len()],
    sum_us: AtomicU64,
}

/// Every counter of the broker.
#[derive(Debug)]
pub(crate) struct BrokerMetrics {
    topics: Mutex<HashMap<String, Arc<TopicMetrics>>>,
    requests: Vec<ApiMetrics>,
    connections: AtomicI64,
}

/// API keys go up to 92 in Kafka 4.2; a larger key is counted nowhere.
const API_SLOTS: usize = 128;

impl Default for BrokerMetrics {
    fn default() -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            requests: (0..API_SLOTS).map(|_| ApiMetrics::default()).collect(),
            connections: AtomicI64::new(0),
        }
    }
}

impl BrokerMetrics {
    /// The counters of `topic`, created on first use; a partition keeps the handle.
    pub(crate) fn topic(&self, topic: &str) -> Arc<TopicMetrics> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics.entry(topic.to_owned()).or_default().clone()
    }

    /// Forgets a deleted topic's counters.
    pub(crate) fn forget_topic(&self, topic: &str) {
        let _ = self.topics.lock().unwrap_or_else(PoisonError::into_inner).remove(topic);
    }

    /// One request of `api_key` handled in `elapsed`; `failed` when it closed the connection.
    pub(crate) fn request(&self, api_key: i16, elapsed: Duration, failed: bool) {
        let Some(api) = usize::try_from(api_key).ok().and_then(|k| self.requests.get(k)) else { return };
        let _ = api.requests.fetch_add(1, Relaxed);
        if failed {
            let _ = api.errors.fetch_add(1, Relaxed);
        }
        let ms = elapsed.as_secs_f64() * 1000.0;
        if let Some(i) = LATENCY_BUCKETS_MS.iter().position(|le| ms <= *le) {
            let _ = api.buckets[i].fetch_add(1, Relaxed);
        }
        let _ = api.sum_us.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        let _ = self.connections.fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        let _ = self.connections.fetch_sub(1, Relaxed);
    }

    pub(crate) fn connections(&self) -> i64 {
        self.connections.load(Relaxed)
    }

    pub(crate) fn traffic(&self) -> Vec<TopicTraffic> {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<TopicTraffic> = topics.iter().map(|(name, m)| m.snapshot(name)).collect();
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }

    /// APIs that were asked at least once, with cumulative bucket counts.
    pub(crate) fn request_latencies(&self) -> Vec<RequestLatency> {
        self.requests
            .iter()
            .enumerate()
            .filter(|(_, api)| api.requests.load(Relaxed) > 0)
            .map(|(key, api)| {
                let mut running = 0;
                let cumulative = api
                    .buckets
                    .iter()
                    .map(|b| {
                        running += b.load(Relaxed);
                        running
                    })
                    .collect();
                RequestLatency {
                    api_key: key as i16,
                    requests: api.requests.load(Relaxed),
                    errors: api.errors.load(Relaxed),
                    cumulative_buckets: cumulative,
                    sum_ms: api.sum_us.load(Relaxed) as f64 / 1000.0,
                }
            })
            .collect()
    }
}

/// A topic's traffic counters at a scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTraffic {
    pub topic: String,
    pub messages_in: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub replication_bytes_in: u64,
    pub replication_bytes_out: u64,
}

/// One API's request count and latency histogram (buckets of [`LATENCY_BUCKETS_MS`],
/// cumulative; the count is `requests`).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLatency {
    pub api_key: i16,
    pub requests: u64,
    pub errors: u64,
    pub cumulative_buckets: Vec<u64>,
    pub sum_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_requests_should_fill_cumulative_buckets() {
        let m = BrokerMetrics::default();
        m.request(0, Duration::from_micros(300), false);
        m.request(0, Duration::from_millis(3), false);
        m.request(0, Duration::from_secs(20), true);
        let produce = &m.request_latencies()[0];
        assert_eq!((produce.api_key, produce.requests, produce.errors), (0, 3, 1));
        assert_eq!(produce.cumulative_buckets[0], 1, "<= 0.5 ms");
        assert_eq!(produce.cumulative_buckets[3], 2, "<= 5 ms");
        assert_eq!(*produce.cumulative_buckets.last().unwrap(), 2, "20 s is only in +Inf");
        assert!((produce.sum_ms - 20_003.3).abs() < 0.01);
    }

    #[test]
    fn given_traffic_should_keep_consumers_and_followers_apart() {
        let m = BrokerMetrics::default();
        let t = m.topic("orders");
        t.produced(10, 1000);
        t.fetched(700, false);
        t.fetched(1000, true);
        t.replicated_in(5);
        assert!(Arc::ptr_eq(&t, &m.topic("orders")));
        let traffic = m.traffic();
        assert_eq!(
            traffic,
            vec![TopicTraffic {
                topic: "orders".into(),
                messages_in: 10,
                bytes_in: 1000,
                bytes_out: 700,
                replication_bytes_in: 5,
                replication_bytes_out: 1000
            }]
        );
    }
}
