//! The broker's own admin services for the HTTP admin API and the web console: plain-data
//! views of the cluster and its topics, and topic creation and deletion through the same
//! controller commands CreateTopics and DeleteTopics use, so the rules and errors are
//! Kafka's; messages, groups and configs in the submodules. Blocking (but
//! [`BrokerHandle::commit_reset`]): call from `spawn_blocking`.

pub mod configs;
pub mod groups;
pub mod messages;
pub mod time;

use std::collections::BTreeMap;
use std::path::PathBuf;

use gregor_metadata::control::NewTopic;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::{error_name, TopicPartition};

use crate::controller::ControllerCommand;
use crate::observe::BrokerHandle;
use crate::BrokerError;

/// A refused admin call: Kafka's error code and name, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    pub code: i16,
    /// Kafka's name of the code, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
    pub name: String,
    pub message: String,
}

impl AdminError {
    fn of(error: ResponseError, message: impl Into<String>) -> Self {
        Self { code: error.code(), name: error_name(error.code()), message: message.into() }
    }
}

impl From<BrokerError> for AdminError {
    fn from(e: BrokerError) -> Self {
        let code = e.code();
        Self { code, name: error_name(code), message: e.to_string() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerView {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub fenced: bool,
    pub epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub cluster_id: String,
    /// The node answering.
    pub node_id: i32,
    pub active_controller_here: bool,
    pub brokers: Vec<BrokerView>,
    pub topics: usize,
    pub partitions: usize,
    pub under_replicated_partitions: usize,
    pub offline_partitions: usize,
    /// This node's log dir and the bytes of the replicas in it.
    pub log_dir: PathBuf,
    pub log_size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    pub name: String,
    pub topic_id: String,
    pub internal: bool,
    pub partitions: usize,
    pub replication_factor: usize,
    pub under_replicated_partitions: usize,
    pub offline_partitions: usize,
    /// Of the replicas on this node (`None`: none here).
    pub size_bytes: Option<u64>,
    /// Messages between log start and high watermark of the replicas here.
    pub messages: Option<i64>,
    /// Since this node started, as it led the partitions (`/metrics`' MessagesInPerSec).
    pub messages_in_total: u64,
    pub bytes_in_total: u64,
}

/// One partition; its log figures when a replica is on the node answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub log_start_offset: Option<i64>,
    pub high_watermark: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub size_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicView {
    pub name: String,
    pub topic_id: String,
    pub internal: bool,
    /// The topic's own configs (overrides of the broker defaults).
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionView>,
    pub messages_in_total: u64,
    pub bytes_in_total: u64,
}

/// A topic to create; `None` takes the broker's `num.partitions` /
/// `default.replication.factor`, as CreateTopics' -1 does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicRequest {
    pub name: String,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i32>,
    pub configs: Vec<(String, String)>,
}

fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

impl BrokerHandle {
    pub fn cluster(&self) -> ClusterView {
        let broker = &self.0;
        let image = broker.image();
        let brokers = image
            .brokers
            .values()
            .map(|b| BrokerView {
                id: b.node_id,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
                fenced: b.fenced,
                epoch: b.epoch,
            })
            .collect();
        let partitions = image.topics().flat_map(|t| t.partitions.values());
        let (mut count, mut under, mut offline) = (0, 0, 0);
        for p in partitions {
            count += 1;
            under += usize::from(p.isr.len() < p.replicas.len());
            offline += usize::from(p.leader < 0);
        }
        let log_size_bytes = broker
            .replicas
            .hosted()
            .iter()
            .filter_map(|tp| broker.replicas.get(tp))
            .map(|p| broker.replicas.size_bytes(&p))
            .sum();
        ClusterView {
            cluster_id: broker.cluster_id.clone(),
            node_id: broker.node_id,
            active_controller_here: broker.metadata.is_active_controller(),
            brokers,
            topics: image.topics().count(),
            partitions: count,
            under_replicated_partitions: under,
            offline_partitions: offline,
            log_dir: broker.config.data_dir(),
            log_size_bytes,
        }
    }

    pub fn topics(&self) -> Vec<TopicSummary> {
        let broker = &self.0;
        let image = broker.image();
        let traffic = broker.replicas.metrics.traffic();
        let mut topics: Vec<TopicSummary> = image
            .topics()
            .map(|t| {
                let (messages_in_total, bytes_in_total) = topic_traffic(&traffic, &t.name);
                let local: Vec<(u64, i64)> = t
                    .partitions
                    .keys()
                    .filter_map(|p| broker.replicas.get(&TopicPartition::new(&*t.name, *p)))
                    .map(|h| {
                        let log = crate::replica_manager::ReplicaManager::log(&h);
                        (log.size_bytes(), log.high_watermark() - log.log_start_offset())
                    })
                    .collect();
                let local = (!local.is_empty()).then(|| local.iter().fold((0, 0), |a, l| (a.0 + l.0, a.1 + l.1)));
                TopicSummary {
                    name: t.name.to_string(),
                    topic_id: t.topic_id.to_string(),
                    internal: is_internal(&t.name),
                    partitions: t.partitions.len(),
                    replication_factor: t.partitions.values().next().map_or(0, |p| p.replicas.len()),
                    under_replicated_partitions: t
                        .partitions
                        .values()
                        .filter(|p| p.isr.len() < p.replicas.len())
                        .count(),
                    offline_partitions: t.partitions.values().filter(|p| p.leader < 0).count(),
                    size_bytes: local.map(|l| l.0),
                    messages: local.map(|l| l.1),
                    messages_in_total,
                    bytes_in_total,
                }
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    pub fn topic(&self, name: &str) -> Result<TopicView, AdminError> {
        let broker = &self.0;
        let image = broker.image();
        let topic = image.topic(name).ok_or_else(|| unknown_topic(name))?;
        let partitions = topic
            .partitions
            .values()
            .map(|p| {
                let hosted = broker.replicas.get(&TopicPartition::new(name, p.partition));
                let log = hosted.as_ref().map(|h| {
                    let log = crate::replica_manager::ReplicaManager::log(h);
                    (log.log_start_offset(), log.high_watermark(), log.log_end_offset(), log.size_bytes())
                });
                PartitionView {
                    partition: p.partition,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    log_start_offset: log.map(|l| l.0),
                    high_watermark: log.map(|l| l.1),
                    log_end_offset: log.map(|l| l.2),
                    size_bytes: log.map(|l| l.3),
                }
            })
            .collect();
        let (messages_in_total, bytes_in_total) = topic_traffic(&broker.replicas.metrics.traffic(), name);
        Ok(TopicView {
            messages_in_total,
            bytes_in_total,
            name: name.to_owned(),
            topic_id: topic.topic_id.to_string(),
            internal: is_internal(name),
            configs: topic.configs.clone(),
            partitions,
        })
    }

    /// Creates a topic as CreateTopics does (validated configs, placement by the
    /// controller), and opens its logs here.
    pub fn create_topic(&self, request: &TopicRequest) -> Result<(), AdminError> {
        let broker = &self.0;
        for (key, value) in &request.configs {
            crate::config::validate_topic_config(key, value)?;
        }
        let topic = NewTopic {
            name: request.name.clone(),
            num_partitions: request.partitions.unwrap_or_else(|| broker.config.broker_i64("num.partitions") as i32),
            replication_factor: request
                .replication_factor
                .unwrap_or_else(|| broker.config.broker_i64("default.replication.factor") as i32),
            assignments: Vec::new(),
            configs: request.configs.clone(),
        };
        Ok(broker.create_topic(&topic)?)
    }

    /// Deletes a topic as DeleteTopics does (refused while `delete.topic.enable` is false).
    pub fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let broker = &self.0;
        if broker.image().topic(name).is_none() {
            return Err(unknown_topic(name));
        }
        if !broker.config.broker_bool("delete.topic.enable") {
            return Err(AdminError::of(ResponseError::TopicDeletionDisabled, "delete.topic.enable is false"));
        }
        broker.metadata.execute(ControllerCommand::DeleteTopic { name: name.to_owned() })?;
        Ok(broker.reconcile()?)
    }
}

/// `(messages in, bytes in)` of a topic since this node started.
fn topic_traffic(traffic: &[crate::metrics::TopicTraffic], topic: &str) -> (u64, u64) {
    traffic.iter().find(|t| t.topic == topic).map_or((0, 0), |t| (t.messages_in, t.bytes_in))
}

fn unknown_topic(name: &str) -> AdminError {
    AdminError::of(ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kafka_errors_should_spell_their_names_as_kafka() {
        assert_eq!(error_name(ResponseError::UnknownTopicOrPartition.code()), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(ResponseError::TopicAlreadyExists.code()), "TOPIC_ALREADY_EXISTS");
    }
}
