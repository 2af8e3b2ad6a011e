//! Gregor's metadata quorum, Kafka's KRaft on the `openraft` crate: the
//! `__cluster_metadata-0` log becomes the replicated log of one Raft group of controllers.
//! Every metadata change is a proposal, applied to the [`MetadataImage`] on commit, in the
//! same order on every node.
//!
//! ```text
//!  controller decision ─► Quorum::propose ─► openraft ─► MetadataLogStore (segments, fsync)
//!                                               │  replicate (TCP, rpc.rs) to the voters
//!                                               ▼
//!                           commit ─► MetadataStateMachine::apply ─► watch<Arc<MetadataImage>>
//!                                         └─ snapshots: <offset>-<epoch>.checkpoint files
//! ```
//!
//! Kafka's vocabulary maps one to one: a Raft term is the metadata leader epoch (stamped
//! as the `partitionLeaderEpoch` of every batch), a log index is the metadata offset (one
//! batch of one record per entry), a snapshot is a `.checkpoint` file of metadata records.
//! openraft's `leader_id_std` gives one leader per term, as KRaft has one per epoch.
#![forbid(unsafe_code)]

mod checkpoint;
mod entry;
mod error;
mod join;
mod legacy;
mod log_store;
pub mod network;
mod node;
mod quorum_state;
mod rpc;
mod state_machine;

use std::collections::BTreeSet;
use std::fmt;

use gregor_metadata::MetadataRecord;
use serde::{Deserialize, Serialize};

pub use error::QuorumError;
pub use gregor_metadata::MetadataImage;
pub use log_store::MetadataLogStore;
pub use node::{Quorum, QuorumConfig, QuorumStatus, VoterStatus};
pub use rpc::ForwardHandler;
pub use state_machine::MetadataStateMachine;

/// A controller's address on its `CONTROLLER` listener (Kafka's `controller.quorum.voters`
/// entry `id@host:port`). Stored in membership entries, so every voter knows every other.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ControllerNode {
    pub host: String,
    pub port: u16,
}

impl ControllerNode {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self { host: host.into(), port }
    }

    /// Parses `host:port` (`[v6]:port` too), the inverse of [`ControllerNode::address`].
    pub fn parse(address: &str) -> Option<Self> {
        let (host, port) = address.trim().rsplit_once(':')?;
        Some(Self::new(host.trim_start_matches('[').trim_end_matches(']'), port.parse().ok()?))
    }

    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ControllerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

/// One atomic metadata change: the records a controller decision produced. They are
/// applied together or not at all, as one batch was before the quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataChange {
    pub records: Vec<MetadataRecord>,
}

impl fmt::Display for MetadataChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} metadata record(s)", self.records.len())
    }
}

openraft::declare_raft_types!(
    /// The quorum's openraft type configuration: node ids are Kafka's `node.id` (u64 inside
    /// openraft, int32 at the edge), one leader per term (`leader_id_std`).
    pub TypeConfig:
        D = MetadataChange,
        R = (),
        NodeId = u64,
        Node = ControllerNode,
        Term = u64,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
);

/// The openraft handle of this node's quorum member.
pub type Raft = openraft::Raft<TypeConfig, MetadataStateMachine>;
/// A Raft log id: (term, index), Kafka's (metadata leader epoch, offset).
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type Membership = openraft::Membership<u64, ControllerNode>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot travels as the bytes of its checkpoint file.
pub type SnapshotData = std::io::Cursor<Vec<u8>>;
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// Builds a log id from Gregor's (term, index) encoding.
pub fn log_id(term: u64, index: u64) -> LogId {
    openraft::LogId::new(term.into(), index)
}

/// The voter ids of a membership (every config of a joint one).
pub fn voter_ids(membership: &Membership) -> BTreeSet<u64> {
    membership.voter_ids().collect()
}

/// A Kafka epoch (int32) for a Raft term; terms never come near 2^31 in practice (one
/// per election), and saturating keeps the order if one ever did.
pub fn epoch_of(term: u64) -> i32 {
    i32::try_from(term).unwrap_or(i32::MAX)
}

/// Wall-clock milliseconds: batch timestamps, DescribeQuorum times.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Runs synchronous disk work from openraft's async storage calls, in place of the
/// worker on a multi-threaded runtime (its other tasks move away), as the broker's produce
/// path does; directly elsewhere.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
