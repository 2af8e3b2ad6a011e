//! Partition replication with Kafka's ISR protocol, as pure state machines (time passed
//! in, no I/O), so the broker, tests and a simulation drive the same code:
//!
//! - [`LeaderState`]: what the leader of one partition knows about its followers (their
//!   log end offsets from their fetches, when each last caught up), the high watermark
//!   it derives, and the ISR changes it asks the controller for (KIP-497).
//! - [`fetch_session`]: the follower's side of a fetch session (KIP-227), so a
//!   follower's Fetch names only the partitions whose position changed.
//! - [`quota`]: the replication throttles of a reassignment (a byte rate, and which
//!   partitions a topic's throttled-replicas configs name).
//! - [`selector`]: which replica a consumer in a given rack should read from (KIP-392).
//! - [`truncation`]: where a follower cuts its log when a new leader epoch begins, from
//!   the leader's answer to OffsetForLeaderEpoch (KIP-101, KIP-279).
//!
//! The rules kept (Kafka's `Partition.scala`, and the four of `Kip320.tla`):
//! 1. a follower truncates to where it diverges from the leader before it fetches in a
//!    new epoch;
//! 2. truncation is fenced by epoch (the fetcher drops answers of an older epoch);
//! 3. the leader counts a follower's position only once it fetched in the leader's
//!    epoch, and advances the high watermark only while the ISR has at least
//!    `min.insync.replicas` members (KIP-966 part 1);
//! 4. a follower joins the ISR only once it reached the high watermark and the start of
//!    the leader's epoch, with the broker epoch it fetched with (KIP-903).
#![forbid(unsafe_code)]

pub mod fetch_session;
mod leader;
pub mod quota;
pub mod selector;
pub mod truncation;

pub use leader::{AckOutcome, Assignment, IsrChange, LeaderState, Replica};

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;
