//! Cluster metadata for Gregor: topics, partitions, configs, brokers and producer id
//! blocks, kept as an ordered list of [`MetadataRecord`]s applied to a [`MetadataImage`].
//!
//! ```text
//!  request ──► control::* (pure: image → records) ──► MetadataStore::write
//!                                                      │ append to __cluster_metadata-0, fsync
//!                                                      ▼
//!                                              image.replay(record) ──► Arc<MetadataImage>
//! ```
#![forbid(unsafe_code)]

pub mod control;
mod error;
mod image;
mod record;
mod store;

pub use error::MetadataError;
pub use image::{MetadataImage, TopicImage};
pub use record::{BrokerRegistration, ConfigResource, MetadataRecord, PartitionRegistration};
pub use store::{MetadataStore, METADATA_TOPIC};
pub use uuid::Uuid;
