//! Cluster administration: topics, partitions, configs, cluster description.

use gregor_protocol::kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use gregor_protocol::kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use gregor_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use gregor_protocol::kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use gregor_protocol::kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    DescribeLogDirsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;

use std::collections::BTreeMap;

use crate::client::{BrokerInfo, Client};
use crate::error::{check, Result};

/// DeleteTopics v6 names topics through `topics` (with ids); v1-5 through `topic_names`.
const DELETE_TOPICS_MAX_VERSION: i16 = 5;
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// A config resource: a topic or a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    Broker(i32),
}

impl ConfigResource {
    fn kind(&self) -> i8 {
        match self {
            Self::Topic(_) => 2,
            Self::Broker(_) => 4,
        }
    }
    fn name(&self) -> String {
        match self {
            Self::Topic(t) => t.clone(),
            Self::Broker(b) => b.to_string(),
        }
    }
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Topic(t) => write!(f, "topic '{t}'"),
            Self::Broker(b) => write!(f, "broker {b}"),
        }
    }
}

/// One config value as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    /// Where else the value could come from, most specific first (name, value, source),
    /// when the broker reports synonyms.
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigSource(pub i8);

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            1 => "DYNAMIC_TOPIC_CONFIG",
            2 => "DYNAMIC_BROKER_CONFIG",
            3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            4 => "STATIC_BROKER_CONFIG",
            5 => "DEFAULT_CONFIG",
            6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
            7 => "CLIENT_METRICS_CONFIG",
            8 => "GROUP_CONFIG",
            _ => "UNKNOWN",
        })
    }
}

/// One incremental config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String, String),
    Delete(String),
}

/// The metadata quorum (DescribeQuorum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
}

/// One replica of the metadata log, as DescribeQuorum reports it (-1: unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    pub node_id: i32,
    pub log_end_offset: i64,
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
    /// The controller listener, from DescribeQuorum v2.
    pub endpoint: Option<String>,
}

/// What DescribeCluster says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
}

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

impl Client {
    /// Creates a topic; `partitions`/`replication_factor` of -1 take the broker defaults.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<()> {
        let topic = CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v))))
                    .collect(),
            );
        let request = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = self.controller().await?.send(&request, None).await?;
        for t in &response.topics {
            let message = t.error_message.as_ref().map(ToString::to_string);
            check(t.error_code, message.as_deref(), || format!("cannot create topic '{name}'"))?;
        }
        Ok(())
    }

    /// Deletes topics; one result per name, in order.
    pub async fn delete_topics(&mut self, names: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let request = DeleteTopicsRequest::default()
            .with_topic_names(names.iter().map(|n| TopicName(s(n))).collect())
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = self.controller().await?.send(&request, Some(DELETE_TOPICS_MAX_VERSION)).await?;
        Ok(names
            .iter()
            .map(|n| {
                let found = response.responses.iter().find(|r| r.name.as_ref().is_some_and(|x| x.0.as_str() == n));
                let result = found.map_or(Ok(()), |r| {
                    let message = r.error_message.as_ref().map(ToString::to_string);
                    check(r.error_code, message.as_deref(), || format!("cannot delete topic '{n}'"))
                });
                (n.clone(), result)
            })
            .collect())
    }

    /// Grows `name` to `count` partitions.
    pub async fn create_partitions(&mut self, name: &str, count: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default().with_name(TopicName(s(name))).with_count(count)])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = self.controller().await?.send(&request, None).await?;
        for r in &response.results {
            let message = r.error_message.as_ref().map(ToString::to_string);
            check(r.error_code, message.as_deref(), || format!("cannot change the partitions of topic '{name}'"))?;
        }
        Ok(())
    }

    /// ElectLeaders: `unclean` or preferred elections for `partitions` (`None`: all).
    /// Returns `(topic, partition, error code, message)` per partition the broker answered.
    pub async fn elect_leaders(
        &mut self,
        unclean: bool,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<(String, i32, i16, Option<String>)>> {
        use gregor_protocol::kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        use gregor_protocol::kafka_protocol::messages::ElectLeadersRequest;
        let topics = partitions.map(|list| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in list {
                by_topic.entry(t.as_str()).or_default().push(*p);
            }
            by_topic
                .into_iter()
                .map(|(t, p)| TopicPartitions::default().with_topic(TopicName(s(t))).with_partitions(p))
                .collect()
        });
        let request = ElectLeadersRequest::default()
            .with_election_type(i8::from(unclean))
            .with_topic_partitions(topics)
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = self.controller().await?.send(&request, None).await?;
        check(response.error_code, None, || "cannot elect leaders".to_owned())?;
        Ok(response
            .replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result.iter().map(move |p| {
                    let message = p.error_message.as_ref().map(ToString::to_string);
                    (t.topic.0.to_string(), p.partition_id, p.error_code, message)
                })
            })
            .collect())
    }

    /// Every config of `resource`, with its source. Broker configs are asked of that broker.
    pub async fn describe_configs(&mut self, resource: &ConfigResource) -> Result<Vec<ConfigEntry>> {
        let conn = match resource {
            ConfigResource::Broker(id) => self.node(*id).await?,
            ConfigResource::Topic(_) => self.any(),
        };
        // Synonyms exist from version 1 on (Kafka 1.1).
        let synonyms = conn.version_for::<DescribeConfigsRequest>(None)? >= 1;
        let request = DescribeConfigsRequest::default()
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(resource.kind())
                .with_resource_name(s(&resource.name()))
                .with_configuration_keys(None)])
            .with_include_synonyms(synonyms);
        let response = conn.send(&request, None).await?;
        let mut out = Vec::new();
        for r in response.results {
            let message = r.error_message.as_ref().map(ToString::to_string);
            check(r.error_code, message.as_deref(), || format!("cannot describe the configs of {resource}"))?;
            out.extend(r.configs.into_iter().map(|c| {
                ConfigEntry {
                    name: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                    source: ConfigSource(c.config_source),
                    read_only: c.read_only,
                    sensitive: c.is_sensitive,
                    synonyms: c
                        .synonyms
                        .into_iter()
                        .map(|y| (y.name.to_string(), y.value.map(|v| v.to_string()), ConfigSource(y.source)))
                        .collect(),
                }
            }));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Applies `ops` to `resource` with IncrementalAlterConfigs.
    pub async fn alter_configs(&mut self, resource: &ConfigResource, ops: &[ConfigOp]) -> Result<()> {
        let configs = ops
            .iter()
            .map(|op| match op {
                ConfigOp::Set(k, v) => {
                    AlterableConfig::default().with_name(s(k)).with_config_operation(0).with_value(Some(s(v)))
                }
                ConfigOp::Delete(k) => {
                    AlterableConfig::default().with_name(s(k)).with_config_operation(1).with_value(None)
                }
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource.kind())
            .with_resource_name(s(&resource.name()))
            .with_configs(configs)]);
        let conn = match resource {
            ConfigResource::Broker(id) => self.node(*id).await?,
            ConfigResource::Topic(_) => self.controller().await?,
        };
        let response = conn.send(&request, None).await?;
        for r in &response.responses {
            let message = r.error_message.as_ref().map(ToString::to_string);
            check(r.error_code, message.as_deref(), || format!("cannot alter the configs of {resource}"))?;
        }
        Ok(())
    }

    /// Cluster id, controller and brokers (DescribeCluster, or Metadata on brokers without it).
    pub async fn describe_cluster(&mut self) -> Result<ClusterDescription> {
        if self.any().version_for::<DescribeClusterRequest>(None).is_err() {
            let meta = self.metadata(Some(&[])).await?;
            return Ok(ClusterDescription {
                cluster_id: meta.cluster_id.unwrap_or_default(),
                controller_id: meta.controller_id,
                brokers: meta.brokers,
            });
        }
        // Fenced brokers too, marked, where the broker has DescribeCluster v2 (KIP-1073).
        let request = DescribeClusterRequest::default().with_include_fenced_brokers(true);
        let response = self.any().send(&request, None).await?;
        let message = response.error_message.as_ref().map(ToString::to_string);
        check(response.error_code, message.as_deref(), || "cannot describe the cluster".to_owned())?;
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .into_iter()
                .map(|b| BrokerInfo {
                    node_id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.map(|r| r.to_string()),
                    fenced: b.is_fenced,
                    epoch: b
                        .unknown_tagged_fields
                        .get(&gregor_protocol::BROKER_EPOCH_TAG)
                        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                        .map(i64::from_be_bytes),
                })
                .collect(),
        })
    }

    /// The metadata quorum (DescribeQuorum of `__cluster_metadata-0`).
    pub async fn describe_quorum(&mut self) -> Result<QuorumDescription> {
        use gregor_protocol::kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        use gregor_protocol::kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
        let topic = TopicData::default()
            .with_topic_name(TopicName(s("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)]);
        let request = DescribeQuorumRequest::default().with_topics(vec![topic]);
        let response = self.any().send(&request, None).await?;
        let message = response.error_message.as_ref().map(ToString::to_string);
        check(response.error_code, message.as_deref(), || "cannot describe the metadata quorum".to_owned())?;
        let partition =
            response.topics.first().and_then(|t| t.partitions.first()).ok_or_else(|| crate::ClientError::Codec {
                what: "read DescribeQuorum".into(),
                reason: "no partition in the answer".into(),
            })?;
        let message = partition.error_message.as_ref().map(ToString::to_string);
        check(partition.error_code, message.as_deref(), || "cannot describe the metadata quorum".to_owned())?;
        let endpoints: std::collections::BTreeMap<i32, String> = response
            .nodes
            .iter()
            .filter_map(|n| n.listeners.first().map(|l| (n.node_id.0, format!("{}:{}", l.host, l.port))))
            .collect();
        let replica =
            |r: &gregor_protocol::kafka_protocol::messages::describe_quorum_response::ReplicaState| QuorumReplica {
                node_id: r.replica_id.0,
                log_end_offset: r.log_end_offset,
                last_fetch_timestamp: r.last_fetch_timestamp,
                last_caught_up_timestamp: r.last_caught_up_timestamp,
                endpoint: endpoints.get(&r.replica_id.0).cloned(),
            };
        Ok(QuorumDescription {
            leader_id: partition.leader_id.0,
            leader_epoch: partition.leader_epoch,
            high_watermark: partition.high_watermark,
            voters: partition.current_voters.iter().map(replica).collect(),
            observers: partition.observers.iter().map(replica).collect(),
        })
    }

    /// KIP-853: makes controller `voter_id`, listening at `host:port`, a voter of the
    /// metadata quorum (AddRaftVoter). It must be running and replicating already.
    pub async fn add_raft_voter(&mut self, voter_id: i32, host: &str, port: u16) -> Result<()> {
        use gregor_protocol::kafka_protocol::messages::add_raft_voter_request::Listener;
        use gregor_protocol::kafka_protocol::messages::AddRaftVoterRequest;
        let listener = Listener::default().with_name(s("CONTROLLER")).with_host(s(host)).with_port(port);
        let request = AddRaftVoterRequest::default()
            .with_timeout_ms(30_000)
            .with_voter_id(voter_id)
            .with_listeners(vec![listener]);
        let response = self.any().send(&request, None).await?;
        let message = response.error_message.as_ref().map(ToString::to_string);
        check(response.error_code, message.as_deref(), || format!("cannot add voter {voter_id}"))
    }

    /// KIP-853: removes `voter_id` from the metadata quorum's voters (RemoveRaftVoter).
    pub async fn remove_raft_voter(&mut self, voter_id: i32) -> Result<()> {
        use gregor_protocol::kafka_protocol::messages::RemoveRaftVoterRequest;
        let request = RemoveRaftVoterRequest::default().with_voter_id(voter_id);
        let response = self.any().send(&request, None).await?;
        let message = response.error_message.as_ref().map(ToString::to_string);
        check(response.error_code, message.as_deref(), || format!("cannot remove voter {voter_id}"))
    }

    /// Bytes on disk of `topic`'s `partitions` hosted by broker `node_id`
    /// (DescribeLogDirs, summed over its log dirs; future replicas left out).
    pub async fn partition_sizes(
        &mut self,
        node_id: i32,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>> {
        let request = DescribeLogDirsRequest::default().with_topics(Some(vec![DescribableLogDirTopic::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(partitions.to_vec())]));
        let response = self.node(node_id).await?.send(&request, None).await?;
        check(response.error_code, None, || format!("broker {node_id} cannot describe its log dirs"))?;
        let mut sizes = BTreeMap::new();
        for dir in response.results.iter().filter(|d| d.error_code == 0) {
            for p in dir.topics.iter().filter(|t| t.name.0.as_str() == topic).flat_map(|t| t.partitions.iter()) {
                if !p.is_future_key {
                    *sizes.entry(p.partition_index).or_insert(0) += p.partition_size;
                }
            }
        }
        Ok(sizes)
    }
}
