//! The metadata records: every change to topics, partitions, configs and brokers is one
//! of these, appended in order to `__cluster_metadata-0` and replayed into the image.
//! Names follow Kafka's KRaft records (`TopicRecord`, `PartitionRecord`, ...).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A broker as it registered itself with the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// Where a partition's replicas live and who leads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRegistration {
    pub topic_id: Uuid,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// What a config record applies to, as in DescribeConfigs' resource types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic(String),
    /// A broker by id; `None` is the cluster-wide default (Kafka's empty broker name).
    Broker(Option<i32>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    RegisterBroker(BrokerRegistration),
    Topic {
        name: String,
        topic_id: Uuid,
    },
    Partition(PartitionRegistration),
    /// `value: None` removes the key, so the default applies again.
    Config {
        resource: ConfigResource,
        name: String,
        value: Option<String>,
    },
    RemoveTopic {
        topic_id: Uuid,
    },
    /// The controller handed out producer ids below `next_producer_id`.
    ProducerIds {
        broker_id: i32,
        next_producer_id: i64,
    },
    /// The cluster's id, decided once by the first quorum leader (or carried over from
    /// `meta.properties` of a single-node data dir), so that fresh nodes started with the
    /// same voters agree on it without a separate format step.
    ClusterId {
        cluster_id: String,
    },
}
