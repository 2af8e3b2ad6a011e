//! The client: a bootstrap connection, one connection per broker opened on demand, and
//! the cluster metadata used to send partition requests to partition leaders.

use std::collections::HashMap;
use std::time::Duration;

use gregor_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::connection::Connection;
use crate::error::{ClientError, Result};

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Comma-separated HOST:PORT list.
    pub bootstrap: String,
    /// Sent as the request header's client id.
    pub client_id: String,
    /// Connect and per-request timeout.
    pub timeout: Duration,
    /// TLS and SASL (`--command-config`); PLAINTEXT by default.
    pub security: crate::security::ClientSecurity,
}

impl ClientConfig {
    /// A config with client id `gregor` and a 30 s timeout.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            client_id: "gregor".into(),
            timeout: Duration::from_secs(30),
            security: crate::security::ClientSecurity::default(),
        }
    }
}

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// From DescribeCluster v2 (KIP-1073): the broker missed its heartbeats.
    pub fenced: bool,
    /// The broker epoch (KIP-631), where a Gregor broker told it (DescribeCluster).
    pub epoch: Option<i64>,
}

impl BrokerInfo {
    /// HOST:PORT, with IPv6 hosts in brackets.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
    pub error_code: i16,
}

/// One topic as Metadata describes it (partitions sorted by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub topic_id: Uuid,
    pub internal: bool,
    pub error_code: i16,
    pub partitions: Vec<PartitionInfo>,
}

/// The cluster as one Metadata answer describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicInfo>,
}

impl ClusterMetadata {
    fn from_response(r: MetadataResponse) -> Self {
        let brokers = r
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
                fenced: false,
                epoch: None,
            })
            .collect();
        let topics = r
            .topics
            .into_iter()
            .map(|t| {
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionInfo {
                        partition: p.partition_index,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        offline: p.offline_replicas.iter().map(|b| b.0).collect(),
                        error_code: p.error_code,
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                TopicInfo {
                    name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                    topic_id: t.topic_id,
                    internal: t.is_internal,
                    error_code: t.error_code,
                    partitions,
                }
            })
            .collect();
        Self { cluster_id: r.cluster_id.map(|c| c.to_string()), controller_id: r.controller_id.0, brokers, topics }
    }

    /// The topic named `name`, if the answer holds it without error.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.iter().find(|t| t.name == name && t.error_code == 0)
    }
}

/// A connected client.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    bootstrap: Connection,
    nodes: HashMap<i32, Connection>,
    metadata: ClusterMetadata,
}

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn metadata_request(topics: Option<&[String]>) -> MetadataRequest {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.clone())))))
            .collect()
    });
    MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(topics)
}

impl Client {
    /// Connects to the first reachable bootstrap server and reads the cluster metadata.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        let mut last = ClientError::Other("no bootstrap server given".into());
        for addr in config.bootstrap.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match Connection::connect_with(addr, &config.client_id, config.timeout, &config.security).await {
                Ok(bootstrap) => {
                    let mut client =
                        Self { config, bootstrap, nodes: HashMap::new(), metadata: ClusterMetadata::default() };
                    client.refresh(Some(&[])).await?;
                    return Ok(client);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The bootstrap connection: for cluster-wide requests any broker answers.
    pub fn any(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// The last metadata read.
    pub fn cached_metadata(&self) -> &ClusterMetadata {
        &self.metadata
    }

    /// Reads metadata for `topics` (`None`: every topic) and remembers the brokers.
    pub async fn refresh(&mut self, topics: Option<&[String]>) -> Result<&ClusterMetadata> {
        let response = self.bootstrap.send(&metadata_request(topics), None).await?;
        let fresh = ClusterMetadata::from_response(response);
        // Keep what we know about other topics; replace the ones asked for.
        let mut topics_known: Vec<TopicInfo> =
            self.metadata.topics.drain(..).filter(|t| !fresh.topics.iter().any(|f| f.name == t.name)).collect();
        topics_known.extend(fresh.topics.iter().cloned());
        self.metadata = ClusterMetadata { topics: topics_known, ..fresh };
        Ok(&self.metadata)
    }

    /// Metadata for `topics` (`None`: all), straight from the broker.
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata> {
        let response = self.bootstrap.send(&metadata_request(topics), None).await?;
        let fresh = ClusterMetadata::from_response(response);
        self.metadata.brokers.clone_from(&fresh.brokers);
        Ok(fresh)
    }

    /// One topic's metadata, refreshed; `UnknownTopic` if the cluster has no such topic.
    pub async fn topic(&mut self, name: &str) -> Result<TopicInfo> {
        let meta = self.refresh(Some(&[name.to_owned()])).await?;
        let topic =
            meta.topics.iter().find(|t| t.name == name).ok_or_else(|| ClientError::UnknownTopic(name.into()))?;
        match topic.error_code {
            0 => Ok(topic.clone()),
            UNKNOWN_TOPIC_OR_PARTITION => Err(ClientError::UnknownTopic(name.into())),
            code => Err(ClientError::Broker { context: format!("cannot read topic '{name}'"), code, message: None }),
        }
    }

    /// The leader of `topic`/`partition` from cached metadata (refreshed if missing).
    pub async fn leader(&mut self, topic: &str, partition: i32) -> Result<i32> {
        if self.metadata.topic(topic).is_none() {
            self.topic(topic).await?;
        }
        let t = self.metadata.topic(topic).ok_or_else(|| ClientError::UnknownTopic(topic.into()))?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .ok_or_else(|| ClientError::UnknownPartition { topic: topic.into(), partition })?;
        if p.leader < 0 {
            return Err(ClientError::Other(format!("partition {topic}-{partition} has no leader")));
        }
        Ok(p.leader)
    }

    /// The connection to broker `node_id`, opened on first use.
    pub async fn node(&mut self, node_id: i32) -> Result<&mut Connection> {
        if !self.nodes.contains_key(&node_id) {
            let broker = match self.metadata.brokers.iter().find(|b| b.node_id == node_id) {
                Some(b) => b.clone(),
                None => {
                    self.refresh(Some(&[])).await?;
                    self.metadata
                        .brokers
                        .iter()
                        .find(|b| b.node_id == node_id)
                        .cloned()
                        .ok_or(ClientError::UnknownBroker(node_id))?
                }
            };
            let conn = Connection::connect_with(
                &broker.addr(),
                &self.config.client_id,
                self.config.timeout,
                &self.config.security,
            )
            .await?;
            self.nodes.insert(node_id, conn);
        }
        self.nodes.get_mut(&node_id).ok_or(ClientError::UnknownBroker(node_id))
    }

    /// A connection to HOST:PORT known by node id (a coordinator), opened on first use.
    pub(crate) async fn node_at(&mut self, node_id: i32, host: &str, port: i32) -> Result<&mut Connection> {
        if !self.metadata.brokers.iter().any(|b| b.node_id == node_id) {
            let broker = BrokerInfo { node_id, host: host.to_owned(), port, rack: None, fenced: false, epoch: None };
            self.metadata.brokers.push(broker);
        }
        self.node(node_id).await
    }

    /// The controller, or the bootstrap broker when the cluster names none.
    pub async fn controller(&mut self) -> Result<&mut Connection> {
        let id = self.metadata.controller_id;
        if id >= 0 && self.metadata.brokers.iter().any(|b| b.node_id == id) {
            self.node(id).await
        } else {
            Ok(&mut self.bootstrap)
        }
    }
}
