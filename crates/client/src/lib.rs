//! A small async Kafka client over the `kafka-protocol` codec, for Gregor's tools.
//!
//! ```text
//!  Client ── bootstrap Connection (ApiVersions negotiated: highest common version per API)
//!    │  metadata: brokers, topics, partition leaders
//!    ├── node(id) ─► Connection per broker, opened on demand
//!    │     produce / fetch / list offsets ─► partition leader
//!    │     create / delete topics, partitions, configs ─► controller (or any broker)
//!    └── coordinator(group) ─► FindCoordinator, then group admin and offsets
//! ```
//!
//! Works against any Kafka-compatible broker: every request is sent at the highest
//! version both sides support (capped where a newer version would need topic ids).
#![forbid(unsafe_code)]

mod acls;
mod admin;
mod client;
mod connection;
mod error;
mod fetch;
mod groups;
mod produce;
mod reassign;
mod scram_users;
mod security;
mod transactions;

pub use admin::{
    ClusterDescription, ConfigEntry, ConfigOp, ConfigResource, ConfigSource, QuorumDescription, QuorumReplica,
};
pub use client::{BrokerInfo, Client, ClientConfig, ClusterMetadata, PartitionInfo, TopicInfo};
pub use connection::{api_name, ApiRange, Connection};
pub use error::{describe_code, error_name, ClientError, Result};
pub use fetch::{
    decode_batches, ConsumedRecord, FetchOptions, FetchPosition, FetchedPartition, OffsetAndTime, EARLIEST, LATEST,
};
pub use gregor_protocol::kafka_protocol;
pub use gregor_protocol::kafka_protocol::records::Compression;
pub use groups::{decode_assignment, CommittedOffset, GroupDescription, GroupListing, GroupMember};
pub use produce::{encode_batch, murmur2, parse_compression, partition_for_key, ProduceOptions, ProduceRecord};
pub use reassign::{OngoingReassignment, PartitionAnswer};
pub use scram_users::ScramUser;
pub use security::{ClientSecurity, SaslLogin};
pub use transactions::{ProducerDescription, TransactionDescription, TransactionListing};
