//! The quorum's errors. The broker maps them to Kafka codes (`NOT_CONTROLLER`,
//! `REQUEST_TIMED_OUT`, `KAFKA_STORAGE_ERROR`) in its one mapping place.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum QuorumError {
    #[error("metadata log: {0}")]
    Log(#[from] gregor_log::LogError),
    #[error("metadata quorum I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad metadata entry at offset {offset}: {reason}")]
    BadEntry { offset: i64, reason: String },
    #[error("{0}")]
    Config(String),
    /// This node is not the active controller; `leader` is the one it knows, if any.
    #[error("not the active controller (the leader is {})", leader.map_or("unknown".to_owned(), |l| l.to_string()))]
    NotController { leader: Option<u64> },
    #[error("the metadata quorum did not answer in time: {0}")]
    Timeout(String),
    /// A change was proposed but its fate is unknown: it may still commit, so it must
    /// not be decided and proposed again (the client's retry sees the outcome).
    #[error("the metadata change was proposed but not committed in time: {0}")]
    Unresolved(String),
    /// Adding a node that is a voter already.
    #[error("node {0} is a voter already")]
    DuplicateVoter(u64),
    /// Removing a node that is no voter, or the last voter.
    #[error("{0}")]
    VoterNotFound(String),
    /// A change larger than one metadata entry may be.
    #[error("the metadata change is {bytes} bytes, more than the {max} bytes one change may have")]
    TooLarge { bytes: usize, max: usize },
    #[error("the metadata quorum stopped: {0}")]
    Stopped(String),
    /// The proposal's decision failed (the controller refused the change).
    #[error(transparent)]
    Metadata(#[from] gregor_metadata::MetadataError),
}

impl QuorumError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// Errors after which a retry (at the new leader, after an election) can succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::NotController { .. } | Self::Timeout(_))
    }
}

/// openraft's storage traits speak `std::io::Error`.
pub(crate) fn to_io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
