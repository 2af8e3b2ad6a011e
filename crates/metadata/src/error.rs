use thiserror::Error;

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("metadata log: {0}")]
    Log(#[from] gregor_log::LogError),
    #[error("metadata record at offset {offset} cannot be decoded: {source}")]
    BadRecord {
        offset: i64,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading the metadata log: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata log batch: {0}")]
    Protocol(#[from] gregor_protocol::ProtocolError),
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: &'static str },
    #[error("invalid number of partitions {0}: must be at least 1")]
    InvalidPartitions(i32),
    #[error("invalid replication factor {requested}: {available} broker(s) available")]
    InvalidReplicationFactor { requested: i32, available: usize },
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("this broker is not the partition's leader (the leader is {leader})")]
    NotLeader { leader: i32 },
    #[error("the request's leader epoch is stale (the current one is {current})")]
    FencedLeaderEpoch { current: i32 },
    #[error("the request's partition epoch is stale (the current one is {current})")]
    InvalidUpdateVersion { current: i32 },
    #[error("invalid ISR: {0}")]
    InvalidIsr(String),
    #[error("unknown partition {topic}-{partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("no reassignment is in progress for the partition")]
    NoReassignmentInProgress,
    #[error("replica cannot join the ISR: {0}")]
    IneligibleReplica(String),
}
