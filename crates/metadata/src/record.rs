//! The metadata records: every change to topics, partitions, configs and brokers is one
//! of these, appended in order to `__cluster_metadata-0` and replayed into the image.
//! Names follow Kafka's KRaft records (`TopicRecord`, `PartitionRecord`, ...).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A broker as it registered itself with the controller (Kafka's RegisterBrokerRecord).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// A new random id per broker process: a registration with the same incarnation is a
    /// retry, another one is a restarted broker (KIP-631).
    #[serde(default)]
    pub incarnation_id: Option<Uuid>,
    /// The broker epoch: the metadata offset of this registration, set when it is applied
    /// (so every node agrees on it). A restarted broker gets a new, higher epoch.
    #[serde(default)]
    pub epoch: i64,
    /// Fenced brokers missed their heartbeats: they are left out of Metadata and placement.
    #[serde(default)]
    pub fenced: bool,
    /// Every client listener, as advertised (Kafka's `endpoints`): a client is told the
    /// endpoints of the listener it connected on. Empty in records written before
    /// listeners had names: `host:port` is then the only, PLAINTEXT, one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<BrokerEndpoint>,
}

/// One advertised listener of a broker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// The listener name, upper-case (`PLAINTEXT`, `SSL`, `EXTERNAL`, ...).
    pub name: String,
    pub host: String,
    pub port: i32,
    /// Kafka's `SecurityProtocol` id: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL.
    pub security_protocol: i16,
}

impl BrokerRegistration {
    /// Where a client of `listener` reaches this broker, if it has that listener.
    pub fn endpoint(&self, listener: &str) -> Option<(&str, i32)> {
        if self.listeners.is_empty() {
            return Some((&self.host, self.port));
        }
        self.listeners.iter().find(|e| e.name.eq_ignore_ascii_case(listener)).map(|e| (e.host.as_str(), e.port))
    }
}

/// Where a partition's replicas live and who leads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRegistration {
    pub topic_id: Uuid,
    pub partition: i32,
    /// All replicas, during a reassignment the target ones first and then the ones
    /// being removed (Kafka's order, so the preferred leader is the target's first).
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// A reassignment in progress (KIP-455): replicas catching up to join, and replicas
    /// that leave once every target replica is in sync. Both empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

impl PartitionRegistration {
    /// Whether a reassignment of this partition is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition will have once its reassignment completes.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|b| !self.removing_replicas.contains(b)).collect()
    }
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
    /// A registered broker was fenced (missed heartbeats) or unfenced (heartbeats again),
    /// Kafka's BrokerRegistrationChangeRecord; ignored unless `epoch` is the current one.
    BrokerRegistrationChange {
        node_id: i32,
        epoch: i64,
        fenced: bool,
    },
    /// The cluster's id, decided once by the first quorum leader (or carried over from
    /// `meta.properties` of a single-node data dir), so that fresh nodes started with the
    /// same voters agree on it without a separate format step.
    ClusterId {
        cluster_id: String,
    },
    /// The quorum's voters after a change at run time (KIP-853's `VotersRecord`): from
    /// then on the log, not `controller.quorum.voters`, says who votes.
    QuorumVoters {
        voters: Vec<u64>,
    },
    /// A user's SCRAM credential for one mechanism (Kafka's UserScramCredentialRecord),
    /// or its removal (RemoveUserScramCredentialRecord) when `credential` is `None`.
    /// `mechanism` is Kafka's ScramMechanism type (1 SHA-256, 2 SHA-512); `credential`
    /// Kafka's `salt=...,stored_key=...,server_key=...,iterations=N` form: the password
    /// itself is never stored.
    UserScramCredential {
        name: String,
        mechanism: i8,
        credential: Option<String>,
    },
    /// An ACL (Kafka's AccessControlEntryRecord), or its removal
    /// (RemoveAccessControlEntryRecord) when `removed`.
    Acl {
        acl: AclEntry,
        #[serde(default)]
        removed: bool,
    },
}

/// One ACL binding with Kafka's codes: resource type, pattern type (3 literal, 4
/// prefixed), operation and permission (2 deny, 3 allow).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclEntry {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission_type: i8,
}
