//! The broker's errors, and the one place where they become Kafka error codes.

use std::path::PathBuf;

use gregor_log::LogError;
use gregor_metadata::MetadataError;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::ProtocolError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("{0}")]
    InvalidConfig(String),
    #[error("cannot read config file {path}: {source}")]
    ConfigFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("data dir {path}: {reason}")]
    DataDir { path: PathBuf, reason: String },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Quorum(gregor_quorum::QuorumError),
    /// The active controller refused a forwarded command with this Kafka error.
    #[error("{message}")]
    Remote { code: i16, message: String },
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("unknown topic or partition {0}")]
    UnknownTopicOrPartition(String),
    #[error("unsupported version {version} of {api}")]
    UnsupportedVersion { api: String, version: i16 },
    #[error("{0}")]
    InvalidRequest(String),
    /// A replication state refuses the request: not the leader, too few in-sync replicas.
    #[error("partition {partition}: {error:?}")]
    Replica { partition: String, error: ResponseError },
}

impl BrokerError {
    /// The Kafka error a client gets for this failure.
    pub fn response_error(&self) -> ResponseError {
        match self {
            Self::InvalidConfig(_) => ResponseError::InvalidConfig,
            Self::Log(e) => log_error(e),
            Self::Metadata(e) => metadata_error(e),
            Self::Quorum(e) => quorum_error(e),
            Self::Remote { code, .. } => {
                ResponseError::try_from_code(*code).unwrap_or(ResponseError::UnknownServerError)
            }
            Self::Protocol(ProtocolError::CorruptBatch(_)) => ResponseError::CorruptMessage,
            Self::Protocol(ProtocolError::InvalidRecord(_)) => ResponseError::InvalidRecord,
            Self::Protocol(ProtocolError::UnsupportedMagic(_)) => ResponseError::InvalidRecord,
            Self::Protocol(_) | Self::InvalidRequest(_) => ResponseError::InvalidRequest,
            Self::UnknownTopicOrPartition(_) => ResponseError::UnknownTopicOrPartition,
            Self::Replica { error, .. } => *error,
            Self::UnsupportedVersion { .. } => ResponseError::UnsupportedVersion,
            Self::ConfigFile { .. } | Self::Bind { .. } | Self::DataDir { .. } | Self::Io(_) => {
                ResponseError::KafkaStorageError
            }
        }
    }

    /// The records (by index in their batch) a Produce answer names as the invalid ones.
    pub fn rejected_records(&self) -> Option<(&'static str, &[i32])> {
        match self {
            Self::Log(LogError::RecordsRejected { reason, batch_indexes }) => Some((reason, batch_indexes)),
            _ => None,
        }
    }

    /// TOPIC_ALREADY_EXISTS, decided here or by the controller a command was sent to.
    pub fn is_topic_exists(&self) -> bool {
        self.response_error() == ResponseError::TopicAlreadyExists
    }

    pub fn code(&self) -> i16 {
        self.response_error().code()
    }
}

fn log_error(e: &LogError) -> ResponseError {
    match e {
        LogError::CorruptRecord { .. } => ResponseError::CorruptMessage,
        LogError::InvalidRecord { .. } | LogError::RecordsRejected { .. } => ResponseError::InvalidRecord,
        LogError::RecordBatchTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::RecordListTooLarge { .. } => ResponseError::RecordListTooLarge,
        LogError::LogDeleted { .. } => ResponseError::NotLeaderOrFollower,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        LogError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        LogError::TransactionCoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
        _ => ResponseError::KafkaStorageError,
    }
}

fn quorum_error(e: &gregor_quorum::QuorumError) -> ResponseError {
    use gregor_quorum::QuorumError;
    match e {
        QuorumError::NotController { .. } => ResponseError::NotController,
        QuorumError::Timeout(_) | QuorumError::Unresolved(_) => ResponseError::RequestTimedOut,
        QuorumError::TooLarge { .. } => ResponseError::PolicyViolation,
        QuorumError::DuplicateVoter(_) => ResponseError::DuplicateVoter,
        QuorumError::VoterNotFound(_) => ResponseError::VoterNotFound,
        QuorumError::Metadata(e) => metadata_error(e),
        QuorumError::Log(e) => log_error(e),
        QuorumError::Io { .. } | QuorumError::BadEntry { .. } | QuorumError::Config(_) | QuorumError::Stopped(_) => {
            ResponseError::KafkaStorageError
        }
    }
}

fn metadata_error(e: &MetadataError) -> ResponseError {
    match e {
        MetadataError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        MetadataError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        MetadataError::UnknownPartition { .. } => ResponseError::UnknownTopicOrPartition,
        MetadataError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        MetadataError::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        MetadataError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        MetadataError::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        MetadataError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        MetadataError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
        MetadataError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        MetadataError::InvalidUpdateVersion { .. } => ResponseError::InvalidUpdateVersion,
        MetadataError::InvalidIsr(_) => ResponseError::InvalidRequest,
        MetadataError::IneligibleReplica(_) => ResponseError::IneligibleReplica,
        MetadataError::Log(e) => log_error(e),
        MetadataError::BadRecord { .. } | MetadataError::Io(_) | MetadataError::Protocol(_) => {
            ResponseError::KafkaStorageError
        }
    }
}
