//! Partition reassignment (KIP-455; Kafka's `PartitionReassignmentReplicas` and
//! `ReplicationControlManager.changePartitionReassignment`), pure functions of the image.
//!
//! A reassignment never removes a replica before its successors are in sync:
//!
//! 1. `alter` with a target: the partition's replicas become the target followed by
//!    the replicas that leave (`removing_replicas`); the new ones (`adding_replicas`)
//!    start as followers outside the ISR and fetch from the leader;
//! 2. the leader adds each new replica to the ISR once it caught up (AlterPartition);
//! 3. when every target replica is in the ISR, `try_complete` (called on every ISR
//!    change) drops the leaving replicas from the replicas and the ISR, and elects a
//!    target replica if the leader was one of them.
//!
//! A cancel (`alter` without a target) goes back to the replicas before the
//! reassignment, as long as one of them is still in the ISR.

use crate::image::MetadataImage;
use crate::record::PartitionRegistration;
use crate::replication_control::NO_LEADER;
use crate::MetadataError;

/// The partition after AlterPartitionReassignments asked to move it to `target`, or to
/// cancel its reassignment (`None`); `Ok(None)` when nothing changes.
pub fn alter(
    image: &MetadataImage,
    (topic, partition): (&str, i32),
    target: Option<&[i32]>,
) -> Result<Option<PartitionRegistration>, MetadataError> {
    let current = image
        .topic(topic)
        .and_then(|t| t.partitions.get(&partition))
        .ok_or_else(|| MetadataError::UnknownPartition { topic: topic.to_owned(), partition })?;
    let next = match target {
        Some(target) => start(image, current, target)?,
        None => cancel(image, current)?,
    };
    Ok((next != *current).then(|| PartitionRegistration { partition_epoch: current.partition_epoch + 1, ..next }))
}

/// Kafka's order: the target replicas, then the current ones that are not in it.
fn start(
    image: &MetadataImage,
    current: &PartitionRegistration,
    target: &[i32],
) -> Result<PartitionRegistration, MetadataError> {
    validate(image, target)?;
    let leaving: Vec<i32> = current.replicas.iter().copied().filter(|b| !target.contains(b)).collect();
    let mut next = current.clone();
    next.adding_replicas = target.iter().copied().filter(|b| !current.replicas.contains(b)).collect();
    next.removing_replicas = leaving.clone();
    next.replicas = target.iter().copied().chain(leaving).collect();
    Ok(try_complete(image, next))
}

fn validate(image: &MetadataImage, target: &[i32]) -> Result<(), MetadataError> {
    let bad = |why: String| Err(MetadataError::InvalidReplicaAssignment(why));
    if target.is_empty() {
        return bad("the target replica list is empty".into());
    }
    if let Some(b) = target.iter().find(|b| !image.brokers.contains_key(b)) {
        return bad(format!("broker {b} is not registered"));
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != target.len() {
        return bad("the target lists a broker twice".into());
    }
    Ok(())
}

/// Back to the replicas from before the reassignment (Kafka's
/// `PartitionRevertReassignment`): the added replicas leave, the removed ones stay.
fn cancel(image: &MetadataImage, current: &PartitionRegistration) -> Result<PartitionRegistration, MetadataError> {
    if !current.is_reassigning() {
        return Err(MetadataError::NoReassignmentInProgress);
    }
    let original: Vec<i32> =
        current.replicas.iter().copied().filter(|b| !current.adding_replicas.contains(b)).collect();
    let isr: Vec<i32> = current.isr.iter().copied().filter(|b| original.contains(b)).collect();
    if isr.is_empty() {
        return Err(MetadataError::InvalidReplicaAssignment(
            "cannot cancel: none of the original replicas is in sync".into(),
        ));
    }
    let mut next = current.clone();
    next.replicas = original;
    next.isr = isr;
    next.adding_replicas.clear();
    next.removing_replicas.clear();
    keep_leader_among_replicas(image, &mut next);
    Ok(next)
}

/// Completes the reassignment once every target replica is in the ISR; otherwise
/// returns the partition unchanged. Called on every ISR change.
pub fn try_complete(image: &MetadataImage, mut p: PartitionRegistration) -> PartitionRegistration {
    if !p.is_reassigning() {
        return p;
    }
    let target = p.target_replicas();
    if !target.iter().all(|b| p.isr.contains(b)) {
        return p;
    }
    p.isr.retain(|b| target.contains(b));
    p.replicas = target;
    p.adding_replicas.clear();
    p.removing_replicas.clear();
    keep_leader_among_replicas(image, &mut p);
    p
}

/// A leader that is no longer a replica hands over to the first live in-sync one (a
/// new leader epoch); none live leaves the partition offline until one returns.
fn keep_leader_among_replicas(image: &MetadataImage, p: &mut PartitionRegistration) {
    if p.replicas.contains(&p.leader) {
        return;
    }
    let live = |b: i32| image.brokers.get(&b).is_some_and(|r| !r.fenced);
    p.leader = p.replicas.iter().copied().find(|b| p.isr.contains(b) && live(*b)).unwrap_or(NO_LEADER);
    p.leader_epoch += 1;
}

/// The partitions with a reassignment in progress, by topic name and partition.
pub fn ongoing(image: &MetadataImage) -> Vec<(String, PartitionRegistration)> {
    let mut out: Vec<(String, PartitionRegistration)> = image
        .topics()
        .flat_map(|t| t.partitions.values().filter(|p| p.is_reassigning()).map(|p| (t.name.to_string(), p.clone())))
        .collect();
    out.sort_by(|a, b| (&a.0, a.1.partition).cmp(&(&b.0, b.1.partition)));
    out
}

#[cfg(test)]
mod tests;
