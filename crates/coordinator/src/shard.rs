//! Kafka's `GroupCoordinatorShard`: the groups and offsets of one `__consumer_offsets`
//! partition, loading (replay), the read-only views, group deletion and timer dispatch.
//! The protocol operations live in `join`, `membership`, `offsets` and (KIP-848) `modern`.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use gregor_protocol::kafka_protocol::messages::list_groups_response::ListedGroup;
use gregor_protocol::kafka_protocol::messages::GroupId;
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;

use crate::group::{ClassicGroup, GroupState};
use crate::modern::consumer_group::{ConsumerGroup, ConsumerGroupState};
use crate::records::{self, OffsetValue, RecordKey};
use crate::{CoordinatorError, GroupConfig, GroupResponse, Output, Record, RequestId, TimerKey};

/// Offsets of one group by (topic, partition): a BTreeMap so fetches and tombstones come
/// out in a deterministic order.
pub(crate) type GroupOffsets = BTreeMap<(String, i32), OffsetValue>;

/// The coordinator for the groups of one `__consumer_offsets` partition.
#[derive(Debug)]
pub struct GroupCoordinatorShard {
    pub(crate) config: GroupConfig,
    pub(crate) groups: BTreeMap<String, ClassicGroup>,
    /// KIP-848 groups. A group id is in at most one of `groups` and `consumer_groups`.
    pub(crate) consumer_groups: BTreeMap<String, ConsumerGroup>,
    pub(crate) offsets: BTreeMap<String, GroupOffsets>,
    /// Offsets of open transactions: producer id -> group -> offsets.
    pub(crate) pending_txn_offsets: BTreeMap<i64, BTreeMap<String, GroupOffsets>>,
    /// Feeds member id suffixes; mixed with the clock so ids stay unique across restarts.
    pub(crate) member_id_counter: u64,
}

/// What one call produces: outputs in order, plus the config and time every step needs.
pub(crate) struct Ctx {
    pub(crate) config: GroupConfig,
    pub(crate) now_ms: i64,
    pub(crate) out: Vec<Output>,
}

impl Ctx {
    pub(crate) fn new(config: &GroupConfig, now_ms: i64) -> Self {
        Self { config: config.clone(), now_ms, out: Vec::new() }
    }

    pub(crate) fn respond(&mut self, id: RequestId, response: GroupResponse) {
        self.out.push(Output::Respond(id, response));
    }

    pub(crate) fn append(&mut self, records: Vec<Record>) {
        if !records.is_empty() {
            self.out.push(Output::Append(records));
        }
    }

    /// Arms `key` `after_ms` from now and returns the deadline, which the group keeps to
    /// recognise (and ignore) a stale firing.
    pub(crate) fn set_timer(&mut self, key: TimerKey, after_ms: i64) -> i64 {
        let deadline_ms = self.now_ms.saturating_add(after_ms.max(0));
        self.out.push(Output::SetTimer { key, deadline_ms });
        deadline_ms
    }

    pub(crate) fn cancel_timer(&mut self, key: TimerKey) {
        self.out.push(Output::CancelTimer(key));
    }
}

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub(crate) fn heartbeat_key(group: &str, member: &str) -> TimerKey {
    TimerKey::Heartbeat { group: group.to_owned(), member: member.to_owned() }
}

pub(crate) fn group_record(group: &ClassicGroup) -> Record {
    Record {
        key: records::group_metadata_key(&group.group_id),
        value: Some(records::group_metadata_value(&group.to_record())),
    }
}

impl GroupCoordinatorShard {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            consumer_groups: BTreeMap::new(),
            offsets: BTreeMap::new(),
            pending_txn_offsets: BTreeMap::new(),
            member_id_counter: 0,
        }
    }

    /// Applies one `__consumer_offsets` record while loading. Keys of newer record types
    /// are skipped; bytes that do not decode are an error and change nothing.
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CoordinatorError> {
        let key = records::decode_key(key)?;
        if self.replay_consumer(&key, value)? {
            return Ok(());
        }
        if let RecordKey::OffsetCommit { group, topic, partition } = &key {
            // A plain commit supersedes pending transactional ones (see `txn_offsets`).
            let _ = self.drop_pending_txn_offset(group, topic, *partition);
        }
        match key {
            // Consumer-group keys were replayed above; other record types are not served.
            RecordKey::Unknown { .. }
            | RecordKey::ConsumerGroupMetadata { .. }
            | RecordKey::ConsumerGroupMember { .. }
            | RecordKey::ConsumerGroupTargetAssignmentMetadata { .. }
            | RecordKey::ConsumerGroupTargetAssignmentMember { .. }
            | RecordKey::ConsumerGroupCurrentAssignment { .. } => {}
            RecordKey::OffsetCommit { group, topic, partition } => match value {
                Some(v) => {
                    let offset = records::decode_offset_value(v)?;
                    // Offsets without a group record belong to a "simple" group (Kafka).
                    let known = self.consumer_groups.contains_key(&group);
                    let _ = (!known).then(|| {
                        self.groups.entry(group.clone()).or_insert_with(|| {
                            let mut g = ClassicGroup::new(&group, 0);
                            g.current_state_timestamp_ms = None;
                            g
                        })
                    });
                    let _ = self.offsets.entry(group).or_default().insert((topic, partition), offset);
                }
                None => {
                    if let Some(offsets) = self.offsets.get_mut(&group) {
                        let _ = offsets.remove(&(topic, partition));
                        if offsets.is_empty() {
                            let _ = self.offsets.remove(&group);
                        }
                    }
                }
            },
            RecordKey::GroupMetadata { group } => match value {
                Some(v) => {
                    let loaded = ClassicGroup::from_record(&group, records::decode_group_value(v)?);
                    // A consumer group of that id was converted back to a classic one.
                    let _ = self.consumer_groups.remove(&group);
                    let _ = self.groups.insert(group, loaded);
                }
                None => {
                    let _ = self.groups.remove(&group);
                }
            },
        }
        Ok(())
    }

    /// After replay: members of loaded groups get a full session to heartbeat again, as
    /// Kafka re-arms their heartbeats on load.
    pub fn on_loaded(&mut self, now_ms: i64) -> Vec<Output> {
        let mut ctx = Ctx::new(&self.config, now_ms);
        for group in self.groups.values_mut() {
            for member in group.members.values_mut() {
                let key = heartbeat_key(&group.group_id, &member.member_id);
                member.heartbeat_deadline_ms = ctx.set_timer(key, i64::from(member.session_timeout_ms));
            }
        }
        self.on_loaded_consumer(&mut ctx);
        ctx.out
    }

    /// Ids of every group this shard holds (classic and consumer), sorted.
    pub fn group_ids(&self) -> Vec<String> {
        let ids: std::collections::BTreeSet<&String> = self.groups.keys().chain(self.consumer_groups.keys()).collect();
        ids.into_iter().cloned().collect()
    }

    /// True if the group exists as a classic group: DescribeGroups v6 answers
    /// GROUP_ID_NOT_FOUND otherwise, which is also Kafka 4's answer for a consumer group
    /// ("Group x is not a classic group."; see [`Self::is_consumer_group`]).
    pub fn has_group(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id)
    }

    /// DescribeGroups for one group, filled for the newest version (the broker strips).
    /// An unknown group is "Dead" with no error, as Kafka answers up to v5; so is a
    /// consumer group, which this API does not describe (ConsumerGroupDescribe does).
    pub fn describe_group(&self, group_id: &str) -> DescribedGroup {
        if let Some(group) = self.consumer_groups.get(group_id) {
            return crate::modern::classic_view(group);
        }
        let described = DescribedGroup::default().with_group_id(GroupId(str_bytes(group_id)));
        let Some(group) = self.groups.get(group_id) else {
            return described.with_group_state(StrBytes::from_static_str("Dead"));
        };
        // Kafka shows the protocol, metadata and assignments only once they are settled.
        let stable = group.state == GroupState::Stable;
        let protocol = if stable { group.protocol_name.as_deref() } else { None };
        let members = group
            .members
            .values()
            .map(|m| {
                let member = DescribedGroupMember::default()
                    .with_member_id(str_bytes(&m.member_id))
                    .with_group_instance_id(m.group_instance_id.as_deref().map(str_bytes))
                    .with_client_id(str_bytes(&m.client_id))
                    .with_client_host(str_bytes(&m.client_host));
                if stable {
                    member.with_member_metadata(m.metadata(protocol)).with_member_assignment(m.assignment.clone())
                } else {
                    member
                }
            })
            .collect();
        described
            .with_group_state(StrBytes::from_static_str(group.state.name()))
            .with_protocol_type(str_bytes(group.protocol_type.as_deref().unwrap_or("")))
            .with_protocol_data(str_bytes(protocol.unwrap_or("")))
            .with_members(members)
    }

    /// ListGroups: filters are case-insensitive and empty means "all" (Kafka).
    pub fn list_groups(&self, states_filter: &[String], types_filter: &[String]) -> Vec<ListedGroup> {
        let wanted =
            |filter: &[String], value: &str| filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value));
        let mut listed = if wanted(types_filter, "consumer") {
            self.listed_consumer_groups(|s| wanted(states_filter, s))
        } else {
            vec![]
        };
        if !wanted(types_filter, "classic") {
            return listed;
        }
        let classic = self.groups.values().filter(|g| wanted(states_filter, g.state.name())).map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type.as_deref().unwrap_or("")))
                .with_group_state(StrBytes::from_static_str(g.state.name()))
                .with_group_type(StrBytes::from_static_str("classic"))
        });
        listed.extend(classic);
        listed.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        listed
    }

    /// DeleteGroups for one group: only an Empty group goes, with tombstones for its
    /// offsets and its metadata.
    pub fn delete_group(&mut self, group_id: &str, now_ms: i64) -> (i16, Vec<Output>) {
        if let Some(group) = self.consumer_groups.get(group_id) {
            if group.state() != ConsumerGroupState::Empty {
                return (ResponseError::NonEmptyGroup.code(), Vec::new());
            }
            let mut ctx = Ctx::new(&self.config, now_ms);
            self.delete_empty_group(group_id, &mut ctx);
            return (0, ctx.out);
        }
        let Some(group) = self.groups.get(group_id) else {
            return (ResponseError::GroupIdNotFound.code(), Vec::new());
        };
        if group.state != GroupState::Empty {
            return (ResponseError::NonEmptyGroup.code(), Vec::new());
        }
        let mut ctx = Ctx::new(&self.config, now_ms);
        self.delete_empty_group(group_id, &mut ctx);
        (0, ctx.out)
    }

    /// Tombstones for the offsets and the metadata of `group_id`, which must be Empty.
    fn delete_empty_group(&mut self, group_id: &str, ctx: &mut Ctx) {
        if self.consumer_groups.contains_key(group_id) {
            let tombstones = self.offset_tombstones(group_id);
            ctx.append(tombstones);
            self.delete_consumer_group(group_id, ctx);
            return;
        }
        let mut tombstones = self.offset_tombstones(group_id);
        tombstones.push(Record { key: records::group_metadata_key(group_id), value: None });
        ctx.append(tombstones);
        if let Some(group) = self.groups.remove(group_id) {
            for member in group.pending_members.keys() {
                ctx.cancel_timer(heartbeat_key(group_id, member));
            }
            ctx.cancel_timer(TimerKey::Join { group: group_id.to_owned() });
        }
    }

    /// Removes the offsets of `group_id`, committed and staged by open transactions,
    /// returning their tombstones (Kafka's `deleteAllOffsets`).
    fn offset_tombstones(&mut self, group_id: &str) -> Vec<Record> {
        let mut partitions = self.take_pending_txn_partitions(group_id);
        partitions.extend(self.offsets.remove(group_id).unwrap_or_default().into_keys());
        partitions
            .into_iter()
            .map(|(topic, partition)| Record {
                key: records::offset_commit_key(group_id, &topic, partition),
                value: None,
            })
            .collect()
    }

    /// A timer the shard armed is due. Stale firings (re-armed or cancelled since) do nothing.
    pub fn on_timer(&mut self, key: TimerKey, now_ms: i64) -> Vec<Output> {
        let group_id = match &key {
            TimerKey::Heartbeat { group, .. } | TimerKey::Join { group } | TimerKey::Sync { group } => group.clone(),
            TimerKey::ConsumerSession { group, .. } | TimerKey::RebalanceTimeout { group, .. } => {
                let mut ctx = Ctx::new(&self.config, now_ms);
                if let Some(consumer_group) = self.consumer_groups.get_mut(group) {
                    crate::modern::on_consumer_timer(consumer_group, &key, &mut ctx);
                }
                return ctx.out;
            }
        };
        let Some(mut group) = self.groups.remove(&group_id) else { return Vec::new() };
        let mut ctx = Ctx::new(&self.config, now_ms);
        match key {
            TimerKey::Heartbeat { member, .. } => {
                crate::membership::on_heartbeat_expired(&mut group, &member, &mut ctx)
            }
            TimerKey::Join { .. } => crate::join::on_join_timer(&mut group, &mut ctx),
            TimerKey::Sync { .. } => crate::membership::on_sync_timer(&mut group, &mut ctx),
            TimerKey::ConsumerSession { .. } | TimerKey::RebalanceTimeout { .. } => {}
        }
        let _ = self.groups.insert(group_id.clone(), group);
        self.drop_if_unused(&group_id);
        ctx.out
    }

    /// Forgets a group that never had a generation, members or offsets: what remains of
    /// MEMBER_ID_REQUIRED answers whose clients never came back. Nothing was persisted.
    pub(crate) fn drop_if_unused(&mut self, group_id: &str) {
        let unused = self.groups.get(group_id).is_some_and(|g| {
            g.generation_id == 0 && g.members.is_empty() && g.pending_members.is_empty() && g.state == GroupState::Empty
        });
        if unused && !self.offsets.contains_key(group_id) {
            let _ = self.groups.remove(group_id);
        }
    }

    /// Offsets retention (Kafka 2.1+, KIP-211): see `offsets::expire`. Then Kafka's group
    /// cleanup: every group left without offsets (none ever committed, or the last just
    /// expired) is deleted once nobody is in it and no open transaction staged offsets
    /// for it.
    pub fn expire_offsets(&mut self, now_ms: i64) -> Vec<Output> {
        let expired = crate::offsets::expired_offsets(self, now_ms);
        let mut ctx = Ctx::new(&self.config, now_ms);
        let mut records = Vec::new();
        for (group_id, keys) in expired {
            let Some(offsets) = self.offsets.get_mut(&group_id) else { continue };
            for (topic, partition) in keys {
                let _ = offsets.remove(&(topic.clone(), partition));
                records.push(Record { key: records::offset_commit_key(&group_id, &topic, partition), value: None });
            }
            if offsets.is_empty() {
                let _ = self.offsets.remove(&group_id);
            }
        }
        ctx.append(records);
        for group_id in self.deletable_groups() {
            self.delete_empty_group(&group_id, &mut ctx);
        }
        ctx.out
    }

    /// Empty groups with no offsets, committed or staged by an open transaction.
    fn deletable_groups(&self) -> Vec<String> {
        let classic = self
            .groups
            .iter()
            .filter(|(_, g)| g.state == GroupState::Empty && g.pending_members.is_empty())
            .map(|(id, _)| id);
        let modern =
            self.consumer_groups.iter().filter(|(_, g)| g.state() == ConsumerGroupState::Empty).map(|(id, _)| id);
        classic
            .chain(modern)
            .filter(|id| !self.offsets.contains_key(*id) && !self.has_open_txn_offsets(id))
            .cloned()
            .collect()
    }
}
