//! SyncGroup, Heartbeat and LeaveGroup, and what happens when a member goes away
//! (Kafka's `classicGroupSync`, `classicGroupHeartbeat`, `classicGroupLeave`,
//! `removeMemberAndUpdateClassicGroup`).

use std::collections::BTreeMap;

use bytes::Bytes;
use gregor_protocol::kafka_protocol::messages::leave_group_response::MemberResponse;
use gregor_protocol::kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use gregor_protocol::kafka_protocol::ResponseError;

use crate::group::{ClassicGroup, GroupState, Parked};
use crate::join::{maybe_complete_join_phase, prepare_rebalance, respond_join_error, validate_existing_member};
use crate::shard::{group_record, heartbeat_key, str_bytes, Ctx};
use crate::{GroupCoordinatorShard, GroupResponse, Output, RequestMeta, TimerKey};

impl GroupCoordinatorShard {
    /// SyncGroup. Followers wait (the response comes with the leader's sync); the leader's
    /// assignments are written as the group's metadata record before anyone is answered.
    pub fn sync_group(&mut self, meta: RequestMeta, request: SyncGroupRequest, now_ms: i64) -> Vec<Output> {
        let mut ctx = Ctx::new(&self.config, now_ms);
        let parked = Parked { id: meta.id, api_version: meta.api_version };
        let Some(group) = self.groups.get_mut(request.group_id.as_str()) else {
            respond_sync_error(&mut ctx, &parked, ResponseError::UnknownMemberId);
            return ctx.out;
        };
        if let Err(error) = validate_sync(group, &request) {
            respond_sync_error(&mut ctx, &parked, error);
            return ctx.out;
        }
        let member_id = request.member_id.to_string();
        match group.state {
            GroupState::Empty => respond_sync_error(&mut ctx, &parked, ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => respond_sync_error(&mut ctx, &parked, ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance => sync_completing(group, &member_id, parked, &request, &mut ctx),
            GroupState::Stable => {
                remove_pending_sync_member(group, &member_id, &mut ctx);
                let assignment = group.members.get(&member_id).map(|m| m.assignment.clone()).unwrap_or_default();
                respond_sync(group, &member_id, parked, assignment, &mut ctx);
            }
        }
        ctx.out
    }

    /// Heartbeat: renews the member's session and tells it whether a rebalance is on.
    pub fn heartbeat(&mut self, meta: RequestMeta, request: HeartbeatRequest, now_ms: i64) -> Vec<Output> {
        let mut ctx = Ctx::new(&self.config, now_ms);
        let error = match self.groups.get_mut(request.group_id.as_str()) {
            None => Some(ResponseError::UnknownMemberId),
            Some(group) => heartbeat(group, &request, &mut ctx).err(),
        };
        let response = HeartbeatResponse::default().with_error_code(error.map_or(0, |e| e.code()));
        ctx.respond(meta.id, GroupResponse::Heartbeat(response));
        ctx.out
    }

    /// LeaveGroup: one member (v0-2) or a batch, static members by instance id (v3+).
    pub fn leave_group(&mut self, meta: RequestMeta, request: LeaveGroupRequest, now_ms: i64) -> Vec<Output> {
        let mut ctx = Ctx::new(&self.config, now_ms);
        let Some(group) = self.groups.get_mut(request.group_id.as_str()) else {
            let response = LeaveGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code());
            ctx.respond(meta.id, GroupResponse::Leave(response));
            return ctx.out;
        };
        let response = if meta.api_version < 3 {
            let error = leave_one(group, request.member_id.as_str(), None, &mut ctx);
            LeaveGroupResponse::default().with_error_code(error)
        } else {
            let members = request
                .members
                .iter()
                .map(|m| {
                    let instance = m.group_instance_id.as_ref().map(|i| i.as_str());
                    MemberResponse::default()
                        .with_member_id(m.member_id.clone())
                        .with_group_instance_id(m.group_instance_id.clone())
                        .with_error_code(leave_one(group, m.member_id.as_str(), instance, &mut ctx))
                })
                .collect();
            LeaveGroupResponse::default().with_members(members)
        };
        ctx.respond(meta.id, GroupResponse::Leave(response));
        self.drop_if_unused(request.group_id.as_str());
        ctx.out
    }
}

fn validate_sync(group: &ClassicGroup, request: &SyncGroupRequest) -> Result<(), ResponseError> {
    let instance = request.group_instance_id.as_ref().map(|i| i.as_str());
    validate_existing_member(group, request.member_id.as_str(), instance)?;
    if request.generation_id != group.generation_id {
        return Err(ResponseError::IllegalGeneration);
    }
    let type_differs =
        request.protocol_type.as_ref().is_some_and(|t| group.protocol_type.as_deref() != Some(t.as_str()));
    let name_differs =
        request.protocol_name.as_ref().is_some_and(|n| group.protocol_name.as_deref() != Some(n.as_str()));
    if type_differs || name_differs {
        return Err(ResponseError::InconsistentGroupProtocol);
    }
    Ok(())
}

/// SyncGroup while the group waits for its leader: park the request; the leader's sync
/// persists the assignments, answers everyone parked, and makes the group Stable.
fn sync_completing(
    group: &mut ClassicGroup,
    member_id: &str,
    parked: Parked,
    request: &SyncGroupRequest,
    ctx: &mut Ctx,
) {
    let Some(member) = group.members.get_mut(member_id) else { return };
    if let Some(old) = member.awaiting_sync.replace(parked) {
        respond_sync_error(ctx, &old, ResponseError::RebalanceInProgress);
    }
    remove_pending_sync_member(group, member_id, ctx);
    if !group.is_leader(member_id) {
        return;
    }
    let assignments: BTreeMap<&str, &Bytes> =
        request.assignments.iter().map(|a| (a.member_id.as_str(), &a.assignment)).collect();
    // Members the leader left out get an empty assignment (Kafka does the same).
    for member in group.members.values_mut() {
        member.assignment = assignments.get(member.member_id.as_str()).map(|a| (*a).clone()).unwrap_or_default();
    }
    group.transition_to(GroupState::Stable, ctx.now_ms);
    ctx.append(vec![group_record(group)]);
    let waiting: Vec<(String, Parked)> =
        group.members.values_mut().filter_map(|m| m.awaiting_sync.take().map(|p| (m.member_id.clone(), p))).collect();
    for (id, parked) in waiting {
        let assignment = group.members.get(&id).map(|m| m.assignment.clone()).unwrap_or_default();
        respond_sync(group, &id, parked, assignment, ctx);
    }
}

fn remove_pending_sync_member(group: &mut ClassicGroup, member_id: &str, ctx: &mut Ctx) {
    if group.pending_sync_members.remove(member_id)
        && group.pending_sync_members.is_empty()
        && group.sync_deadline_ms.take().is_some()
    {
        ctx.cancel_timer(TimerKey::Sync { group: group.group_id.clone() });
    }
}

/// Answers a sync with the member's assignment and starts its session afresh.
fn respond_sync(group: &mut ClassicGroup, member_id: &str, parked: Parked, assignment: Bytes, ctx: &mut Ctx) {
    let v5 = parked.api_version >= 5;
    let response = SyncGroupResponse::default()
        .with_protocol_type(if v5 { group.protocol_type.as_deref().map(str_bytes) } else { None })
        .with_protocol_name(if v5 { group.protocol_name.as_deref().map(str_bytes) } else { None })
        .with_assignment(assignment);
    ctx.respond(parked.id, GroupResponse::Sync(response));
    let key = heartbeat_key(&group.group_id, member_id);
    if let Some(member) = group.members.get_mut(member_id) {
        member.heartbeat_deadline_ms = ctx.set_timer(key, i64::from(member.session_timeout_ms));
    }
}

pub(crate) fn respond_sync_error(ctx: &mut Ctx, parked: &Parked, error: ResponseError) {
    let response = SyncGroupResponse::default().with_error_code(error.code());
    ctx.respond(parked.id, GroupResponse::Sync(response));
}

/// Kafka's `resetAndPropagateAssignmentWithError`: a rebalance interrupted the sync phase.
pub(crate) fn reset_and_propagate_assignment_with_error(group: &mut ClassicGroup, error: ResponseError, ctx: &mut Ctx) {
    for member in group.members.values_mut() {
        member.assignment = Bytes::new();
        if let Some(parked) = member.awaiting_sync.take() {
            respond_sync_error(ctx, &parked, error);
        }
    }
}

fn heartbeat(group: &mut ClassicGroup, request: &HeartbeatRequest, ctx: &mut Ctx) -> Result<(), ResponseError> {
    let member_id = request.member_id.as_str();
    validate_existing_member(group, member_id, request.group_instance_id.as_ref().map(|i| i.as_str()))?;
    if request.generation_id != group.generation_id {
        return Err(ResponseError::IllegalGeneration);
    }
    if group.state == GroupState::Empty {
        return Err(ResponseError::UnknownMemberId);
    }
    let key = heartbeat_key(&group.group_id, member_id);
    if let Some(member) = group.members.get_mut(member_id) {
        member.heartbeat_deadline_ms = ctx.set_timer(key, i64::from(member.session_timeout_ms));
    }
    if group.state == GroupState::PreparingRebalance {
        return Err(ResponseError::RebalanceInProgress);
    }
    Ok(())
}

/// One member of a LeaveGroup; returns its error code.
fn leave_one(group: &mut ClassicGroup, member_id: &str, instance: Option<&str>, ctx: &mut Ctx) -> i16 {
    let target = match instance {
        None => {
            if group.pending_members.remove(member_id).is_some() {
                ctx.cancel_timer(heartbeat_key(&group.group_id, member_id));
                maybe_complete_join_phase(group, ctx);
                return 0;
            }
            if !group.members.contains_key(member_id) {
                return ResponseError::UnknownMemberId.code();
            }
            member_id.to_owned()
        }
        Some(instance) => match group.static_members.get(instance) {
            None => return ResponseError::UnknownMemberId.code(),
            // An empty member id leaves by instance id alone (admin "remove members").
            Some(current) if !member_id.is_empty() && current != member_id => {
                return ResponseError::FencedInstanceId.code()
            }
            Some(current) => current.clone(),
        },
    };
    remove_member_and_update_group(group, &target, ctx);
    0
}

/// Removes a member (its parked requests are answered UNKNOWN_MEMBER_ID) and rebalances,
/// or completes the running join phase if it only waited for this member.
pub(crate) fn remove_member_and_update_group(group: &mut ClassicGroup, member_id: &str, ctx: &mut Ctx) {
    let Some(member) = group.remove_member(member_id) else { return };
    ctx.cancel_timer(heartbeat_key(&group.group_id, member_id));
    if let Some(parked) = member.awaiting_join {
        respond_join_error(ctx, &parked, ResponseError::UnknownMemberId, member_id);
    }
    if let Some(parked) = member.awaiting_sync {
        respond_sync_error(ctx, &parked, ResponseError::UnknownMemberId);
    }
    match group.state {
        GroupState::Empty => {}
        GroupState::Stable | GroupState::CompletingRebalance => prepare_rebalance(group, ctx),
        GroupState::PreparingRebalance => maybe_complete_join_phase(group, ctx),
    }
}

/// A session timer fired. Members parked in a join or sync are covered by the rebalance
/// timers instead (except new members, which exist to be expired this way).
pub(crate) fn on_heartbeat_expired(group: &mut ClassicGroup, member_id: &str, ctx: &mut Ctx) {
    if let Some(deadline) = group.pending_members.get(member_id).copied() {
        if ctx.now_ms >= deadline {
            let _ = group.pending_members.remove(member_id);
            maybe_complete_join_phase(group, ctx);
        }
        return;
    }
    let Some(member) = group.members.get(member_id) else { return };
    if ctx.now_ms < member.heartbeat_deadline_ms {
        return;
    }
    let parked = member.awaiting_join.is_some() || member.awaiting_sync.is_some();
    if member.is_new || !parked {
        remove_member_and_update_group(group, member_id, ctx);
    }
}

/// The sync phase timed out: members that never synced are removed and the group
/// rebalances without them.
pub(crate) fn on_sync_timer(group: &mut ClassicGroup, ctx: &mut Ctx) {
    if group.sync_deadline_ms.is_none_or(|deadline| ctx.now_ms < deadline) {
        return;
    }
    group.sync_deadline_ms = None;
    if !matches!(group.state, GroupState::CompletingRebalance | GroupState::Stable) {
        return;
    }
    let missing: Vec<String> = std::mem::take(&mut group.pending_sync_members).into_iter().collect();
    if missing.is_empty() {
        return;
    }
    for member_id in &missing {
        if group.remove_member(member_id).is_some() {
            ctx.cancel_timer(heartbeat_key(&group.group_id, member_id));
        }
    }
    prepare_rebalance(group, ctx);
}
