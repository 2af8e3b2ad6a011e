//! Kafka's `ConsumerGroup` and `ConsumerGroupMember`: the in-memory state of one KIP-848
//! group, and the records that persist each part of it.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::records::{self as rec, CurrentAssignmentValue, MemberValue};
use super::Partitions;
use crate::Record;

/// The member epoch of a member leaving for good.
pub(crate) const LEAVE_EPOCH: i32 = -1;
/// The member epoch of a static member leaving temporarily: it keeps its partitions until
/// its session expires, so a restarting instance finds them again.
pub(crate) const LEAVE_STATIC_EPOCH: i32 = -2;

/// Kafka's `MemberState`, with its record codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
    /// A state written by a newer coordinator: the member is reconciled from scratch.
    Unknown,
}

impl MemberState {
    pub(crate) fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    pub(crate) fn from_code(code: i8) -> Self {
        match code {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// Kafka's `ConsumerGroup.ConsumerGroupState`; its names are what ListGroups and
/// ConsumerGroupDescribe report (Kafka's `toString`, capitalised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// Kafka's `ConsumerGroupMember`. Timer deadlines live in the group, so comparing two
/// members tells whether anything persisted changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerMember {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    /// Sorted and without duplicates, so a reordered list is no subscription change.
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) server_assignor: Option<String>,
    pub(crate) member_epoch: i32,
    pub(crate) previous_member_epoch: i32,
    pub(crate) state: MemberState,
    pub(crate) assigned: Partitions,
    pub(crate) pending_revocation: Partitions,
}

impl ConsumerMember {
    pub(crate) fn new(member_id: &str) -> Self {
        Self {
            member_id: member_id.to_owned(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            assigned: Partitions::new(),
            pending_revocation: Partitions::new(),
        }
    }

    /// Kafka's `updateMemberEpoch`: the previous epoch lets a member that lost the
    /// response carrying the new one come back with the old one.
    pub(crate) fn update_epoch(&mut self, epoch: i32) {
        self.previous_member_epoch = self.member_epoch;
        self.member_epoch = epoch;
    }

    pub(crate) fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == epoch
    }

    pub(crate) fn metadata_value(&self) -> MemberValue {
        MemberValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
        }
    }

    pub(crate) fn apply_metadata(&mut self, v: MemberValue) {
        self.instance_id = v.instance_id;
        self.rack_id = v.rack_id;
        self.client_id = v.client_id;
        self.client_host = v.client_host;
        self.subscribed_topic_names = normalized(v.subscribed_topic_names);
        self.subscribed_topic_regex = v.subscribed_topic_regex;
        self.rebalance_timeout_ms = v.rebalance_timeout_ms;
        self.server_assignor = v.server_assignor;
    }

    pub(crate) fn assignment_value(&self) -> CurrentAssignmentValue {
        CurrentAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.code(),
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }

    pub(crate) fn apply_assignment(&mut self, v: CurrentAssignmentValue) {
        self.member_epoch = v.member_epoch;
        self.previous_member_epoch = v.previous_member_epoch;
        self.state = MemberState::from_code(v.state);
        self.assigned = v.assigned;
        self.pending_revocation = v.pending_revocation;
    }

    pub(crate) fn same_subscription(&self, other: &ConsumerMember) -> bool {
        self.subscribed_topic_names == other.subscribed_topic_names
            && self.subscribed_topic_regex == other.subscribed_topic_regex
    }
}

/// Topic names sorted and deduplicated.
pub(crate) fn normalized(names: Vec<String>) -> Vec<String> {
    names.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

/// Kafka's `ConsumerGroup`.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerGroup {
    pub(crate) group_id: String,
    pub(crate) group_epoch: i32,
    /// Hash of the subscribed topics' metadata when the epoch was last bumped: a different
    /// hash on a heartbeat means partitions appeared or vanished (KIP-1101's `MetadataHash`).
    pub(crate) metadata_hash: i64,
    pub(crate) assignment_epoch: i32,
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    /// Target assignment by member id, for `assignment_epoch`.
    pub(crate) targets: BTreeMap<String, Partitions>,
    /// Deadlines of armed timers; a firing that does not match is stale.
    pub(crate) session_deadlines: BTreeMap<String, i64>,
    pub(crate) rebalance_deadlines: BTreeMap<String, i64>,
    /// What each regex subscription matched at the last heartbeat (not persisted: the next
    /// heartbeat after a restart resolves them again).
    pub(crate) resolved_regexes: BTreeMap<String, BTreeSet<String>>,
}

impl ConsumerGroup {
    pub(crate) fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_owned(),
            group_epoch: 0,
            metadata_hash: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            targets: BTreeMap::new(),
            session_deadlines: BTreeMap::new(),
            rebalance_deadlines: BTreeMap::new(),
            resolved_regexes: BTreeMap::new(),
        }
    }

    /// Kafka's `ConsumerGroup.updateState`.
    pub(crate) fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch != self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self.members.values().all(|m| m.is_reconciled_to(self.assignment_epoch)) {
            ConsumerGroupState::Stable
        } else {
            ConsumerGroupState::Reconciling
        }
    }

    /// Kafka's `isSubscribedToTopic` for every topic: names and regex matches.
    pub(crate) fn subscribed_topic_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for m in self.members.values() {
            names.extend(m.subscribed_topic_names.iter().cloned());
            let by_regex = m.subscribed_topic_regex.as_ref().and_then(|r| self.resolved_regexes.get(r));
            names.extend(by_regex.into_iter().flatten().cloned());
        }
        names
    }

    /// The member holding `instance_id` (KIP-345 static membership).
    pub(crate) fn static_member(&self, instance_id: &str) -> Option<&ConsumerMember> {
        self.members.values().find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// Who holds each partition, as assigned or pending revocation: a partition is given
    /// to its next owner only once nobody holds it.
    pub(crate) fn owners(&self) -> BTreeMap<(Uuid, i32), &str> {
        let mut owners = BTreeMap::new();
        for m in self.members.values() {
            for (topic, partitions) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                for p in partitions {
                    let _ = owners.insert((*topic, *p), m.member_id.as_str());
                }
            }
        }
        owners
    }

    /// Kafka's `computePreferredServerAssignor`: the assignor most members ask for (ties to
    /// the smallest name, for determinism), else the broker's default.
    pub(crate) fn preferred_assignor(&self, default: &str) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for name in self.members.values().filter_map(|m| m.server_assignor.as_deref()) {
            *votes.entry(name).or_default() += 1;
        }
        let best = votes.values().copied().max().unwrap_or(0);
        votes
            .into_iter()
            .find(|(_, c)| *c == best && best > 0)
            .map_or_else(|| default.to_owned(), |(n, _)| n.to_owned())
    }

    pub(crate) fn epoch_record(&self) -> Record {
        Record {
            key: rec::group_metadata_key(&self.group_id),
            value: Some(rec::group_metadata_value(self.group_epoch, self.metadata_hash)),
        }
    }

    pub(crate) fn target_metadata_record(&self) -> Record {
        Record {
            key: rec::target_metadata_key(&self.group_id),
            value: Some(rec::target_metadata_value(self.assignment_epoch)),
        }
    }

    pub(crate) fn member_record(&self, member: &ConsumerMember) -> Record {
        Record {
            key: rec::member_metadata_key(&self.group_id, &member.member_id),
            value: Some(rec::member_value(&member.metadata_value())),
        }
    }

    pub(crate) fn assignment_record(&self, member: &ConsumerMember) -> Record {
        Record {
            key: rec::current_assignment_key(&self.group_id, &member.member_id),
            value: Some(rec::current_assignment_value(&member.assignment_value())),
        }
    }

    pub(crate) fn target_record(&self, member_id: &str, target: &Partitions) -> Record {
        Record { key: rec::target_member_key(&self.group_id, member_id), value: Some(rec::target_member_value(target)) }
    }

    /// Kafka writes a member's removal as: current assignment, target, then metadata.
    pub(crate) fn member_tombstones(&self, member_id: &str) -> Vec<Record> {
        vec![
            Record { key: rec::current_assignment_key(&self.group_id, member_id), value: None },
            Record { key: rec::target_member_key(&self.group_id, member_id), value: None },
            Record { key: rec::member_metadata_key(&self.group_id, member_id), value: None },
        ]
    }

    /// Kafka's `createGroupTombstoneRecords`: members first, then the group.
    pub(crate) fn group_tombstones(&self) -> Vec<Record> {
        let mut records: Vec<Record> = self.members.keys().flat_map(|m| self.member_tombstones(m)).collect();
        records.push(Record { key: rec::target_metadata_key(&self.group_id), value: None });
        records.push(Record { key: rec::group_metadata_key(&self.group_id), value: None });
        records
    }
}
