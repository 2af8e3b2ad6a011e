//! How KIP-848 members and groups come and go outside a heartbeat: session and rebalance
//! timeouts, leaving, loading from `__consumer_offsets`, and deletion.

use super::consumer_group::{ConsumerGroup, ConsumerMember, MemberState, LEAVE_EPOCH, LEAVE_STATIC_EPOCH};
use super::records as rec;
use crate::records::RecordKey;
use crate::shard::Ctx;
use crate::{CoordinatorError, GroupCoordinatorShard, TimerKey};

fn session_key(group: &ConsumerGroup, member_id: &str) -> TimerKey {
    TimerKey::ConsumerSession { group: group.group_id.clone(), member: member_id.to_owned() }
}

fn rebalance_key(group: &ConsumerGroup, member_id: &str) -> TimerKey {
    TimerKey::RebalanceTimeout { group: group.group_id.clone(), member: member_id.to_owned() }
}

/// (Re)starts a member's session (`group.consumer.session.timeout.ms`).
pub(crate) fn arm_session(group: &mut ConsumerGroup, member_id: &str, ctx: &mut Ctx) {
    let after = i64::from(ctx.config.consumer.session_timeout_ms);
    let deadline = ctx.set_timer(session_key(group, member_id), after);
    let _ = group.session_deadlines.insert(member_id.to_owned(), deadline);
}

/// Kafka's `removeMember` + epoch bump: the member's records are tombstoned and the group
/// moves to a new epoch, whose target assignment the next heartbeat computes.
pub(crate) fn remove_member(group: &mut ConsumerGroup, member_id: &str, ctx: &mut Ctx) {
    if group.members.remove(member_id).is_none() {
        return;
    }
    let _ = group.targets.remove(member_id);
    if group.session_deadlines.remove(member_id).is_some() {
        ctx.cancel_timer(session_key(group, member_id));
    }
    if group.rebalance_deadlines.remove(member_id).is_some() {
        ctx.cancel_timer(rebalance_key(group, member_id));
    }
    let mut records = group.member_tombstones(member_id);
    group.group_epoch = group.group_epoch.saturating_add(1);
    records.push(group.epoch_record());
    ctx.append(records);
}

/// A static member leaving with epoch -2: it keeps its slot and partitions until its
/// session runs out, so the same instance coming back resumes without a rebalance.
pub(crate) fn static_leave(group: &mut ConsumerGroup, member_id: &str, ctx: &mut Ctx) {
    let Some(member) = group.members.get_mut(member_id) else { return };
    member.member_epoch = LEAVE_STATIC_EPOCH;
    member.pending_revocation.clear();
    member.state = MemberState::Stable;
    let member = member.clone();
    if group.rebalance_deadlines.remove(member_id).is_some() {
        ctx.cancel_timer(rebalance_key(group, member_id));
    }
    let record = group.assignment_record(&member);
    ctx.append(vec![record]);
}

/// A consumer-group timer fired: the member is removed if the deadline it was armed with
/// is still the current one (and, for the rebalance timeout, it still has not revoked).
pub(crate) fn on_consumer_timer(group: &mut ConsumerGroup, key: &TimerKey, ctx: &mut Ctx) {
    let (member_id, deadline) = match key {
        TimerKey::ConsumerSession { member, .. } => (member, group.session_deadlines.get(member)),
        TimerKey::RebalanceTimeout { member, .. } => {
            let revoking = group.members.get(member).is_some_and(|m| m.state == MemberState::UnrevokedPartitions);
            (member, group.rebalance_deadlines.get(member).filter(|_| revoking))
        }
        _ => return,
    };
    if deadline.is_some_and(|d| ctx.now_ms >= *d) {
        tracing::info!(group = %group.group_id, member = %member_id, timer = ?key, "consumer group member expired");
        remove_member(group, &member_id.clone(), ctx);
    }
}

impl GroupCoordinatorShard {
    /// Replays one KIP-848 record; `Ok(false)` if `key` is not one.
    pub(crate) fn replay_consumer(&mut self, key: &RecordKey, value: Option<&[u8]>) -> Result<bool, CoordinatorError> {
        match key {
            RecordKey::ConsumerGroupMetadata { group } => match value {
                Some(v) => {
                    let (epoch, hash) = rec::decode_group_metadata(v)?;
                    let g = self.replayed_group(group);
                    g.group_epoch = epoch;
                    g.metadata_hash = hash;
                }
                None => {
                    let _ = self.consumer_groups.remove(group);
                }
            },
            RecordKey::ConsumerGroupTargetAssignmentMetadata { group } => {
                if let Some(v) = value {
                    let epoch = rec::decode_target_metadata(v)?;
                    self.replayed_group(group).assignment_epoch = epoch;
                }
            }
            RecordKey::ConsumerGroupMember { group, member } => self.replay_member(group, member, value)?,
            RecordKey::ConsumerGroupTargetAssignmentMember { group, member } => match value {
                Some(v) => {
                    let target = rec::decode_target_member(v)?;
                    let _ = self.replayed_group(group).targets.insert(member.clone(), target);
                }
                None => {
                    let _ = self.consumer_groups.get_mut(group).map(|g| g.targets.remove(member));
                }
            },
            RecordKey::ConsumerGroupCurrentAssignment { group, member } => match value {
                Some(v) => {
                    let assignment = rec::decode_current_assignment(v)?;
                    replayed_member(self.replayed_group(group), member).apply_assignment(assignment);
                }
                None => {
                    let m = self.consumer_groups.get_mut(group).and_then(|g| g.members.get_mut(member));
                    if let Some(m) = m {
                        // Kafka's replay: the member is out of the group until its metadata goes too.
                        m.member_epoch = LEAVE_EPOCH;
                        m.assigned.clear();
                        m.pending_revocation.clear();
                    }
                }
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn replay_member(&mut self, group: &str, member: &str, value: Option<&[u8]>) -> Result<(), CoordinatorError> {
        match value {
            Some(v) => {
                let metadata = rec::decode_member(v)?;
                replayed_member(self.replayed_group(group), member).apply_metadata(metadata);
            }
            None => {
                if let Some(g) = self.consumer_groups.get_mut(group) {
                    let _ = g.members.remove(member);
                }
            }
        }
        Ok(())
    }

    /// The consumer group a record belongs to, created if needed. A classic group of the
    /// same id is an older incarnation (Kafka converts empty groups between protocols).
    fn replayed_group(&mut self, group_id: &str) -> &mut ConsumerGroup {
        let _ = self.groups.remove(group_id);
        self.consumer_groups.entry(group_id.to_owned()).or_insert_with(|| ConsumerGroup::new(group_id))
    }

    /// After replay: every member gets a full session, and one that was revoking gets its
    /// rebalance timeout again (Kafka's `onLoaded`).
    pub(crate) fn on_loaded_consumer(&mut self, ctx: &mut Ctx) {
        for group in self.consumer_groups.values_mut() {
            let members: Vec<(String, MemberState, i32)> =
                group.members.values().map(|m| (m.member_id.clone(), m.state, m.rebalance_timeout_ms)).collect();
            for (member_id, state, rebalance_timeout_ms) in members {
                arm_session(group, &member_id, ctx);
                if state == MemberState::UnrevokedPartitions {
                    let deadline = ctx.set_timer(rebalance_key(group, &member_id), i64::from(rebalance_timeout_ms));
                    let _ = group.rebalance_deadlines.insert(member_id, deadline);
                }
            }
        }
    }

    /// Deletes an empty consumer group: tombstones for its records (its offsets are the
    /// caller's). Timers of a group without members are all cancelled already.
    pub(crate) fn delete_consumer_group(&mut self, group_id: &str, ctx: &mut Ctx) {
        if let Some(group) = self.consumer_groups.remove(group_id) {
            ctx.append(group.group_tombstones());
        }
    }
}

fn replayed_member<'a>(group: &'a mut ConsumerGroup, member_id: &str) -> &'a mut ConsumerMember {
    group.members.entry(member_id.to_owned()).or_insert_with(|| ConsumerMember::new(member_id))
}
