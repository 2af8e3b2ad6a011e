//! KIP-848 consumer groups (`group.protocol=consumer`): the coordinator computes every
//! member's target assignment itself and walks each member towards it with
//! ConsumerGroupHeartbeat, never letting two members own a partition at once.
//!
//! ```text
//!  heartbeat ──► member joins / changes subscription / topics change ──► group epoch + 1
//!                 └─► group epoch > assignment epoch ──► assignor ──► target assignment
//!                 └─► reconcile the member (Kafka's CurrentAssignmentBuilder):
//!                       revoke first (UNREVOKED_PARTITIONS, epoch kept),
//!                       then take partitions once their owners released them
//!                       (UNRELEASED_PARTITIONS), STABLE at the target epoch
//! ```
//!
//! Every change is one of Kafka's consumer-group records (see [`records`]), appended before
//! the response, so replaying `__consumer_offsets` rebuilds the same groups.

pub(crate) mod assignor;
pub(crate) mod consumer_group;
mod describe;
mod heartbeat;
mod lifecycle;
pub(crate) mod reconcile;
pub(crate) mod records;
mod subscription;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id, as assignments are kept and written.
pub(crate) type Partitions = BTreeMap<Uuid, BTreeSet<i32>>;

pub(crate) use describe::classic_view;
pub(crate) use lifecycle::on_consumer_timer;
