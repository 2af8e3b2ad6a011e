//! Kafka's `ClassicGroup` and `ClassicGroupMember`: the in-memory state of one group of the
//! classic (JoinGroup/SyncGroup) protocol, and its `GroupMetadataValue` record form.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::records::{subscription_topics, GroupValue, MemberValue};
use crate::RequestId;

/// Kafka's `ClassicGroupState`. Dead groups are dropped from the shard instead of kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// The names ListGroups and DescribeGroups report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// A request the shard answers later (a JoinGroup or SyncGroup parked in the group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parked {
    pub(crate) id: RequestId,
    pub(crate) api_version: i16,
}

/// Kafka's `ClassicGroupMember`.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) protocol_type: String,
    /// Supported protocols (name, metadata) in the member's order of preference.
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) assignment: Bytes,
    pub(crate) awaiting_join: Option<Parked>,
    pub(crate) awaiting_sync: Option<Parked>,
    /// Joined but not yet through a completed join phase: its session is the new-member
    /// join timeout, and it expires even while awaiting join.
    pub(crate) is_new: bool,
    /// Join order, so "the first member that joined" becomes leader deterministically.
    pub(crate) join_sequence: u64,
    /// When the session timer armed for this member fires; earlier firings are stale.
    pub(crate) heartbeat_deadline_ms: i64,
}

impl Member {
    /// The member's metadata for `protocol`, empty if it does not support it.
    pub(crate) fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(name, _)| name == p))
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Kafka's `ClassicGroupMember.matches`: same protocols, same metadata, same order.
    pub(crate) fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

/// Kafka's `InitialDelayedJoin` parameters: the first rebalance of an empty group waits
/// `delay_ms`, extended while new members keep arriving, up to the rebalance timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InitialDelay {
    pub(crate) delay_ms: i32,
    pub(crate) remaining_ms: i32,
}

/// Kafka's `ClassicGroup`.
#[derive(Debug, Clone)]
pub(crate) struct ClassicGroup {
    pub(crate) group_id: String,
    pub(crate) state: GroupState,
    pub(crate) current_state_timestamp_ms: Option<i64>,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) generation_id: i32,
    pub(crate) leader_id: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// group_instance_id → current member id (KIP-345).
    pub(crate) static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED that have not joined with them yet,
    /// with the deadline of their session timer.
    pub(crate) pending_members: BTreeMap<String, i64>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub(crate) pending_sync_members: BTreeSet<String>,
    pub(crate) new_member_added: bool,
    pub(crate) initial_delay: Option<InitialDelay>,
    /// Deadlines of the armed Join and Sync timers; a firing that does not match is stale.
    pub(crate) join_deadline_ms: Option<i64>,
    pub(crate) sync_deadline_ms: Option<i64>,
    pub(crate) next_join_sequence: u64,
}

impl ClassicGroup {
    pub(crate) fn new(group_id: &str, now_ms: i64) -> Self {
        Self {
            group_id: group_id.to_owned(),
            state: GroupState::Empty,
            current_state_timestamp_ms: Some(now_ms),
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync_members: BTreeSet::new(),
            new_member_added: false,
            initial_delay: None,
            join_deadline_ms: None,
            sync_deadline_ms: None,
            next_join_sequence: 0,
        }
    }

    pub(crate) fn transition_to(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.current_state_timestamp_ms = Some(now_ms);
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// Adds a member; the first member fixes the protocol type and becomes leader.
    pub(crate) fn add_member(&mut self, mut member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone()).filter(|t| !t.is_empty());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            let _ = self.static_members.insert(instance.clone(), member.member_id.clone());
        }
        member.join_sequence = self.next_join_sequence;
        self.next_join_sequence = self.next_join_sequence.wrapping_add(1);
        let _ = self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member; if it led the group, the earliest-joined remaining member leads.
    pub(crate) fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                let _ = self.static_members.remove(instance);
            }
        }
        let _ = self.pending_sync_members.remove(member_id);
        if self.is_leader(member_id) {
            self.leader_id = self.members.values().min_by_key(|m| m.join_sequence).map(|m| m.member_id.clone());
        }
        Some(member)
    }

    /// Kafka's `hasAllMembersJoined`: pending (MEMBER_ID_REQUIRED) members hold the phase open.
    pub(crate) fn has_all_members_joined(&self) -> bool {
        self.members.values().all(|m| m.awaiting_join.is_some()) && self.pending_members.is_empty()
    }

    /// The join phase lasts as long as the most patient member allows.
    pub(crate) fn rebalance_timeout_ms(&self) -> i32 {
        self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0)
    }

    /// Kafka's `supportsProtocols`: an empty group accepts any non-empty type and list;
    /// otherwise the type must match and one of `protocols` must be supported by everyone.
    pub(crate) fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.protocols.iter().any(|(p, _)| p == name)))
    }

    /// Kafka's `selectProtocol`: every member votes for its most preferred protocol that all
    /// members support; most votes wins. Ties go to the earliest-joined member's preference
    /// (Kafka leaves them to hash order) so the choice is deterministic.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let mut by_join: Vec<&Member> = self.members.values().collect();
        by_join.sort_by_key(|m| m.join_sequence);
        let supported_by_all = |name: &str| by_join.iter().all(|m| m.protocols.iter().any(|(p, _)| p == name));
        let mut votes: Vec<(String, usize)> = Vec::new();
        for member in &by_join {
            let Some((choice, _)) = member.protocols.iter().find(|(p, _)| supported_by_all(p)) else { continue };
            match votes.iter_mut().find(|(p, _)| p == choice) {
                Some((_, count)) => *count += 1,
                None => votes.push((choice.clone(), 1)),
            }
        }
        let best = votes.iter().map(|(_, c)| *c).max()?;
        votes.into_iter().find(|(_, c)| *c == best).map(|(p, _)| p)
    }

    /// Topics the members subscribe to, when the group is a consumer group whose
    /// subscriptions all decode; `None` means "unknown" (nothing is treated as subscribed).
    pub(crate) fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.state == GroupState::Empty {
            return Some(BTreeSet::new());
        }
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(subscription_topics(&member.metadata(Some(protocol)))?);
        }
        Some(topics)
    }

    /// The `GroupMetadataValue` for the group as it is now.
    pub(crate) fn to_record(&self) -> GroupValue {
        let protocol = self.protocol_name.as_deref();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.current_state_timestamp_ms.unwrap_or(-1),
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its record: Stable with its members, or Empty (Kafka's
    /// `ClassicGroup.fromRecord`). Members get sessions when the shard is loaded.
    pub(crate) fn from_record(group_id: &str, value: GroupValue) -> Self {
        let mut group = ClassicGroup::new(group_id, 0);
        group.current_state_timestamp_ms = Some(value.current_state_timestamp_ms).filter(|t| *t >= 0);
        group.generation_id = value.generation;
        group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        group.protocol_name = value.protocol;
        for m in value.members {
            let protocols = group.protocol_name.iter().map(|p| (p.clone(), m.subscription.clone())).collect();
            let member = Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                protocols,
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                join_sequence: 0,
                heartbeat_deadline_ms: i64::MAX,
            };
            group.add_member(member);
        }
        // The record names the leader; a record without one keeps the first member.
        if let Some(leader) = value.leader.filter(|l| group.members.contains_key(l)) {
            group.leader_id = Some(leader);
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
        }
        group
    }
}
