//! What the broker shows outside the Kafka protocol (the HTTP listener's `/metrics`, and
//! the admin API as it grows): [`BrokerHandle`], a cheap clone of the running broker,
//! and the plain-data [`MetricsSnapshot`] a scrape reads. Everything here is computed on
//! demand from the counters, the metadata image, the logs and the group coordinator, so
//! nothing on the produce and fetch paths keeps gauges up to date.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use gregor_metadata::MetadataImage;
use gregor_protocol::TopicPartition;

use crate::broker::Broker;
use crate::metrics::{RequestLatency, TopicTraffic};

/// The running broker, for the HTTP listener. Its methods block (they read logs and take
/// coordinator locks): call them from `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct BrokerHandle(pub(crate) Arc<Broker>);

/// Everything `/metrics` reports, at one instant.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    pub node_id: i32,
    pub cluster_id: String,
    pub log_dir: PathBuf,
    pub traffic: Vec<TopicTraffic>,
    pub requests: Vec<RequestLatency>,
    pub partitions: Vec<PartitionGauges>,
    pub replicas: ReplicaGauges,
    /// Only on the active controller (Kafka reports its controller gauges there).
    pub controller: Option<ControllerGauges>,
    pub active_controller: bool,
    pub connections: i64,
    pub group_lags: Vec<GroupLag>,
    /// Groups coordinated here, by state (`Stable`, `Empty`, ...).
    pub groups_by_state: BTreeMap<String, u64>,
}

/// One replica hosted here (Kafka's `kafka.log:type=Log` gauges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionGauges {
    pub topic: String,
    pub partition: i32,
    pub is_leader: bool,
    pub size_bytes: u64,
    pub segments: u64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
}

/// Kafka's `ReplicaManager` gauges of this broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaGauges {
    pub partition_count: u64,
    pub leader_count: u64,
    /// Led here with an ISR smaller than the replicas.
    pub under_replicated: u64,
    pub under_min_isr: u64,
    pub at_min_isr: u64,
    /// Replicas here that cannot be served (a failed log dir): none until log dir
    /// failure handling exists.
    pub offline_replicas: u64,
}

/// Kafka's `KafkaController` gauges, from the active controller's image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ControllerGauges {
    pub offline_partitions: u64,
    pub global_partitions: u64,
    pub global_topics: u64,
    pub active_brokers: u64,
    pub fenced_brokers: u64,
}

/// A group's lag on one partition (kafka-exporter's `kafka_consumergroup_lag`): the
/// partition's high watermark here minus the committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    pub end_offset: i64,
    pub lag: i64,
}

impl BrokerHandle {
    pub fn node_id(&self) -> i32 {
        self.0.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.0.cluster_id
    }

    /// The lag of the groups this broker coordinates (what `/metrics` reports of them).
    pub fn group_lags(&self) -> Vec<GroupLag> {
        group_lags(&self.0)
    }

    /// Every metric, computed now.
    pub fn metrics(&self) -> MetricsSnapshot {
        let broker = &self.0;
        let image = broker.image();
        let metrics = &broker.replicas.metrics;
        let active_controller = broker.metadata.is_active_controller();
        MetricsSnapshot {
            node_id: broker.node_id,
            cluster_id: broker.cluster_id.clone(),
            log_dir: broker.config.data_dir(),
            traffic: metrics.traffic(),
            requests: metrics.request_latencies(),
            partitions: partition_gauges(broker),
            replicas: replica_gauges(broker, &image),
            controller: active_controller.then(|| controller_gauges(&image)),
            active_controller,
            connections: metrics.connections(),
            group_lags: group_lags(broker),
            groups_by_state: groups_by_state(broker),
        }
    }
}

fn partition_gauges(broker: &Broker) -> Vec<PartitionGauges> {
    let image = broker.image();
    let mut hosted = broker.replicas.hosted();
    hosted.sort();
    hosted
        .into_iter()
        .filter_map(|tp| {
            let partition = broker.replicas.get(&tp)?;
            let log = crate::replica_manager::ReplicaManager::log(&partition);
            let is_leader = image
                .topic(&tp.topic)
                .and_then(|t| t.partitions.get(&tp.partition))
                .is_some_and(|p| p.leader == broker.node_id);
            Some(PartitionGauges {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                is_leader,
                size_bytes: log.size_bytes(),
                segments: log.segment_count() as u64,
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
                high_watermark: log.high_watermark(),
            })
        })
        .collect()
}

fn replica_gauges(broker: &Broker, image: &MetadataImage) -> ReplicaGauges {
    let config = broker.effective_config();
    let mut g = ReplicaGauges::default();
    for topic in image.topics() {
        let min_isr = config.topic_i64("min.insync.replicas", &topic.configs).unwrap_or(1).max(1) as usize;
        for p in topic.partitions.values().filter(|p| p.replicas.contains(&broker.node_id)) {
            g.partition_count += 1;
            if p.leader != broker.node_id {
                continue;
            }
            g.leader_count += 1;
            g.under_replicated += u64::from(p.isr.len() < p.replicas.len());
            g.under_min_isr += u64::from(p.isr.len() < min_isr);
            g.at_min_isr += u64::from(p.isr.len() == min_isr);
        }
    }
    g
}

fn controller_gauges(image: &MetadataImage) -> ControllerGauges {
    let mut g = ControllerGauges::default();
    for topic in image.topics() {
        g.global_topics += 1;
        for p in topic.partitions.values() {
            g.global_partitions += 1;
            g.offline_partitions += u64::from(p.leader < 0);
        }
    }
    for b in image.brokers.values() {
        if b.fenced {
            g.fenced_brokers += 1;
        } else {
            g.active_brokers += 1;
        }
    }
    g
}

/// Lag of the groups coordinated here, over the partitions whose log is here (the
/// leader's high watermark, or a follower's, a fetch behind).
fn group_lags(broker: &Broker) -> Vec<GroupLag> {
    let committed = broker.groups.each_loaded_shard(|shard| shard.committed_offsets());
    let mut lags: Vec<GroupLag> = committed
        .into_iter()
        .filter_map(|(group, topic, partition, committed_offset)| {
            let hosted = broker.replicas.get(&TopicPartition::new(topic.as_str(), partition))?;
            let end_offset = broker.replicas.offsets(&hosted).1;
            let lag = (end_offset - committed_offset).max(0);
            Some(GroupLag { group, topic, partition, committed_offset, end_offset, lag })
        })
        .collect();
    lags.sort_by(|a, b| (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition)));
    lags
}

fn groups_by_state(broker: &Broker) -> BTreeMap<String, u64> {
    let states = broker.groups.each_loaded_shard(|shard| {
        shard.list_groups(&[], &[]).into_iter().map(|g| g.group_state.to_string()).collect()
    });
    let mut counts = BTreeMap::new();
    for state in states {
        *counts.entry(state).or_insert(0) += 1;
    }
    counts
}
