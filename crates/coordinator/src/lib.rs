//! Gregor's group coordinator: Kafka's classic consumer-group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup), the KIP-848 consumer protocol (ConsumerGroupHeartbeat,
//! ConsumerGroupDescribe, in the `modern` module) and committed offsets, as a
//! deterministic sans-IO state machine.
//!
//! One [`GroupCoordinatorShard`] serves the groups of one `__consumer_offsets` partition
//! (chosen by [`partition_for`]). It never does I/O and never reads a clock: every call takes
//! `now_ms` and returns [`Output`]s that the broker carries out in order.
//!
//! ```text
//!   request ──► shard.join_group/sync_group/… ──► Vec<Output>
//!                                                  ├─ Append(records)  → __consumer_offsets-N (first!)
//!                                                  ├─ Respond(id, …)   → the waiting request
//!                                                  └─ Set/CancelTimer  → broker timer queue
//!   timer due ──► shard.on_timer(key, now) ──► Vec<Output>
//!   restart   ──► shard.replay(key, value)* ──► shard.on_loaded(now) ──► Vec<Output>
//! ```
//!
//! The records are Kafka's own `__consumer_offsets` formats (see [`records`]), so replaying
//! the partition rebuilds the same groups and offsets.
#![forbid(unsafe_code)]

mod error;
mod group;
mod join;
mod membership;
mod modern;
mod offsets;
pub mod records;
mod shard;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod txn;
mod txn_offsets;

use std::collections::BTreeMap;

use bytes::Bytes;
use gregor_protocol::kafka_protocol::messages::{
    ConsumerGroupHeartbeatResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, OffsetCommitResponse,
    OffsetDeleteResponse, SyncGroupResponse, TxnOffsetCommitResponse,
};

pub use error::CoordinatorError;
pub use shard::GroupCoordinatorShard;
pub use uuid::Uuid;

/// Topic metadata the broker passes with each consumer-group heartbeat:
/// name -> (topic id, partition count).
pub type TopicsView = BTreeMap<String, (Uuid, i32)>;

/// The broker's handle for one in-flight request; a deferred `Respond` names it.
pub type RequestId = u64;

/// Who sent a request and at which API version (responses must be encodable at it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    pub id: RequestId,
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

/// Group settings, with Kafka's broker keys and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`
    pub max_size: i32,
    /// `offsets.retention.minutes`, in milliseconds.
    pub offsets_retention_ms: i64,
    /// Groups of the KIP-848 consumer protocol.
    pub consumer: ConsumerGroupConfig,
}

/// Settings of KIP-848 consumer groups, with Kafka's broker keys and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms`
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`
    pub max_size: i32,
    /// `group.consumer.assignors`: names among "uniform" and "range"; the first is the
    /// default. Unknown names are ignored (an empty list means "uniform").
    pub assignors: Vec<String>,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        Self {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX,
            assignors: vec!["uniform".to_owned(), "range".to_owned()],
        }
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: i32::MAX,
            offsets_retention_ms: 10_080 * 60_000,
            consumer: ConsumerGroupConfig::default(),
        }
    }
}

/// A timer the shard asked for. Keys are unique per purpose, so re-arming replaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    /// A member's (or pending member's) session: it expires unless a heartbeat comes first.
    Heartbeat { group: String, member: String },
    /// The end of the join phase: rebalance timeout, or the initial rebalance delay.
    Join { group: String },
    /// Members that have not synced by then are removed and the group rebalances.
    Sync { group: String },
    /// A consumer-group (KIP-848) member's session: it is removed unless it heartbeats first.
    ConsumerSession { group: String, member: String },
    /// A consumer-group member that must revoke partitions is removed if it has not by then.
    RebalanceTimeout { group: String, member: String },
}

/// A response for a request the broker handed to the shard.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupResponse {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    Leave(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetDelete(OffsetDeleteResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
}

/// One `__consumer_offsets` record; `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// What the broker must do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Append to this shard's partition before acting on any later output of the same call:
    /// responses that follow may reveal state that is only durable once this is written.
    Append(Vec<Record>),
    /// As `Append`, as one transactional batch of the client's producer (TxnOffsetCommit):
    /// the records count only once the transaction's marker commits them.
    AppendTransactional {
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<Record>,
    },
    /// Answer request `RequestId` (possibly one parked by an earlier call).
    Respond(RequestId, GroupResponse),
    /// Arm (or re-arm) a timer; at the deadline call [`GroupCoordinatorShard::on_timer`].
    SetTimer {
        key: TimerKey,
        deadline_ms: i64,
    },
    CancelTimer(TimerKey),
}

/// One committed offset as OffsetFetch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when nothing was committed.
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    /// `Some("")` when nothing was committed, as Kafka answers.
    pub metadata: Option<String>,
    pub error_code: i16,
}

/// The `__consumer_offsets` partition of `group_id`: Kafka's
/// `Utils.abs(groupId.hashCode()) % n` with Java's `String.hashCode` over UTF-16 code units,
/// so clients and Kafka tools agree on the coordinator.
pub fn partition_for(group_id: &str, num_partitions: i32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
    // Kafka's Utils.abs is `x & 0x7fffffff`, not Math.abs (which keeps i32::MIN negative).
    (hash & 0x7fff_ffff) % num_partitions.max(1)
}
