//! Replication throttles (Kafka's `ReplicationQuotaManager`), used while partitions move:
//! a byte rate over a sliding window, and which partitions a topic's
//! `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`
//! throttle on one broker. In-sync replicas are never throttled (the callers check), so
//! a throttle slows a reassignment down but never an `acks=all` produce.

use std::collections::VecDeque;

/// A byte rate limit measured over `windows` samples of `window_ms` each
/// (`replication.quota.window.num`, `replication.quota.window.size.seconds`).
#[derive(Debug, Clone)]
pub struct RateQuota {
    limit_bytes_per_sec: u64,
    window_ms: i64,
    windows: usize,
    /// (sample start, bytes recorded in it), oldest first.
    samples: VecDeque<(i64, u64)>,
}

impl RateQuota {
    pub fn new(windows: usize, window_ms: i64) -> Self {
        Self {
            limit_bytes_per_sec: u64::MAX,
            window_ms: window_ms.max(1),
            windows: windows.max(1),
            samples: VecDeque::new(),
        }
    }

    /// `u64::MAX` (Kafka's default `Long.MAX_VALUE`) means no limit.
    pub fn set_limit(&mut self, limit_bytes_per_sec: u64) {
        self.limit_bytes_per_sec = limit_bytes_per_sec;
    }

    pub fn is_limited(&self) -> bool {
        self.limit_bytes_per_sec != u64::MAX
    }

    pub fn record(&mut self, bytes: u64, now_ms: i64) {
        self.expire(now_ms);
        match self.samples.back_mut() {
            Some((start, total)) if now_ms - *start < self.window_ms => *total = total.saturating_add(bytes),
            _ => self.samples.push_back((now_ms, bytes)),
        }
    }

    /// Whether the measured rate is above the limit (never when there is none).
    pub fn is_exceeded(&mut self, now_ms: i64) -> bool {
        if !self.is_limited() {
            return false;
        }
        self.rate(now_ms) > self.limit_bytes_per_sec as f64
    }

    /// Bytes per second over the samples kept. As Kafka's `Rate`, the elapsed time counts
    /// at least all but one full window, so a first burst is not measured over a few ms.
    pub fn rate(&mut self, now_ms: i64) -> f64 {
        self.expire(now_ms);
        let Some(&(oldest, _)) = self.samples.front() else { return 0.0 };
        let floor = self.window_ms * (self.windows as i64 - 1).max(1);
        let elapsed_ms = (now_ms - oldest).max(floor).max(1);
        let total: u64 = self.samples.iter().map(|(_, b)| *b).sum();
        total as f64 * 1000.0 / elapsed_ms as f64
    }

    fn expire(&mut self, now_ms: i64) {
        let horizon = now_ms - self.window_ms * self.windows as i64;
        while self.samples.front().is_some_and(|(start, _)| *start <= horizon) {
            let _ = self.samples.pop_front();
        }
    }
}

/// The partitions of one topic a throttled-replicas config throttles on one broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ThrottledReplicas {
    #[default]
    None,
    /// `*`: every partition of the topic.
    All,
    Partitions(Vec<i32>),
}

impl ThrottledReplicas {
    pub fn contains(&self, partition: i32) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Partitions(list) => list.contains(&partition),
        }
    }
}

/// Parses Kafka's `partition:broker,partition:broker,...` (or `*`), keeping the entries of
/// `broker_id`; `Err` names the malformed entry.
pub fn parse_throttled_replicas(value: &str, broker_id: i32) -> Result<ThrottledReplicas, String> {
    let value = value.trim();
    if value == "*" {
        return Ok(ThrottledReplicas::All);
    }
    let mut partitions = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry
            .split_once(':')
            .and_then(|(p, b)| Some((p.trim().parse::<i32>().ok()?, b.trim().parse::<i32>().ok()?)));
        let Some((partition, broker)) = parsed else {
            return Err(format!("'{entry}' is not partition:broker (or use '*' for all replicas)"));
        };
        if broker == broker_id && !partitions.contains(&partition) {
            partitions.push(partition);
        }
    }
    Ok(if partitions.is_empty() { ThrottledReplicas::None } else { ThrottledReplicas::Partitions(partitions) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_no_limit_should_never_throttle() {
        let mut q = RateQuota::new(11, 1000);
        q.record(u64::MAX / 2, 0);
        assert!(!q.is_exceeded(1));
    }

    #[test]
    fn given_a_limit_should_throttle_above_it_and_recover_as_samples_expire() {
        let mut q = RateQuota::new(11, 1000);
        q.set_limit(1000);
        // 5 KB at once: measured over at least ten windows, 500 B/s: under the limit.
        q.record(5_000, 0);
        assert!(!q.is_exceeded(10));
        q.record(10_000, 500);
        assert!(q.is_exceeded(600), "15 KB over 10 s is 1.5 KB/s");
        // After eleven windows the samples are gone.
        assert!(!q.is_exceeded(12_000));
        assert_eq!(q.rate(12_000), 0.0);
    }

    #[test]
    fn given_a_steady_rate_should_measure_it() {
        let mut q = RateQuota::new(11, 1000);
        for second in 0..30 {
            q.record(2_000, second * 1000);
        }
        let rate = q.rate(29_500);
        assert!((1_900.0..=2_300.0).contains(&rate), "{rate}");
    }

    #[test]
    fn given_throttled_replicas_should_keep_this_brokers_partitions() {
        assert_eq!(parse_throttled_replicas("*", 1), Ok(ThrottledReplicas::All));
        assert_eq!(parse_throttled_replicas("", 1), Ok(ThrottledReplicas::None));
        assert_eq!(parse_throttled_replicas("0:1, 1:2,2:1", 1), Ok(ThrottledReplicas::Partitions(vec![0, 2])));
        assert_eq!(parse_throttled_replicas("0:2", 1), Ok(ThrottledReplicas::None));
        assert!(parse_throttled_replicas("0-1", 1).is_err());
        assert!(ThrottledReplicas::All.contains(7) && !ThrottledReplicas::None.contains(0));
    }
}
