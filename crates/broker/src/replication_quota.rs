//! The replication throttles of this broker (Kafka's leader and follower
//! `ReplicationQuotaManager`s): `leader.replication.throttled.rate` limits what this
//! broker sends to followers of the partitions the topics' `leader.replication.throttled.replicas`
//! name for it, `follower.replication.throttled.rate` what its replica fetcher fetches for
//! the ones `follower.replication.throttled.replicas` names. Replicas in the ISR are never
//! throttled, so a throttle slows a reassignment's catch-up, never an `acks=all` produce.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError, RwLock};

use gregor_metadata::{MetadataImage, Uuid};
use gregor_replication::quota::{parse_throttled_replicas, RateQuota};

use crate::config::BrokerConfig;

/// One direction's limit and the partitions it applies to.
#[derive(Debug)]
struct Throttle {
    quota: Mutex<RateQuota>,
    /// (topic id, partition) of the throttled partitions on this broker.
    partitions: RwLock<HashSet<(Uuid, i32)>>,
}

impl Throttle {
    fn new(windows: usize, window_ms: i64) -> Self {
        Self { quota: Mutex::new(RateQuota::new(windows, window_ms)), partitions: RwLock::new(HashSet::new()) }
    }

    fn quota(&self) -> std::sync::MutexGuard<'_, RateQuota> {
        self.quota.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `tp` is throttled and its direction is over its rate now.
    fn holds_back(&self, tp: (Uuid, i32), now_ms: i64) -> bool {
        let mut quota = self.quota();
        quota.is_limited()
            && self.partitions.read().unwrap_or_else(PoisonError::into_inner).contains(&tp)
            && quota.is_exceeded(now_ms)
    }

    fn record(&self, tp: (Uuid, i32), bytes: usize, now_ms: i64) {
        let mut quota = self.quota();
        if quota.is_limited() && self.partitions.read().unwrap_or_else(PoisonError::into_inner).contains(&tp) {
            quota.record(bytes as u64, now_ms);
        }
    }

    fn refresh(&self, limit: i64, image: &MetadataImage, key: &str, node_id: i32) {
        self.quota().set_limit(u64::try_from(limit).unwrap_or(0));
        let mut partitions = HashSet::new();
        for topic in image.topics() {
            let Some(value) = topic.configs.get(key) else { continue };
            let Ok(throttled) = parse_throttled_replicas(value, node_id) else { continue };
            for p in topic.partitions.keys().filter(|p| throttled.contains(**p)) {
                let _ = partitions.insert((topic.topic_id, *p));
            }
        }
        *self.partitions.write().unwrap_or_else(PoisonError::into_inner) = partitions;
    }
}

#[derive(Debug)]
pub(crate) struct ReplicationQuotas {
    leader: Throttle,
    follower: Throttle,
}

impl ReplicationQuotas {
    pub(crate) fn new(config: &BrokerConfig) -> Self {
        let windows = usize::try_from(config.broker_i64("replication.quota.window.num")).unwrap_or(11);
        let window_ms = config.broker_i64("replication.quota.window.size.seconds").saturating_mul(1000);
        Self { leader: Throttle::new(windows, window_ms), follower: Throttle::new(windows, window_ms) }
    }

    /// Takes the rates (dynamic broker configs) and throttled partitions (topic configs)
    /// of the current image.
    pub(crate) fn refresh(&self, config: &BrokerConfig, image: &MetadataImage, node_id: i32) {
        let rate = |key: &str| config.broker_i64(key);
        self.leader.refresh(
            rate("leader.replication.throttled.rate"),
            image,
            "leader.replication.throttled.replicas",
            node_id,
        );
        self.follower.refresh(
            rate("follower.replication.throttled.rate"),
            image,
            "follower.replication.throttled.replicas",
            node_id,
        );
    }

    /// Whether a leader throttle is set at all (most of the time not: then nothing is checked).
    pub(crate) fn leader_limited(&self) -> bool {
        self.leader.quota().is_limited()
    }

    pub(crate) fn follower_limited(&self) -> bool {
        self.follower.quota().is_limited()
    }

    /// As leader: whether to send nothing for `tp` to a follower outside the ISR now.
    pub(crate) fn leader_holds_back(&self, tp: (Uuid, i32), now_ms: i64) -> bool {
        self.leader.holds_back(tp, now_ms)
    }

    pub(crate) fn leader_sent(&self, tp: (Uuid, i32), bytes: usize, now_ms: i64) {
        self.leader.record(tp, bytes, now_ms);
    }

    /// As follower outside the ISR: whether to leave `tp` out of the next fetch.
    pub(crate) fn follower_holds_back(&self, tp: (Uuid, i32), now_ms: i64) -> bool {
        self.follower.holds_back(tp, now_ms)
    }

    pub(crate) fn follower_fetched(&self, tp: (Uuid, i32), bytes: usize, now_ms: i64) {
        self.follower.record(tp, bytes, now_ms);
    }
}
