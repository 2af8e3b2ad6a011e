//! ConsumerGroupHeartbeat (Kafka's `GroupMetadataManager.consumerGroupHeartbeat`): join,
//! heartbeat, subscription changes and leave of KIP-848 members.
//!
//! Every check runs before anything changes, so a refused heartbeat leaves no trace.

use gregor_protocol::kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedTopic;
use gregor_protocol::kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use gregor_protocol::kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::assignor::{self, AssignorMember};
use super::consumer_group::{normalized, ConsumerGroup, ConsumerMember, LEAVE_EPOCH, LEAVE_STATIC_EPOCH};
use super::lifecycle::{arm_session, remove_member, static_leave};
use super::reconcile::Reconcile;
use super::subscription::{self, member_topic_ids};
use super::Partitions;
use crate::shard::{str_bytes, Ctx};
use crate::{
    ConsumerGroupConfig, GroupCoordinatorShard, GroupResponse, Output, Record, RequestMeta, TimerKey, TopicsView,
};

/// A refused heartbeat: Kafka's error and its message.
#[derive(Debug)]
pub(crate) struct Refusal {
    error: ResponseError,
    message: String,
}

fn refuse<T>(error: ResponseError, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal { error, message: message.into() })
}

impl Refusal {
    fn response(self, heartbeat_interval_ms: i32) -> ConsumerGroupHeartbeatResponse {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(self.error.code())
            .with_error_message(Some(str_bytes(&self.message)))
            .with_heartbeat_interval_ms(heartbeat_interval_ms)
    }
}

/// How the heartbeating member relates to the group, decided before anything changes.
#[derive(Debug)]
enum Plan {
    New,
    Existing,
    /// A static member's new incarnation takes over the slot its instance id left (-2).
    ReplaceStatic {
        old_id: String,
    },
}

impl GroupCoordinatorShard {
    /// ConsumerGroupHeartbeat (v0-1). Always answers in the returned outputs, after any
    /// records. `topics` is the broker's current view of every topic.
    pub fn consumer_group_heartbeat(
        &mut self,
        meta: RequestMeta,
        request: ConsumerGroupHeartbeatRequest,
        topics: &TopicsView,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut ctx = Ctx::new(&self.config, now_ms);
        let response = validate_request(&self.config.consumer, meta.api_version, &request)
            .and_then(|()| match request.member_epoch {
                LEAVE_EPOCH | LEAVE_STATIC_EPOCH => self.consumer_leave(&request, &mut ctx),
                _ => self.consumer_heartbeat(&meta, &request, topics, &mut ctx),
            })
            .unwrap_or_else(|refusal| refusal.response(self.config.consumer.heartbeat_interval_ms));
        ctx.respond(meta.id, GroupResponse::ConsumerGroupHeartbeat(response));
        ctx.out
    }

    fn consumer_heartbeat(
        &mut self,
        meta: &RequestMeta,
        request: &ConsumerGroupHeartbeatRequest,
        topics: &TopicsView,
        ctx: &mut Ctx,
    ) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
        let group_id = request.group_id.to_string();
        let replaces_classic = self.check_group_kind(&group_id, request.member_epoch)?;
        let member_id = match request.member_id.as_str() {
            "" => self.new_consumer_member_id(&group_id, ctx.now_ms),
            id => id.to_owned(),
        };
        let plan = plan_member(self.consumer_groups.get(&group_id), &member_id, request, &ctx.config.consumer)?;
        let mut records = Vec::new();
        if replaces_classic {
            // Kafka deletes an empty classic group when a consumer-protocol member claims its id.
            let _ = self.groups.remove(&group_id);
            records.push(Record { key: crate::records::group_metadata_key(&group_id), value: None });
        }
        let mut group = self.consumer_groups.remove(&group_id).unwrap_or_else(|| ConsumerGroup::new(&group_id));
        let mut step = Step { group: &mut group, member_id: &member_id, request, topics, records, ctx };
        let response = step.run(plan, meta);
        let _ = self.consumer_groups.insert(group_id, group);
        Ok(response)
    }

    /// Whether the id may be a consumer group: `Ok(true)` when an empty classic group must
    /// make way for it. Unknown groups only accept joining members.
    fn check_group_kind(&self, group_id: &str, member_epoch: i32) -> Result<bool, Refusal> {
        if let Some(classic) = self.groups.get(group_id) {
            let empty = classic.members.is_empty() && classic.pending_members.is_empty();
            if !empty || member_epoch != 0 {
                return refuse(ResponseError::GroupIdNotFound, format!("Group {group_id} is not a consumer group."));
            }
            return Ok(true);
        }
        if member_epoch != 0 && !self.consumer_groups.contains_key(group_id) {
            return refuse(ResponseError::UnknownMemberId, format!("Group {group_id} not found."));
        }
        Ok(false)
    }

    /// A member id for a v0 member joining without one: UUID-shaped, from a counter and the
    /// clock, so it is deterministic yet not reused after a restart.
    fn new_consumer_member_id(&mut self, group_id: &str, now_ms: i64) -> String {
        loop {
            self.member_id_counter = self.member_id_counter.wrapping_add(1);
            let high = crate::join::splitmix64((now_ms as u64).rotate_left(23) ^ self.member_id_counter);
            let low = crate::join::splitmix64(high ^ self.member_id_counter);
            let id = uuid::Uuid::from_u64_pair(high, low).to_string();
            if !self.consumer_groups.get(group_id).is_some_and(|g| g.members.contains_key(&id)) {
                return id;
            }
        }
    }

    /// A member leaving: -1 for good, -2 (static members) until its session expires.
    fn consumer_leave(
        &mut self,
        request: &ConsumerGroupHeartbeatRequest,
        ctx: &mut Ctx,
    ) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
        let (group_id, member_id) = (request.group_id.as_str(), request.member_id.as_str());
        let Some(group) = self.consumer_groups.get_mut(group_id) else {
            return refuse(ResponseError::UnknownMemberId, format!("Group {group_id} not found."));
        };
        let leaving = match request.instance_id.as_deref() {
            None if group.members.contains_key(member_id) => member_id.to_owned(),
            None => return refuse(ResponseError::UnknownMemberId, unknown_member(member_id, group_id)),
            Some(instance) => static_holder(group, instance, member_id)?,
        };
        if request.member_epoch == LEAVE_STATIC_EPOCH {
            static_leave(group, &leaving, ctx);
        } else {
            remove_member(group, &leaving, ctx);
        }
        Ok(ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(str_bytes(member_id)))
            .with_member_epoch(request.member_epoch)
            .with_heartbeat_interval_ms(ctx.config.consumer.heartbeat_interval_ms))
    }
}

fn unknown_member(member_id: &str, group_id: &str) -> String {
    format!("Member {member_id} is not a member of group {group_id}.")
}

/// Kafka's `throwIfStaticMemberIsUnknown` and `throwIfInstanceIdIsFenced`.
fn static_holder(group: &ConsumerGroup, instance: &str, member_id: &str) -> Result<String, Refusal> {
    match group.static_member(instance) {
        None => refuse(ResponseError::UnknownMemberId, format!("Instance id {instance} is unknown.")),
        Some(holder) if holder.member_id != member_id => refuse(
            ResponseError::FencedInstanceId,
            format!("Static member {member_id} with instance id {instance} is fenced by {}.", holder.member_id),
        ),
        Some(holder) => Ok(holder.member_id.clone()),
    }
}

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`.
fn validate_request(
    config: &ConsumerGroupConfig,
    version: i16,
    request: &ConsumerGroupHeartbeatRequest,
) -> Result<(), Refusal> {
    let invalid = |message: &str| refuse(ResponseError::InvalidRequest, message);
    let epoch = request.member_epoch;
    if request.group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    // v0 lets the coordinator choose the id of a joining member; v1 (KIP-1082) does not.
    if request.member_id.is_empty() && (version >= 1 || epoch != 0) {
        return invalid("MemberId can't be empty.");
    }
    if request.instance_id.as_ref().is_some_and(|i| i.is_empty()) {
        return invalid("InstanceId can't be empty.");
    }
    if request.rack_id.as_ref().is_some_and(|r| r.is_empty()) {
        return invalid("RackId can't be empty.");
    }
    match epoch {
        0 => validate_join(request)?,
        LEAVE_STATIC_EPOCH if request.instance_id.is_none() => return invalid("InstanceId can't be null."),
        e if e < LEAVE_STATIC_EPOCH => return invalid("MemberEpoch is invalid."),
        _ => {}
    }
    if let Some(assignor) = request.server_assignor.as_deref() {
        if !config.assignors.iter().any(|a| a == assignor) || !assignor::is_known(assignor) {
            let supported: Vec<&str> =
                config.assignors.iter().map(String::as_str).filter(|a| assignor::is_known(a)).collect();
            let message =
                format!("ServerAssignor {assignor} is not supported. Supported assignors: {}.", supported.join(", "));
            return refuse(ResponseError::UnsupportedAssignor, message);
        }
    }
    if let Some(pattern) = request.subscribed_topic_regex.as_deref() {
        if let Err(e) = subscription::compile(pattern) {
            return refuse(ResponseError::InvalidRegularExpression, format!("SubscribedTopicRegex was invalid: {e}"));
        }
    }
    Ok(())
}

fn validate_join(request: &ConsumerGroupHeartbeatRequest) -> Result<(), Refusal> {
    let invalid = |message: &str| refuse(ResponseError::InvalidRequest, message);
    if request.rebalance_timeout_ms == -1 {
        return invalid("RebalanceTimeoutMs must be provided in first request.");
    }
    if request.topic_partitions.as_ref().is_none_or(|owned| !owned.is_empty()) {
        return invalid("TopicPartitions must be empty when (re-)joining.");
    }
    if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
        return invalid("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.");
    }
    Ok(())
}

/// Decides who the member is, refusing what Kafka refuses (size, instance ids, epochs).
fn plan_member(
    group: Option<&ConsumerGroup>,
    member_id: &str,
    request: &ConsumerGroupHeartbeatRequest,
    config: &ConsumerGroupConfig,
) -> Result<Plan, Refusal> {
    let group_id = request.group_id.as_str();
    let known = group.and_then(|g| g.members.get(member_id));
    let instance = request.instance_id.as_deref();
    if request.member_epoch == 0 {
        let holder = group.zip(instance).and_then(|(g, i)| g.static_member(i));
        return match holder {
            Some(h) if h.member_id == member_id => Ok(Plan::Existing),
            Some(h) if h.member_epoch == LEAVE_STATIC_EPOCH => Ok(Plan::ReplaceStatic { old_id: h.member_id.clone() }),
            Some(h) => refuse(
                ResponseError::UnreleasedInstanceId,
                format!(
                    "Static member {member_id} with instance id {} cannot join the group because the instance id \
                     is owned by {} member.",
                    instance.unwrap_or_default(),
                    h.member_id
                ),
            ),
            None if known.is_some() => Ok(Plan::Existing),
            None => check_size(group, config),
        };
    }
    let Some(member) = known else {
        return refuse(ResponseError::UnknownMemberId, unknown_member(member_id, group_id));
    };
    if let (Some(g), Some(i)) = (group, instance) {
        let _ = static_holder(g, i, member_id)?;
    }
    check_epoch(member, request.member_epoch, owned_partitions(request).as_ref())?;
    Ok(Plan::Existing)
}

/// Kafka's `throwIfConsumerGroupIsFull`.
fn check_size(group: Option<&ConsumerGroup>, config: &ConsumerGroupConfig) -> Result<Plan, Refusal> {
    let size = group.map_or(0, |g| g.members.len());
    if size >= usize::try_from(config.max_size).unwrap_or(0) {
        let message = format!("The consumer group has reached its maximum capacity of {} members.", config.max_size);
        return refuse(ResponseError::GroupMaxSizeReached, message);
    }
    Ok(Plan::New)
}

/// Kafka's `throwIfMemberEpochIsInvalid`: only the epoch the coordinator knows, or the one
/// before it from a member that lost the response (it then owns no partition outside its
/// current assignment), is accepted.
fn check_epoch(member: &ConsumerMember, received: i32, owned: Option<&Partitions>) -> Result<(), Refusal> {
    let fenced = |relation: &str| {
        refuse(
            ResponseError::FencedMemberEpoch,
            format!(
                "The consumer group member has a {relation} member epoch ({received}) than the one known by the \
                 group coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.member_epoch
            ),
        )
    };
    if received > member.member_epoch {
        return fenced("greater");
    }
    if received < member.member_epoch {
        let subset = owned.is_some_and(|owned| {
            owned.iter().all(|(topic, set)| member.assigned.get(topic).is_some_and(|a| set.is_subset(a)))
        });
        if received != member.previous_member_epoch || !subset {
            return fenced("smaller");
        }
    }
    Ok(())
}

fn owned_partitions(request: &ConsumerGroupHeartbeatRequest) -> Option<Partitions> {
    request.topic_partitions.as_ref().map(|owned: &Vec<OwnedTopic>| {
        let mut out = Partitions::new();
        for t in owned.iter().filter(|t| !t.partitions.is_empty()) {
            out.entry(t.topic_id).or_default().extend(t.partitions.iter().copied());
        }
        out
    })
}

/// One accepted (non-leave) heartbeat being applied to its group.
struct Step<'a> {
    group: &'a mut ConsumerGroup,
    member_id: &'a str,
    request: &'a ConsumerGroupHeartbeatRequest,
    topics: &'a TopicsView,
    records: Vec<Record>,
    ctx: &'a mut Ctx,
}

impl Step<'_> {
    fn run(&mut self, plan: Plan, meta: &RequestMeta) -> ConsumerGroupHeartbeatResponse {
        let old = match plan {
            Plan::New => None,
            Plan::Existing => self.group.members.get(self.member_id).cloned(),
            Plan::ReplaceStatic { old_id } => Some(self.replace_static(&old_id)),
        };
        let mut member = old.clone().unwrap_or_else(|| ConsumerMember::new(self.member_id));
        update_member(&mut member, self.request, meta);
        if old.as_ref().is_none_or(|o| o.metadata_value() != member.metadata_value()) {
            self.records.push(self.group.member_record(&member));
        }
        let subscription_changed = old.as_ref().is_none_or(|o| !o.same_subscription(&member));
        let _ = self.group.members.insert(self.member_id.to_owned(), member);
        self.maybe_bump_and_assign(subscription_changed);
        arm_session(self.group, self.member_id, self.ctx);
        let updated = self.reconcile();
        self.ctx.append(std::mem::take(&mut self.records));
        let lost_response = old.as_ref().is_some_and(|o| self.request.member_epoch < o.member_epoch);
        let changed = old.as_ref().is_none_or(|o| o.assigned != updated.assigned);
        let assignment = (self.is_full_request() || changed || lost_response).then(|| response_assignment(&updated));
        ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(str_bytes(self.member_id)))
            .with_member_epoch(updated.member_epoch)
            .with_heartbeat_interval_ms(self.ctx.config.consumer.heartbeat_interval_ms)
            .with_assignment(assignment)
    }

    /// Kafka's `isFullRequest`: clients send everything when joining or after an error.
    fn is_full_request(&self) -> bool {
        let r = self.request;
        r.member_epoch == 0
            || (r.rebalance_timeout_ms != -1
                && (r.subscribed_topic_names.is_some() || r.subscribed_topic_regex.is_some())
                && r.topic_partitions.is_some())
    }

    /// The old incarnation of the static member goes (tombstones); the new one keeps its
    /// epoch, assignment and target, so the group does not rebalance.
    fn replace_static(&mut self, old_id: &str) -> ConsumerMember {
        let mut member = self.group.members.remove(old_id).unwrap_or_else(|| ConsumerMember::new(old_id));
        let target = self.group.targets.remove(old_id).unwrap_or_default();
        self.records.extend(self.group.member_tombstones(old_id));
        let _ = self.group.session_deadlines.remove(old_id);
        self.ctx.cancel_timer(TimerKey::ConsumerSession { group: self.group.group_id.clone(), member: old_id.into() });
        if self.group.rebalance_deadlines.remove(old_id).is_some() {
            let key = TimerKey::RebalanceTimeout { group: self.group.group_id.clone(), member: old_id.into() };
            self.ctx.cancel_timer(key);
        }
        member.member_id = self.member_id.to_owned();
        self.records.push(self.group.member_record(&member));
        self.records.push(self.group.target_record(self.member_id, &target));
        self.records.push(self.group.assignment_record(&member));
        let _ = self.group.targets.insert(self.member_id.to_owned(), target);
        member
    }

    /// Bumps the group epoch when the subscriptions or their topics changed, then computes
    /// the target assignment of a group epoch that has none yet.
    fn maybe_bump_and_assign(&mut self, subscription_changed: bool) {
        let regexes = subscription::resolve_regexes(self.group.members.values(), self.topics);
        let metadata = subscription::subscribed_metadata(self.group, self.topics, &regexes);
        let hash = subscription::metadata_hash(&metadata);
        if subscription_changed || hash != self.group.metadata_hash {
            self.group.group_epoch = self.group.group_epoch.saturating_add(1);
            self.group.metadata_hash = hash;
            self.records.push(self.group.epoch_record());
        }
        if self.group.group_epoch <= self.group.assignment_epoch {
            self.group.resolved_regexes = regexes;
            return;
        }
        let default = default_assignor(&self.ctx.config.consumer);
        let assignor = self.group.preferred_assignor(default);
        let counts = metadata.values().copied().collect();
        let members: Vec<AssignorMember<'_>> = self
            .group
            .members
            .values()
            .map(|m| AssignorMember {
                member_id: &m.member_id,
                topics: member_topic_ids(m, self.topics, &regexes),
                previous: self.group.targets.get(&m.member_id),
            })
            .collect();
        let targets = assignor::assign(&assignor, &members, &counts);
        for (member_id, target) in &targets {
            if self.group.targets.get(member_id) != Some(target) {
                self.records.push(self.group.target_record(member_id, target));
            }
        }
        self.group.targets = targets;
        self.group.resolved_regexes = regexes;
        self.group.assignment_epoch = self.group.group_epoch;
        self.records.push(self.group.target_metadata_record());
    }

    /// One reconciliation step for the member; arms its rebalance timeout while it must
    /// revoke partitions (Kafka's `maybeReconcile`).
    fn reconcile(&mut self) -> ConsumerMember {
        let Some(current) = self.group.members.get(self.member_id).cloned() else {
            return ConsumerMember::new(self.member_id);
        };
        if current.is_reconciled_to(self.group.assignment_epoch) {
            return current;
        }
        let owned = owned_partitions(self.request);
        let target = self.group.targets.get(self.member_id).cloned().unwrap_or_default();
        let owners = self.group.owners();
        let step = Reconcile {
            target_epoch: self.group.assignment_epoch,
            target: &target,
            owners: &owners,
            owned: owned.as_ref(),
        };
        let updated = step.build(&current);
        if updated == current {
            return current;
        }
        self.records.push(self.group.assignment_record(&updated));
        let key = TimerKey::RebalanceTimeout { group: self.group.group_id.clone(), member: self.member_id.to_owned() };
        if updated.state == super::consumer_group::MemberState::UnrevokedPartitions {
            let deadline = self.ctx.set_timer(key, i64::from(updated.rebalance_timeout_ms));
            let _ = self.group.rebalance_deadlines.insert(self.member_id.to_owned(), deadline);
        } else if self.group.rebalance_deadlines.remove(self.member_id).is_some() {
            self.ctx.cancel_timer(key);
        }
        let _ = self.group.members.insert(self.member_id.to_owned(), updated.clone());
        updated
    }
}

/// The first configured assignor this coordinator implements.
pub(crate) fn default_assignor(config: &ConsumerGroupConfig) -> &str {
    config.assignors.iter().map(String::as_str).find(|a| assignor::is_known(a)).unwrap_or(assignor::UNIFORM)
}

/// Kafka's `ConsumerGroupMember.Builder.maybeUpdate*`: absent fields keep their value.
fn update_member(member: &mut ConsumerMember, request: &ConsumerGroupHeartbeatRequest, meta: &RequestMeta) {
    if let Some(instance) = &request.instance_id {
        member.instance_id = Some(instance.to_string());
    }
    if let Some(rack) = &request.rack_id {
        member.rack_id = Some(rack.to_string());
    }
    if request.rebalance_timeout_ms != -1 {
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    }
    if let Some(assignor) = &request.server_assignor {
        member.server_assignor = Some(assignor.to_string());
    }
    if let Some(names) = &request.subscribed_topic_names {
        member.subscribed_topic_names = normalized(names.iter().map(|n| n.to_string()).collect());
    }
    if let Some(regex) = &request.subscribed_topic_regex {
        // An empty pattern drops the regex subscription (Kafka treats it as "none").
        member.subscribed_topic_regex = Some(regex.to_string()).filter(|r| !r.is_empty());
    }
    member.client_id.clone_from(&meta.client_id);
    member.client_host.clone_from(&meta.client_host);
}

/// What the member may own now: its assigned partitions, without those being revoked.
fn response_assignment(member: &ConsumerMember) -> Assignment {
    let topic_partitions = member
        .assigned
        .iter()
        .map(|(topic, partitions)| {
            TopicPartitions::default().with_topic_id(*topic).with_partitions(partitions.iter().copied().collect())
        })
        .collect();
    Assignment::default().with_topic_partitions(topic_partitions)
}
