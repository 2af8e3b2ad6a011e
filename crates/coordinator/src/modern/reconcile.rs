//! Kafka's `CurrentAssignmentBuilder`: one step of a member towards its target assignment.
//!
//! A member first gives up what its target no longer holds (it stays at its epoch, in
//! UNREVOKED_PARTITIONS, until a heartbeat shows it no longer owns them); then it takes
//! the new partitions nobody holds any more and moves to the target epoch, waiting in
//! UNRELEASED_PARTITIONS for those other members still hold. So no partition is ever held
//! by two members at once.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::consumer_group::{ConsumerMember, MemberState};
use super::Partitions;

/// Inputs of one reconciliation step.
#[derive(Debug)]
pub(crate) struct Reconcile<'a> {
    pub(crate) target_epoch: i32,
    pub(crate) target: &'a Partitions,
    /// Who holds each partition now (assigned or pending revocation).
    pub(crate) owners: &'a BTreeMap<(Uuid, i32), &'a str>,
    /// What the member reported owning; `None` when the heartbeat did not say.
    pub(crate) owned: Option<&'a Partitions>,
}

impl Reconcile<'_> {
    /// Kafka's `CurrentAssignmentBuilder.build`.
    pub(crate) fn build(&self, member: &ConsumerMember) -> ConsumerMember {
        match member.state {
            MemberState::Stable if member.member_epoch != self.target_epoch => {
                self.next_assignment(member, member.member_epoch)
            }
            MemberState::Stable => member.clone(),
            MemberState::UnrevokedPartitions => {
                if self.owns_any(&member.pending_revocation) {
                    return member.clone();
                }
                // Revocation acknowledged: the member may move past the epoch it was held at.
                self.next_assignment(member, member.member_epoch.saturating_add(1))
            }
            MemberState::UnreleasedPartitions => self.next_assignment(member, member.member_epoch),
            MemberState::Unknown => self.next_assignment(member, self.target_epoch),
        }
    }

    /// Kafka's `ownsRevokedPartitions`: without a report the member is assumed to still own
    /// them, since revoking is only ever confirmed by the member itself.
    fn owns_any(&self, partitions: &Partitions) -> bool {
        let Some(owned) = self.owned else { return true };
        owned.iter().any(|(topic, set)| partitions.get(topic).is_some_and(|revoke| !revoke.is_disjoint(set)))
    }

    /// Kafka's `computeNextAssignment`.
    fn next_assignment(&self, member: &ConsumerMember, epoch_if_revoking: i32) -> ConsumerMember {
        let mut assigned = Partitions::new();
        let mut revoking = Partitions::new();
        let mut adding = Partitions::new();
        let mut unreleased = false;
        let topics: BTreeSet<&Uuid> = self.target.keys().chain(member.assigned.keys()).collect();
        let empty = BTreeSet::new();
        for topic in topics {
            let target = self.target.get(topic).unwrap_or(&empty);
            let current = member.assigned.get(topic).unwrap_or(&empty);
            let keep: BTreeSet<i32> = current.intersection(target).copied().collect();
            let revoke: BTreeSet<i32> = current.difference(&keep).copied().collect();
            let mut add: BTreeSet<i32> = target.difference(&keep).copied().collect();
            let before = add.len();
            add.retain(|p| self.owners.get(&(*topic, *p)).is_none_or(|owner| *owner == member.member_id));
            unreleased |= add.len() != before;
            for (map, set) in [(&mut assigned, keep), (&mut revoking, revoke), (&mut adding, add)] {
                if !set.is_empty() {
                    let _ = map.insert(*topic, set);
                }
            }
        }
        let mut next = member.clone();
        next.pending_revocation = Partitions::new();
        if !revoking.is_empty() && self.owns_any(&revoking) {
            next.state = MemberState::UnrevokedPartitions;
            set_epoch(&mut next, epoch_if_revoking);
            next.assigned = assigned;
            next.pending_revocation = revoking;
            return next;
        }
        for (topic, set) in adding {
            assigned.entry(topic).or_default().extend(set);
        }
        next.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
        set_epoch(&mut next, self.target_epoch);
        next.assigned = assigned;
        next
    }
}

/// Kafka's builder always shifts the previous epoch; here only a real change does, so a
/// member that lost the response to a re-sent (unchanged) epoch can still come back with
/// the epoch before it.
fn set_epoch(member: &mut ConsumerMember, epoch: i32) {
    if member.member_epoch != epoch {
        member.update_epoch(epoch);
    }
}
