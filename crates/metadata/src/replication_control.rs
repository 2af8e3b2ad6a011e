//! The controller's partition-leadership decisions (Kafka's `ReplicationControlManager`
//! and `PartitionChangeBuilder`), pure functions of the image:
//!
//! - a broker that is fenced (missed heartbeats, controlled shutdown) or that registers a
//!   new incarnation (it restarted, its log may be behind) leaves every ISR it is in and
//!   loses the partitions it leads to another **in-sync**, live replica;
//! - a partition without a leader gets one as soon as an in-sync replica is live again;
//! - the ISR changes only through `alter_partition`: the leader's request, accepted when
//!   it names the current leader epoch and partition epoch (KIP-497) and when every
//!   replica it adds is registered, unfenced and of the broker epoch the leader saw
//!   (KIP-903), so a delayed request or a restarted, empty broker cannot join.
//!
//! An ISR is never emptied: the last member stays in it while it is down (the partition
//! is offline, leader -1), so it leads again when it comes back, and no replica that may
//! miss acknowledged records is elected unless the topic sets
//! `unclean.leader.election.enable=true`.

use uuid::Uuid;

use crate::image::{MetadataImage, TopicImage};
use crate::record::{MetadataRecord, PartitionRegistration};
use crate::MetadataError;

/// Kafka's NO_LEADER.
pub const NO_LEADER: i32 = -1;

/// A replica the leader wants in the ISR, with the broker epoch it fetched with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IsrMember {
    pub broker_id: i32,
    pub broker_epoch: i64,
}

/// Kafka's AlterPartition for one partition, as the leader sends it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlterPartition {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<IsrMember>,
}

/// How a broker's state changed, for [`on_broker_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerChange {
    /// Fenced or shutting down: it can neither lead nor stay in sync.
    Fenced,
    /// Registered a new incarnation: alive, but out of every ISR (unless the only one).
    Restarted,
    /// Unfenced: alive again, and electable where it is in the ISR.
    Unfenced,
}

/// Whether `topic` allows electing a replica outside the ISR.
pub type UncleanPolicy<'a> = &'a dyn Fn(&TopicImage) -> bool;

/// The partition records that follow from `broker_id` changing as `change` says: ISR
/// removals and leader elections. `unclean` says per topic whether
/// `unclean.leader.election.enable` is set.
pub fn on_broker_change(
    image: &MetadataImage,
    broker_id: i32,
    change: BrokerChange,
    unclean: UncleanPolicy<'_>,
) -> Vec<MetadataRecord> {
    let live = |b: i32| match change {
        BrokerChange::Fenced if b == broker_id => false,
        BrokerChange::Restarted | BrokerChange::Unfenced if b == broker_id => true,
        _ => image.brokers.get(&b).is_some_and(|r| !r.fenced),
    };
    let removed = (change != BrokerChange::Unfenced).then_some(broker_id);
    let mut records = Vec::new();
    for topic in image.topics() {
        let allow_unclean = unclean(topic);
        for p in topic.partitions.values().filter(|p| p.replicas.contains(&broker_id)) {
            if let Some(next) = rebalance(p, &live, removed, allow_unclean) {
                records.push(MetadataRecord::Partition(next));
            }
        }
    }
    records
}

/// One partition after `removed` left its ISR and with a leader among the live in-sync
/// replicas, or `None` when nothing changes.
fn rebalance(
    p: &PartitionRegistration,
    live: &dyn Fn(i32) -> bool,
    removed: Option<i32>,
    allow_unclean: bool,
) -> Option<PartitionRegistration> {
    let mut next = p.clone();
    if let Some(gone) = removed {
        let shrunk: Vec<i32> = p.isr.iter().copied().filter(|b| *b != gone).collect();
        if !shrunk.is_empty() {
            next.isr = shrunk;
        }
    }
    let leader_gone = p.leader == NO_LEADER || Some(p.leader) == removed || !live(p.leader);
    if leader_gone {
        // Kafka's order: the first replica in the assignment that is in sync and alive.
        let in_sync = p.replicas.iter().copied().find(|b| next.isr.contains(b) && live(*b));
        next.leader = match in_sync {
            Some(b) => b,
            None if allow_unclean => match p.replicas.iter().copied().find(|b| live(*b)) {
                Some(b) => {
                    tracing::warn!(
                        topic_id = %p.topic_id, partition = p.partition, leader = b,
                        "unclean leader election: acknowledged records may be lost"
                    );
                    next.isr = vec![b];
                    b
                }
                None => NO_LEADER,
            },
            None => NO_LEADER,
        };
    }
    // A restarted leader elected again still gets a new epoch: its old in-memory state
    // (followers' positions, waiting produces) is gone.
    let reelected = Some(p.leader) == removed && next.leader == p.leader;
    if next.isr == p.isr && next.leader == p.leader && !reelected {
        return None;
    }
    if next.leader != p.leader || reelected {
        next.leader_epoch += 1;
    }
    next.partition_epoch += 1;
    Some(next)
}

/// Kafka's ElectLeaders election types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ElectionType {
    /// Move leadership back to the first replica of the assignment, if it is in sync.
    Preferred,
    /// Give a leaderless partition a leader, outside the ISR if need be.
    Unclean,
}

/// Why an election did not happen (Kafka's per-partition ElectLeaders errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NoElection {
    UnknownPartition,
    /// ELECTION_NOT_NEEDED: the preferred replica leads, or the partition has a leader.
    NotNeeded,
    /// PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica is down or out of sync.
    PreferredNotAvailable,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE: no live replica at all.
    EligibleNotAvailable,
}

/// An ElectLeaders decision for one partition: its new state, or why there is none.
pub fn elect(
    image: &MetadataImage,
    (topic, partition): (&str, i32),
    election: ElectionType,
) -> Result<PartitionRegistration, NoElection> {
    let p = image.topic(topic).and_then(|t| t.partitions.get(&partition)).ok_or(NoElection::UnknownPartition)?;
    let live = |b: i32| image.brokers.get(&b).is_some_and(|r| !r.fenced);
    let mut next = p.clone();
    match election {
        ElectionType::Preferred => {
            let preferred = *p.replicas.first().ok_or(NoElection::UnknownPartition)?;
            if p.leader == preferred {
                return Err(NoElection::NotNeeded);
            }
            if !p.isr.contains(&preferred) || !live(preferred) {
                return Err(NoElection::PreferredNotAvailable);
            }
            next.leader = preferred;
        }
        ElectionType::Unclean => {
            if p.leader != NO_LEADER && live(p.leader) {
                return Err(NoElection::NotNeeded);
            }
            let in_sync = p.replicas.iter().copied().find(|b| p.isr.contains(b) && live(*b));
            let any = || p.replicas.iter().copied().find(|b| live(*b));
            next.leader = in_sync.or_else(any).ok_or(NoElection::EligibleNotAvailable)?;
            if in_sync.is_none() {
                tracing::warn!(
                    topic,
                    partition,
                    leader = next.leader,
                    "unclean leader election requested: acknowledged records may be lost"
                );
                next.isr = vec![next.leader];
            }
        }
    }
    next.leader_epoch += 1;
    next.partition_epoch += 1;
    Ok(next)
}

/// Partitions whose preferred replica is in sync and alive but does not lead, for
/// `auto.leader.rebalance.enable`: per preferred broker, when more than `imbalance_pct`
/// percent of the partitions it prefers are led by others, all of those.
pub fn imbalanced(image: &MetadataImage, imbalance_pct: i64) -> Vec<(String, i32)> {
    let mut preferred: std::collections::BTreeMap<i32, (usize, Vec<(String, i32)>)> = Default::default();
    for topic in image.topics() {
        for p in topic.partitions.values() {
            let Some(&first) = p.replicas.first() else { continue };
            let entry = preferred.entry(first).or_default();
            entry.0 += 1;
            if p.leader != first && elect(image, (&topic.name, p.partition), ElectionType::Preferred).is_ok() {
                entry.1.push((topic.name.to_string(), p.partition));
            }
        }
    }
    let mut out = Vec::new();
    for (total, moves) in preferred.into_values() {
        if total > 0 && (moves.len() as i64) * 100 > imbalance_pct * total as i64 {
            out.extend(moves);
        }
    }
    out.sort();
    out
}

/// Decides a leader's AlterPartition: the new partition state, or Kafka's reason to refuse.
pub fn alter_partition(
    image: &MetadataImage,
    request: &AlterPartition,
) -> Result<PartitionRegistration, MetadataError> {
    let current = image
        .topic_by_id(&request.topic_id)
        .and_then(|t| t.partitions.get(&request.partition))
        .ok_or_else(|| MetadataError::UnknownTopic(request.topic_id.to_string()))?;
    if request.leader_id != current.leader {
        return Err(MetadataError::NotLeader { leader: current.leader });
    }
    if request.leader_epoch != current.leader_epoch {
        return Err(MetadataError::FencedLeaderEpoch { current: current.leader_epoch });
    }
    if request.partition_epoch != current.partition_epoch {
        return Err(MetadataError::InvalidUpdateVersion { current: current.partition_epoch });
    }
    let isr: Vec<i32> = request.new_isr.iter().map(|m| m.broker_id).collect();
    if !isr.contains(&current.leader) {
        return Err(MetadataError::InvalidIsr("the leader must stay in the ISR".into()));
    }
    for member in &request.new_isr {
        if !current.replicas.contains(&member.broker_id) {
            return Err(MetadataError::InvalidIsr(format!("broker {} is not a replica", member.broker_id)));
        }
        let joining = !current.isr.contains(&member.broker_id);
        if joining {
            eligible(image, member)?;
        }
    }
    let mut next = current.clone();
    next.isr = isr;
    next.partition_epoch += 1;
    // A reassignment completes with the ISR change that brings its last new replica in.
    Ok(crate::reassignment::try_complete(image, next))
}

/// KIP-903: a replica joins the ISR only while registered, unfenced and of the broker epoch
/// it fetched with (a restarted broker has a new epoch and must catch up again).
fn eligible(image: &MetadataImage, member: &IsrMember) -> Result<(), MetadataError> {
    let ineligible = |why: &str| Err(MetadataError::IneligibleReplica(format!("broker {}: {why}", member.broker_id)));
    match image.brokers.get(&member.broker_id) {
        None => ineligible("not registered"),
        Some(b) if b.fenced => ineligible("fenced"),
        Some(b) if b.epoch != member.broker_epoch => ineligible("stale broker epoch"),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
