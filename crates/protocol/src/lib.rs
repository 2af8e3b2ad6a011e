//! Gregor's view of the Kafka wire protocol.
//!
//! ```text
//!  socket bytes ──► frame (i32 length) ──► RequestHeader ──► api key + version ──► handler
//!                                               │
//!                         kafka-protocol messages (records stay raw Bytes)
//! ```
//!
//! Messages come from the `kafka-protocol` crate; this crate adds framing with a size
//! cap, header decoding that never panics, and a zero-copy RecordBatch v2 header view.
#![forbid(unsafe_code)]

pub mod consumer_protocol;
mod error;
pub mod frame;
pub mod partitioner;
pub mod record_batch;
pub mod records;
mod topic_partition;

pub use error::{error_name, ProtocolError};

/// A Gregor-only tagged field of DescribeCluster's broker entries: the broker epoch
/// (KIP-631), 8 bytes big-endian, for `gregor cluster describe`. Tagged fields a client
/// does not know are skipped by every Kafka client, and the tag is far above any Kafka
/// defines.
pub const BROKER_EPOCH_TAG: i32 = 0x4752;
pub use kafka_protocol;
pub use topic_partition::TopicPartition;
