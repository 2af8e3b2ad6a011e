//! JoinGroup and the join phase of a rebalance (Kafka's `classicGroupJoin`,
//! `prepareRebalance`, `completeClassicGroupJoin`, `InitialDelayedJoin`).
//!
//! ```text
//!  Empty ──join──► PreparingRebalance ──all joined / Join timer──► CompletingRebalance
//!    ▲                   ▲                                             │ leader SyncGroup
//!    └── no members left ┴──── member joins, leaves, expires ◄──── Stable ◄┘
//! ```

use bytes::Bytes;
use gregor_protocol::kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use gregor_protocol::kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use crate::group::{ClassicGroup, GroupState, InitialDelay, Member, Parked};
use crate::membership::{remove_member_and_update_group, reset_and_propagate_assignment_with_error};
use crate::shard::{group_record, heartbeat_key, str_bytes, Ctx};
use crate::{GroupCoordinatorShard, GroupResponse, Output, RequestMeta, TimerKey};

/// Kafka's `group.classic.new.member.join.timeout`: a new member parked in JoinGroup cannot
/// heartbeat, so a member whose client went away would otherwise hold rebalances forever.
const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 300_000;

/// The generation Kafka reports in failed or not-yet-completed joins.
const UNKNOWN_GENERATION_ID: i32 = -1;

/// JoinGroup fields the coordinator uses, version differences already resolved.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub(crate) parked: Parked,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
}

impl JoinRequest {
    fn new(meta: RequestMeta, request: &JoinGroupRequest) -> Self {
        Self {
            parked: Parked { id: meta.id, api_version: meta.api_version },
            client_id: meta.client_id,
            client_host: meta.client_host,
            member_id: request.member_id.to_string(),
            group_instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
            protocol_type: request.protocol_type.to_string(),
            protocols: request.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
            session_timeout_ms: request.session_timeout_ms,
            // v0 has no rebalance timeout: Kafka uses the session timeout for it.
            rebalance_timeout_ms: if meta.api_version == 0 || request.rebalance_timeout_ms < 0 {
                request.session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            },
        }
    }

    fn requires_known_member_id(&self) -> bool {
        self.parked.api_version >= 4 && self.group_instance_id.is_none()
    }
}

impl GroupCoordinatorShard {
    /// JoinGroup. The response usually comes later, when the join phase completes.
    pub fn join_group(&mut self, meta: RequestMeta, request: JoinGroupRequest, now_ms: i64) -> Vec<Output> {
        let mut ctx = Ctx::new(&self.config, now_ms);
        let group_id = request.group_id.to_string();
        let join = JoinRequest::new(meta, &request);
        // A classic member cannot join a consumer group that has members (Kafka's online
        // migration of such members is not supported); an empty one is deleted to make way
        // for the classic group, as Kafka does. Its offsets stay.
        let consumer_members = self.consumer_groups.get(&group_id).map(|g| g.members.len());
        if consumer_members.is_some_and(|n| n > 0) {
            respond_join_error(&mut ctx, &join.parked, ResponseError::InconsistentGroupProtocol, &join.member_id);
            return ctx.out;
        }
        if let Err(error) = self.validate_join(&group_id, &join) {
            respond_join_error(&mut ctx, &join.parked, error, &join.member_id);
            return ctx.out;
        }
        if consumer_members.is_some() {
            self.delete_consumer_group(&group_id, &mut ctx);
        }
        let existing = self.groups.remove(&group_id);
        let created = existing.is_none();
        let mut group = existing.unwrap_or_else(|| ClassicGroup::new(&group_id, now_ms));
        let new_member_id = join.member_id.is_empty().then(|| self.new_member_id(&group, &join.client_id, now_ms));
        join_group(&mut group, join, new_member_id, &mut ctx);
        // A join refused before anything happened leaves no trace of a group it created.
        let untouched =
            group.state == GroupState::Empty && group.members.is_empty() && group.pending_members.is_empty();
        if !(created && untouched && group.generation_id == 0) {
            let _ = self.groups.insert(group_id, group);
        }
        ctx.out
    }

    fn validate_join(&self, group_id: &str, join: &JoinRequest) -> Result<(), ResponseError> {
        if group_id.is_empty() || group_id.len() > i16::MAX as usize {
            return Err(ResponseError::InvalidGroupId);
        }
        if join.session_timeout_ms < self.config.min_session_timeout_ms
            || join.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        if !join.member_id.is_empty() && !self.groups.contains_key(group_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(())
    }

    /// `<client_id>-<uuid-like suffix>` as Kafka forms member ids. The suffix mixes the clock
    /// with a counter: deterministic for the same inputs, yet not reused after a restart.
    fn new_member_id(&mut self, group: &ClassicGroup, client_id: &str, now_ms: i64) -> String {
        loop {
            self.member_id_counter = self.member_id_counter.wrapping_add(1);
            let high = splitmix64((now_ms as u64).rotate_left(17) ^ self.member_id_counter);
            let low = splitmix64(high ^ self.member_id_counter.wrapping_mul(0x9e37_79b9));
            let id = format!(
                "{client_id}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                high >> 32,
                (high >> 16) & 0xffff,
                high & 0xffff,
                low >> 48,
                low & 0xffff_ffff_ffff
            );
            if !group.members.contains_key(&id) && !group.pending_members.contains_key(&id) {
                return id;
            }
        }
    }
}

pub(crate) fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn join_group(group: &mut ClassicGroup, join: JoinRequest, new_member_id: Option<String>, ctx: &mut Ctx) {
    if !accept_joining_member(group, &join.member_id, ctx.config.max_size) {
        respond_join_error(ctx, &join.parked, ResponseError::GroupMaxSizeReached, &join.member_id);
        if group.members.contains_key(&join.member_id) {
            remove_member_and_update_group(group, &join.member_id, ctx);
        }
        return;
    }
    if !group.supports_protocols(&join.protocol_type, &join.protocols) {
        respond_join_error(ctx, &join.parked, ResponseError::InconsistentGroupProtocol, &join.member_id);
        return;
    }
    match new_member_id {
        Some(member_id) => join_new_member(group, join, member_id, ctx),
        None => join_existing_member(group, join, ctx),
    }
}

/// Kafka's `acceptJoiningMember` (group.max.size): in PreparingRebalance members already
/// waiting are counted, so a lowered max size kicks out the last members to rejoin.
fn accept_joining_member(group: &ClassicGroup, member_id: &str, max_size: i32) -> bool {
    let max_size = usize::try_from(max_size).unwrap_or(0);
    let known = group.members.get(member_id);
    match group.state {
        GroupState::Empty => true,
        GroupState::PreparingRebalance => {
            known.is_some_and(|m| m.awaiting_join.is_some())
                || group.members.values().filter(|m| m.awaiting_join.is_some()).count() < max_size
        }
        GroupState::CompletingRebalance | GroupState::Stable => known.is_some() || group.members.len() < max_size,
    }
}

fn join_new_member(group: &mut ClassicGroup, join: JoinRequest, member_id: String, ctx: &mut Ctx) {
    if let Some(instance) = &join.group_instance_id {
        match group.static_members.get(instance).cloned() {
            Some(old_member_id) => replace_static_member(group, join, old_member_id, member_id, ctx),
            None => add_member_then_rebalance_or_complete_join(group, join, member_id, ctx),
        }
    } else if join.requires_known_member_id() {
        // KIP-394: the member must come back with this id, so a client that never does
        // (crashed between attempts) cannot leave a phantom member in the group.
        let deadline = ctx.set_timer(heartbeat_key(&group.group_id, &member_id), i64::from(join.session_timeout_ms));
        let _ = group.pending_members.insert(member_id.clone(), deadline);
        respond_join_error(ctx, &join.parked, ResponseError::MemberIdRequired, &member_id);
    } else {
        add_member_then_rebalance_or_complete_join(group, join, member_id, ctx);
    }
}

fn join_existing_member(group: &mut ClassicGroup, join: JoinRequest, ctx: &mut Ctx) {
    let member_id = join.member_id.clone();
    if group.pending_members.remove(&member_id).is_some() {
        add_member_then_rebalance_or_complete_join(group, join, member_id, ctx);
        return;
    }
    if let Err(error) = validate_existing_member(group, &member_id, join.group_instance_id.as_deref()) {
        respond_join_error(ctx, &join.parked, error, &member_id);
        return;
    }
    let Some(member) = group.members.get(&member_id) else { return };
    let unchanged = member.matches(&join.protocols);
    match group.state {
        GroupState::PreparingRebalance => update_member_then_rebalance_or_complete_join(group, join, ctx),
        // The member lost our join response: give it again instead of a new rebalance.
        GroupState::CompletingRebalance if unchanged => {
            let response = join_success(group, &member_id, join.parked.api_version, group.is_leader(&member_id), false);
            ctx.respond(join.parked.id, GroupResponse::Join(response));
        }
        // A follower rejoining with the same metadata learns the current generation; a
        // leader or changed metadata (new subscription, KIP-429 owned partitions) rebalances.
        GroupState::Stable if unchanged && !group.is_leader(&member_id) => {
            let response = join_success(group, &member_id, join.parked.api_version, false, false);
            ctx.respond(join.parked.id, GroupResponse::Join(response));
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            update_member_then_rebalance_or_complete_join(group, join, ctx)
        }
        GroupState::Empty => respond_join_error(ctx, &join.parked, ResponseError::UnknownMemberId, &member_id),
    }
}

/// Kafka's `validateExistingMember`: a static member is known by its instance id, and an
/// older member id for that instance is fenced.
pub(crate) fn validate_existing_member(
    group: &ClassicGroup,
    member_id: &str,
    group_instance_id: Option<&str>,
) -> Result<(), ResponseError> {
    match group_instance_id {
        None if group.members.contains_key(member_id) => Ok(()),
        None => Err(ResponseError::UnknownMemberId),
        Some(instance) => match group.static_members.get(instance) {
            None => Err(ResponseError::UnknownMemberId),
            Some(current) if current != member_id => Err(ResponseError::FencedInstanceId),
            Some(_) => Ok(()),
        },
    }
}

fn new_member(group_id: &str, join: &JoinRequest, member_id: String, ctx: &mut Ctx) -> Member {
    let deadline = ctx.set_timer(heartbeat_key(group_id, &member_id), NEW_MEMBER_JOIN_TIMEOUT_MS);
    Member {
        member_id,
        group_instance_id: join.group_instance_id.clone(),
        client_id: join.client_id.clone(),
        client_host: join.client_host.clone(),
        rebalance_timeout_ms: join.rebalance_timeout_ms,
        session_timeout_ms: join.session_timeout_ms,
        protocol_type: join.protocol_type.clone(),
        protocols: join.protocols.clone(),
        assignment: Bytes::new(),
        awaiting_join: Some(join.parked),
        awaiting_sync: None,
        is_new: true,
        join_sequence: 0,
        heartbeat_deadline_ms: deadline,
    }
}

fn add_member_then_rebalance_or_complete_join(
    group: &mut ClassicGroup,
    join: JoinRequest,
    member_id: String,
    ctx: &mut Ctx,
) {
    let member = new_member(&group.group_id, &join, member_id, ctx);
    if group.state == GroupState::PreparingRebalance && group.initial_delay.is_some() {
        group.new_member_added = true;
    }
    group.add_member(member);
    maybe_prepare_rebalance_or_complete_join(group, ctx);
}

fn update_member_then_rebalance_or_complete_join(group: &mut ClassicGroup, join: JoinRequest, ctx: &mut Ctx) {
    let Some(member) = group.members.get_mut(&join.member_id) else { return };
    // A second JoinGroup replaces the first; the superseded one is answered so every
    // request gets exactly one response (its client has already given up on it).
    if let Some(old) = member.awaiting_join.replace(join.parked) {
        respond_join_error(ctx, &old, ResponseError::RebalanceInProgress, &join.member_id);
    }
    member.protocols = join.protocols;
    member.rebalance_timeout_ms = join.rebalance_timeout_ms;
    member.session_timeout_ms = join.session_timeout_ms;
    member.client_id = join.client_id;
    member.client_host = join.client_host;
    maybe_prepare_rebalance_or_complete_join(group, ctx);
}

/// KIP-345: a known group.instance.id joining without a member id takes over the old
/// member (which is fenced) and, in Stable, keeps its assignment without a rebalance
/// unless the group's protocol would change.
fn replace_static_member(group: &mut ClassicGroup, join: JoinRequest, old_id: String, new_id: String, ctx: &mut Ctx) {
    let Some(mut member) = group.members.remove(&old_id) else { return };
    ctx.cancel_timer(heartbeat_key(&group.group_id, &old_id));
    if let Some(old) = member.awaiting_join.take() {
        respond_join_error(ctx, &old, ResponseError::FencedInstanceId, &old_id);
    }
    if let Some(old) = member.awaiting_sync.take() {
        crate::membership::respond_sync_error(ctx, &old, ResponseError::FencedInstanceId);
    }
    if group.pending_sync_members.remove(&old_id) {
        let _ = group.pending_sync_members.insert(new_id.clone());
    }
    if group.is_leader(&old_id) {
        group.leader_id = Some(new_id.clone());
    }
    let key = heartbeat_key(&group.group_id, &new_id);
    member.heartbeat_deadline_ms = ctx.set_timer(key, i64::from(join.session_timeout_ms));
    member.member_id = new_id.clone();
    member.protocols = join.protocols;
    member.rebalance_timeout_ms = join.rebalance_timeout_ms;
    member.session_timeout_ms = join.session_timeout_ms;
    member.awaiting_join = Some(join.parked);
    if let Some(instance) = &member.group_instance_id {
        let _ = group.static_members.insert(instance.clone(), new_id.clone());
    }
    let _ = group.members.insert(new_id.clone(), member);
    match group.state {
        GroupState::Stable if group.select_protocol() == group.protocol_name => {
            ctx.append(vec![group_record(group)]);
            let is_leader = group.is_leader(&new_id);
            let response = join_success(group, &new_id, join.parked.api_version, is_leader, is_leader);
            if let Some(member) = group.members.get_mut(&new_id) {
                member.awaiting_join = None;
            }
            ctx.respond(join.parked.id, GroupResponse::Join(response));
        }
        GroupState::PreparingRebalance => maybe_complete_join_phase(group, ctx),
        _ => maybe_prepare_rebalance_or_complete_join(group, ctx),
    }
}

pub(crate) fn maybe_prepare_rebalance_or_complete_join(group: &mut ClassicGroup, ctx: &mut Ctx) {
    match group.state {
        GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable => prepare_rebalance(group, ctx),
        GroupState::PreparingRebalance => maybe_complete_join_phase(group, ctx),
    }
}

/// Kafka's `prepareRebalance`: parked syncs are told to rejoin; an empty group's first
/// rebalance waits the initial delay so a burst of starting consumers lands in one
/// generation.
pub(crate) fn prepare_rebalance(group: &mut ClassicGroup, ctx: &mut Ctx) {
    if group.state == GroupState::CompletingRebalance {
        reset_and_propagate_assignment_with_error(group, ResponseError::RebalanceInProgress, ctx);
    }
    if group.sync_deadline_ms.take().is_some() {
        ctx.cancel_timer(TimerKey::Sync { group: group.group_id.clone() });
    }
    let initial = group.state == GroupState::Empty;
    group.transition_to(GroupState::PreparingRebalance, ctx.now_ms);
    if initial {
        let delay_ms = ctx.config.initial_rebalance_delay_ms.max(0);
        let remaining_ms = group.rebalance_timeout_ms().saturating_sub(delay_ms).max(0);
        group.initial_delay = Some(InitialDelay { delay_ms, remaining_ms });
        group.new_member_added = false;
        arm_join_timer(group, i64::from(delay_ms), ctx);
    } else if group.has_all_members_joined() {
        complete_join(group, ctx);
    } else {
        arm_join_timer(group, i64::from(group.rebalance_timeout_ms()), ctx);
    }
}

fn arm_join_timer(group: &mut ClassicGroup, after_ms: i64, ctx: &mut Ctx) {
    group.join_deadline_ms = Some(ctx.set_timer(TimerKey::Join { group: group.group_id.clone() }, after_ms));
}

/// Completes the join phase early once everyone is in, except during the initial delay,
/// which exists precisely to wait for members that have not shown up yet.
pub(crate) fn maybe_complete_join_phase(group: &mut ClassicGroup, ctx: &mut Ctx) {
    if group.state == GroupState::PreparingRebalance && group.has_all_members_joined() && group.initial_delay.is_none()
    {
        complete_join(group, ctx);
    }
}

/// The Join timer: the initial delay is extended while members keep arriving (up to the
/// rebalance timeout); otherwise the phase ends and stragglers are dropped.
pub(crate) fn on_join_timer(group: &mut ClassicGroup, ctx: &mut Ctx) {
    if group.join_deadline_ms.is_none_or(|deadline| ctx.now_ms < deadline) {
        return;
    }
    group.join_deadline_ms = None;
    if let Some(delay) = group.initial_delay {
        if group.new_member_added && delay.remaining_ms > 0 {
            group.new_member_added = false;
            let next = delay.delay_ms.min(delay.remaining_ms);
            group.initial_delay = Some(InitialDelay {
                delay_ms: next,
                remaining_ms: delay.remaining_ms.saturating_sub(delay.delay_ms).max(0),
            });
            arm_join_timer(group, i64::from(next), ctx);
            return;
        }
    }
    complete_join(group, ctx);
}

/// Kafka's `completeClassicGroupJoin`: members that did not rejoin are removed, the next
/// generation starts, and every parked join is answered (the leader gets the members).
pub(crate) fn complete_join(group: &mut ClassicGroup, ctx: &mut Ctx) {
    if group.state != GroupState::PreparingRebalance {
        return;
    }
    if group.join_deadline_ms.take().is_some() {
        ctx.cancel_timer(TimerKey::Join { group: group.group_id.clone() });
    }
    group.initial_delay = None;
    group.new_member_added = false;
    let stragglers: Vec<String> =
        group.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.member_id.clone()).collect();
    for member_id in stragglers {
        let _ = group.remove_member(&member_id);
        ctx.cancel_timer(heartbeat_key(&group.group_id, &member_id));
    }
    group.generation_id = group.generation_id.wrapping_add(1);
    group.pending_sync_members.clear();
    if group.members.is_empty() {
        group.protocol_name = None;
        group.transition_to(GroupState::Empty, ctx.now_ms);
        ctx.append(vec![group_record(group)]);
        return;
    }
    group.protocol_name = group.select_protocol();
    group.transition_to(GroupState::CompletingRebalance, ctx.now_ms);
    let member_ids: Vec<String> = group.members.keys().cloned().collect();
    for member_id in member_ids {
        answer_completed_join(group, &member_id, ctx);
    }
    let sync_key = TimerKey::Sync { group: group.group_id.clone() };
    group.sync_deadline_ms = Some(ctx.set_timer(sync_key, i64::from(group.rebalance_timeout_ms())));
}

fn answer_completed_join(group: &mut ClassicGroup, member_id: &str, ctx: &mut Ctx) {
    let Some(parked) = group.members.get(member_id).and_then(|m| m.awaiting_join) else { return };
    let response = join_success(group, member_id, parked.api_version, group.is_leader(member_id), false);
    ctx.respond(parked.id, GroupResponse::Join(response));
    let _ = group.pending_sync_members.insert(member_id.to_owned());
    let key = heartbeat_key(&group.group_id, member_id);
    if let Some(member) = group.members.get_mut(member_id) {
        member.awaiting_join = None;
        member.is_new = false;
        member.heartbeat_deadline_ms = ctx.set_timer(key, i64::from(member.session_timeout_ms));
    }
}

/// A successful JoinGroup response of the current generation, with only the fields
/// `version` can carry (kafka-protocol refuses to encode the others).
fn join_success(
    group: &ClassicGroup,
    member_id: &str,
    version: i16,
    with_members: bool,
    skip: bool,
) -> JoinGroupResponse {
    let protocol = group.protocol_name.as_deref();
    let members = if with_members {
        group
            .members
            .values()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(str_bytes(&m.member_id))
                    .with_group_instance_id(if version >= 5 {
                        m.group_instance_id.as_deref().map(str_bytes)
                    } else {
                        None
                    })
                    .with_metadata(m.metadata(protocol))
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinGroupResponse::default()
        .with_generation_id(group.generation_id)
        .with_protocol_type(if version >= 7 { group.protocol_type.as_deref().map(str_bytes) } else { None })
        .with_protocol_name(protocol_name_for(version, protocol))
        .with_leader(str_bytes(group.leader_id.as_deref().unwrap_or("")))
        .with_skip_assignment(skip && version >= 9)
        .with_member_id(str_bytes(member_id))
        .with_members(members)
}

/// protocol_name is nullable only from v7; older clients get "" (Kafka's NoProtocol).
fn protocol_name_for(
    version: i16,
    protocol: Option<&str>,
) -> Option<gregor_protocol::kafka_protocol::protocol::StrBytes> {
    match protocol {
        Some(p) => Some(str_bytes(p)),
        None if version >= 7 => None,
        None => Some(str_bytes("")),
    }
}

pub(crate) fn respond_join_error(ctx: &mut Ctx, parked: &Parked, error: ResponseError, member_id: &str) {
    let response = JoinGroupResponse::default()
        .with_error_code(error.code())
        .with_generation_id(UNKNOWN_GENERATION_ID)
        .with_protocol_name(protocol_name_for(parked.api_version, None))
        .with_member_id(str_bytes(member_id));
    ctx.respond(parked.id, GroupResponse::Join(response));
}
