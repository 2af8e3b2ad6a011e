//! Cluster metadata for Gregor: topics, partitions, configs, brokers and producer id
//! blocks, kept as an ordered list of [`MetadataRecord`]s applied to a [`MetadataImage`].
//!
//! ```text
//!  request ──► control::* (pure: image → records) ──► gregor-quorum (Raft proposal)
//!                                                      │ committed in __cluster_metadata-0
//!                                                      ▼
//!                                              image.replay(record) ──► Arc<MetadataImage>
//! ```
#![forbid(unsafe_code)]

pub mod control;
mod error;
mod image;
pub mod placement;
pub mod reassignment;
mod record;
pub mod replication_control;

pub use error::MetadataError;
pub use image::{MetadataImage, TopicImage};
pub use record::{AclEntry, BrokerEndpoint, BrokerRegistration, ConfigResource, MetadataRecord, PartitionRegistration};
pub use uuid::Uuid;

/// The metadata partition's name, as in KRaft.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
