//! Committed offsets (Kafka's `OffsetMetadataManager`): OffsetCommit, OffsetFetch,
//! OffsetDelete and retention.

use std::collections::BTreeSet;

use gregor_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
};
use gregor_protocol::kafka_protocol::ResponseError;

use crate::group::{ClassicGroup, GroupState};
use crate::join::validate_existing_member;
use crate::modern::consumer_group::ConsumerGroup;
use crate::records::{self, OffsetValue};
use crate::shard::Ctx;
use crate::{FetchedOffset, GroupCoordinatorShard, GroupResponse, Output, Record, RequestMeta};

/// Kafka's `offset.metadata.max.bytes` default, counted as Java counts string length.
const OFFSET_METADATA_MAX_SIZE: usize = 4096;

/// A committed offset as stored, or OFFSET_METADATA_TOO_LARGE (OffsetCommit and
/// TxnOffsetCommit alike).
pub(crate) fn offset_value(
    offset: i64,
    leader_epoch: i32,
    metadata: &str,
    now_ms: i64,
) -> Result<OffsetValue, ResponseError> {
    if metadata.encode_utf16().count() > OFFSET_METADATA_MAX_SIZE {
        return Err(ResponseError::OffsetMetadataTooLarge);
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata: metadata.to_owned(),
        commit_timestamp_ms: now_ms,
        expire_timestamp_ms: None,
    })
}

/// One partition of an OffsetCommit or TxnOffsetCommit, Kafka's per-partition step of
/// both: the request's own `validation`, then the offset's; an accepted offset goes to
/// `accept` (which writes its record). Returns the partition's error code.
pub(crate) fn commit_partition(
    validation: Result<(), ResponseError>,
    (offset, leader_epoch, metadata): (i64, i32, Option<&str>),
    now_ms: i64,
    accept: impl FnOnce(OffsetValue),
) -> i16 {
    match validation.and_then(|()| offset_value(offset, leader_epoch, metadata.unwrap_or(""), now_ms)) {
        Err(e) => e.code(),
        Ok(value) => {
            accept(value);
            0
        }
    }
}

/// `retention_time_ms` of OffsetCommit v2-4 meaning "use the broker's retention".
const DEFAULT_RETENTION_TIME_MS: i64 = -1;

impl GroupCoordinatorShard {
    /// OffsetCommit: one record per accepted partition, appended before the response.
    pub fn offset_commit(&mut self, meta: RequestMeta, request: OffsetCommitRequest, now_ms: i64) -> Vec<Output> {
        let mut ctx = Ctx::new(&self.config, now_ms);
        let group_id = request.group_id.to_string();
        let validation = self.validate_offset_commit(&group_id, &request, meta.api_version);
        let mut records = Vec::new();
        let expire_timestamp_ms = (meta.api_version <= 4 && request.retention_time_ms != DEFAULT_RETENTION_TIME_MS)
            .then(|| now_ms.saturating_add(request.retention_time_ms));
        let topics = request
            .topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let metadata = p.committed_metadata.as_ref().map(|m| m.as_str());
                        let entry = (p.committed_offset, p.committed_leader_epoch, metadata);
                        let error = commit_partition(validation, entry, now_ms, |value| {
                            let value = OffsetValue { expire_timestamp_ms, ..value };
                            let name = topic.name.as_str();
                            records.push(self.commit(&group_id, name, p.partition_index, value, now_ms));
                        });
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(error)
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_topic_id(topic.topic_id)
                    .with_partitions(partitions)
            })
            .collect();
        ctx.append(records);
        ctx.respond(meta.id, GroupResponse::OffsetCommit(OffsetCommitResponse::default().with_topics(topics)));
        ctx.out
    }

    /// Kafka's `validateOffsetCommit`: generation -1 without a member id is a standalone
    /// commit, allowed only while no member manages the group.
    fn validate_offset_commit(
        &self,
        group_id: &str,
        request: &OffsetCommitRequest,
        version: i16,
    ) -> Result<(), ResponseError> {
        if group_id.len() > i16::MAX as usize {
            return Err(ResponseError::InvalidGroupId);
        }
        let generation = request.generation_id_or_member_epoch;
        if let Some(group) = self.consumer_groups.get(group_id) {
            return validate_consumer_commit(group, request, version);
        }
        let Some(group) = self.groups.get(group_id) else {
            return match generation {
                g if g < 0 => Ok(()),
                _ if version >= 9 => Err(ResponseError::GroupIdNotFound),
                _ => Err(ResponseError::IllegalGeneration),
            };
        };
        if generation < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        let instance = request.group_instance_id.as_ref().map(|i| i.as_str());
        if generation >= 0 || !request.member_id.is_empty() || instance.is_some() {
            validate_existing_member(group, request.member_id.as_str(), instance)?;
            if generation != group.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if group.state != GroupState::Empty {
            return Err(ResponseError::UnknownMemberId);
        }
        // Commits with the previous generation are welcome while members rejoin (eager
        // consumers commit in onPartitionsRevoked); only between join and sync, when the
        // member knows a generation it has no assignment for yet, must it wait.
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// OffsetFetch v9+ (KIP-848) of a consumer group: a member id or an epoch >= 0 must be
    /// the member's current epoch (STALE_MEMBER_EPOCH) of a known member
    /// (UNKNOWN_MEMBER_ID); admin fetches (no member id, epoch -1) always pass. Groups of
    /// the classic protocol are not checked here.
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        let Some(group) = self.consumer_groups.get(group_id) else { return Ok(()) };
        if member_epoch < 0 && member_id.is_none_or(str::is_empty) {
            return Ok(());
        }
        let member = group.members.get(member_id.unwrap_or_default()).ok_or(ResponseError::UnknownMemberId)?;
        if member.member_epoch != member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    fn commit(&mut self, group_id: &str, topic: &str, partition: i32, value: OffsetValue, now_ms: i64) -> Record {
        let record = Record {
            key: records::offset_commit_key(group_id, topic, partition),
            value: Some(records::offset_commit_value(&value)),
        };
        let _ = self.drop_pending_txn_offset(group_id, topic, partition);
        self.store_offset(group_id, topic, partition, value, now_ms);
        record
    }

    /// Makes `value` the group's committed offset of the partition.
    pub(crate) fn store_offset(
        &mut self,
        group_id: &str,
        topic: &str,
        partition: i32,
        value: OffsetValue,
        now_ms: i64,
    ) {
        // A standalone commit creates a "simple" group, as Kafka does.
        if !self.consumer_groups.contains_key(group_id) {
            let _ = self.groups.entry(group_id.to_owned()).or_insert_with(|| ClassicGroup::new(group_id, now_ms));
        }
        let _ = self.offsets.entry(group_id.to_owned()).or_default().insert((topic.to_owned(), partition), value);
    }

    /// Every committed offset of every group of this shard, as `(group, topic,
    /// partition, offset)` (the lag a scrape reports; staged transactional offsets are
    /// not committed yet and are left out).
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.offsets
            .iter()
            .flat_map(|(group, offsets)| {
                offsets.iter().map(move |((topic, partition), v)| (group.clone(), topic.clone(), *partition, v.offset))
            })
            .collect()
    }

    /// OffsetFetch for one group: `None` asks for every committed partition. Partitions
    /// never committed answer offset -1 and metadata "" (an unknown group is no error).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<FetchedOffset>, ResponseError> {
        let offsets = self.offsets.get(group_id);
        let fetched = |topic: &str, partition: i32, value: Option<&OffsetValue>| FetchedOffset {
            topic: topic.to_owned(),
            partition,
            offset: value.map_or(-1, |v| v.offset),
            leader_epoch: value.map_or(-1, |v| v.leader_epoch),
            metadata: Some(value.map_or_else(String::new, |v| v.metadata.clone())),
            error_code: 0,
        };
        Ok(match topics {
            None => offsets
                .into_iter()
                .flatten()
                .map(|((topic, partition), value)| fetched(topic, *partition, Some(value)))
                .collect(),
            Some(topics) => topics
                .iter()
                .flat_map(|(topic, partitions)| partitions.iter().map(move |p| (topic, *p)))
                .map(|(topic, p)| fetched(topic, p, offsets.and_then(|o| o.get(&(topic.clone(), p)))))
                .collect(),
        })
    }

    /// OffsetDelete: refused per partition for topics a live consumer group subscribes to.
    pub fn offset_delete(&mut self, meta: RequestMeta, request: OffsetDeleteRequest, now_ms: i64) -> Vec<Output> {
        let mut ctx = Ctx::new(&self.config, now_ms);
        let group_id = request.group_id.to_string();
        let consumer_group = self.consumer_groups.get(&group_id);
        let subscribed = match self.groups.get(&group_id) {
            None if consumer_group.is_some() => {
                Ok(consumer_group.map(|g| g.subscribed_topic_names()).unwrap_or_default())
            }
            None => Err(ResponseError::GroupIdNotFound),
            Some(g) if g.state != GroupState::Empty && g.protocol_type.as_deref() != Some("consumer") => {
                Err(ResponseError::NonEmptyGroup)
            }
            Some(g) => Ok(g.subscribed_topics().unwrap_or_default()),
        };
        let subscribed = match subscribed {
            Ok(topics) => topics,
            Err(e) => {
                let response = OffsetDeleteResponse::default().with_error_code(e.code());
                ctx.respond(meta.id, GroupResponse::OffsetDelete(response));
                return ctx.out;
            }
        };
        let mut tombstones = Vec::new();
        let topics = request
            .topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let error =
                            self.delete_offset(&group_id, &topic.name, p.partition_index, &subscribed, &mut tombstones);
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(error)
                    })
                    .collect();
                OffsetDeleteResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
            })
            .collect();
        ctx.append(tombstones);
        ctx.respond(meta.id, GroupResponse::OffsetDelete(OffsetDeleteResponse::default().with_topics(topics)));
        ctx.out
    }

    fn delete_offset(
        &mut self,
        group_id: &str,
        topic: &str,
        partition: i32,
        subscribed: &BTreeSet<String>,
        tombstones: &mut Vec<Record>,
    ) -> i16 {
        if subscribed.contains(topic) {
            return ResponseError::GroupSubscribedToTopic.code();
        }
        // The tombstone also drops an offset staged by an open transaction, on replay as here.
        let staged = self.drop_pending_txn_offset(group_id, topic, partition);
        let key = (topic.to_owned(), partition);
        let committed = self.offsets.get_mut(group_id).is_some_and(|offsets| offsets.remove(&key).is_some());
        if self.offsets.get(group_id).is_some_and(|offsets| offsets.is_empty()) {
            let _ = self.offsets.remove(group_id);
        }
        if committed || staged {
            tombstones.push(Record { key: records::offset_commit_key(group_id, topic, partition), value: None });
        }
        0
    }
}

/// Kafka's `ConsumerGroup.validateOffsetCommit`: -1 without members is a standalone
/// commit; otherwise the member must exist, use OffsetCommit v9+ (the version that carries
/// member epochs), and send its current epoch.
fn validate_consumer_commit(
    group: &ConsumerGroup,
    request: &OffsetCommitRequest,
    version: i16,
) -> Result<(), ResponseError> {
    let epoch = request.generation_id_or_member_epoch;
    if epoch < 0 && group.members.is_empty() {
        return Ok(());
    }
    let member = group.members.get(request.member_id.as_str()).ok_or(ResponseError::UnknownMemberId)?;
    if version < 9 {
        return Err(ResponseError::UnsupportedVersion);
    }
    if epoch != member.member_epoch {
        return Err(ResponseError::StaleMemberEpoch);
    }
    Ok(())
}

/// Offsets past retention, by group (Kafka 2.1+, KIP-211 and KIP-496):
/// - a group nobody manages ("simple"): `retention` after each commit;
/// - an Empty group: `retention` after it became empty;
/// - a Stable consumer group: only topics it no longer subscribes to, after their commit;
/// - otherwise nothing. A v1 commit's own expire timestamp wins where an offset may expire.
pub(crate) fn expired_offsets(shard: &GroupCoordinatorShard, now_ms: i64) -> Vec<(String, Vec<(String, i32)>)> {
    let retention_ms = shard.config.offsets_retention_ms;
    let mut expired = Vec::new();
    for (group_id, offsets) in &shard.offsets {
        let group = shard.groups.get(group_id);
        let consumer_group = shard.consumer_groups.get(group_id);
        let base = match group {
            // KIP-848 groups: offsets of topics no member subscribes to, after their commit.
            _ if consumer_group.is_some() => {
                ExpiryBase::UnsubscribedCommit(consumer_group.map(|g| g.subscribed_topic_names()).unwrap_or_default())
            }
            Some(g) if g.protocol_type.is_some() && g.state == GroupState::Empty => {
                ExpiryBase::EmptySince(g.current_state_timestamp_ms)
            }
            Some(g) if g.protocol_type.is_some() => match (g.state, g.subscribed_topics()) {
                (GroupState::Stable, Some(topics)) => ExpiryBase::UnsubscribedCommit(topics),
                _ => continue,
            },
            _ => ExpiryBase::Commit,
        };
        let keys: Vec<(String, i32)> = offsets
            .iter()
            // Kafka never expires a partition an open transaction staged an offset for.
            .filter(|((topic, partition), _)| !shard.has_pending_txn_offset(group_id, topic, *partition))
            .filter(|((topic, _), value)| {
                base.base_ms(topic, value).is_some_and(|base_ms| match value.expire_timestamp_ms {
                    Some(expire_ms) => now_ms >= expire_ms,
                    None => now_ms.saturating_sub(base_ms) >= retention_ms,
                })
            })
            .map(|(key, _)| key.clone())
            .collect();
        if !keys.is_empty() {
            expired.push((group_id.clone(), keys));
        }
    }
    expired
}

/// What an offset's retention counts from, per group kind (see [`expired_offsets`]).
enum ExpiryBase {
    Commit,
    EmptySince(Option<i64>),
    UnsubscribedCommit(BTreeSet<String>),
}

impl ExpiryBase {
    /// `None`: this offset does not expire now, whatever its age.
    fn base_ms(&self, topic: &str, value: &OffsetValue) -> Option<i64> {
        match self {
            ExpiryBase::Commit => Some(value.commit_timestamp_ms),
            ExpiryBase::EmptySince(since) => Some(since.unwrap_or(value.commit_timestamp_ms)),
            ExpiryBase::UnsubscribedCommit(topics) => (!topics.contains(topic)).then_some(value.commit_timestamp_ms),
        }
    }
}
