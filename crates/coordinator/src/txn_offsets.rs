//! Transactional offset commits (TxnOffsetCommit): offsets written to
//! `__consumer_offsets` inside the producer's transaction, pending until the transaction
//! coordinator's marker commits them into the group's offsets or aborts them.
//!
//! A plain commit of the same partition after a pending transactional one supersedes
//! it, as in Kafka, where the later record in the log wins when the marker arrives:
//! the plain commit drops the pending entry, so the marker finds nothing to apply.

use std::collections::BTreeSet;

use gregor_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use crate::join::validate_existing_member;
use crate::offsets::commit_partition;
use crate::records::{self, OffsetValue, RecordKey};
use crate::shard::Ctx;
use crate::{CoordinatorError, GroupCoordinatorShard, GroupResponse, Output, Record, RequestMeta};

impl GroupCoordinatorShard {
    /// TxnOffsetCommit: records written as a transactional batch of the producer, the
    /// offsets kept pending until its transaction ends.
    pub fn txn_offset_commit(
        &mut self,
        meta: RequestMeta,
        request: TxnOffsetCommitRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut ctx = Ctx::new(&self.config, now_ms);
        let group_id = request.group_id.to_string();
        let instance = request.group_instance_id.as_ref().map(|i| i.as_str());
        let validation =
            self.validate_txn_offset_commit(&group_id, request.generation_id, request.member_id.as_str(), instance);
        let producer_id = request.producer_id.0;
        let mut records = Vec::new();
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
                            let name = topic.name.as_str();
                            records.push(Record {
                                key: records::offset_commit_key(&group_id, name, p.partition_index),
                                value: Some(records::offset_commit_value(&value)),
                            });
                            self.stage_txn_offset(producer_id, &group_id, (name, p.partition_index), value);
                        });
                        TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(error)
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
            })
            .collect();
        if !records.is_empty() {
            ctx.out.push(Output::AppendTransactional { producer_id, producer_epoch: request.producer_epoch, records });
        }
        let response = TxnOffsetCommitResponse::default().with_topics(topics);
        ctx.respond(meta.id, GroupResponse::TxnOffsetCommit(response));
        ctx.out
    }

    /// Kafka's checks for a transactional commit: old clients (v0-2) send no member, so
    /// only a generation or member id that is given must match; a stale KIP-848 member
    /// epoch is ILLEGAL_GENERATION here (not STALE_MEMBER_EPOCH).
    fn validate_txn_offset_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<(), ResponseError> {
        let unidentified = generation < 0 && member_id.is_empty() && instance.is_none();
        if let Some(group) = self.consumer_groups.get(group_id) {
            if unidentified {
                return Ok(());
            }
            let member = group.members.get(member_id).ok_or(ResponseError::UnknownMemberId)?;
            return if member.member_epoch == generation { Ok(()) } else { Err(ResponseError::IllegalGeneration) };
        }
        let Some(group) = self.groups.get(group_id) else {
            return if generation < 0 { Ok(()) } else { Err(ResponseError::IllegalGeneration) };
        };
        if unidentified {
            return Ok(());
        }
        validate_existing_member(group, member_id, instance)?;
        if generation != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    fn stage_txn_offset(
        &mut self,
        producer_id: i64,
        group_id: &str,
        (topic, partition): (&str, i32),
        value: OffsetValue,
    ) {
        let pending = self.pending_txn_offsets.entry(producer_id).or_default();
        let _ = pending.entry(group_id.to_owned()).or_default().insert((topic.to_owned(), partition), value);
    }

    /// A plain commit supersedes pending transactional ones of the same partition, and a
    /// tombstone drops them (DeleteGroups, OffsetDelete; Kafka's replay does the same).
    /// Whether any was staged.
    pub(crate) fn drop_pending_txn_offset(&mut self, group_id: &str, topic: &str, partition: i32) -> bool {
        if self.pending_txn_offsets.is_empty() {
            return false;
        }
        let key = (topic.to_owned(), partition);
        let mut dropped = false;
        for groups in self.pending_txn_offsets.values_mut() {
            if let Some(offsets) = groups.get_mut(group_id) {
                dropped |= offsets.remove(&key).is_some();
            }
        }
        dropped
    }

    /// Drops every offset of `group_id` staged by an open transaction, returning their
    /// partitions: DeleteGroups tombstones them as Kafka does, and replaying a tombstone
    /// drops a staged offset, so the live state must drop it too.
    pub(crate) fn take_pending_txn_partitions(&mut self, group_id: &str) -> BTreeSet<(String, i32)> {
        let mut partitions = BTreeSet::new();
        for groups in self.pending_txn_offsets.values_mut() {
            if let Some(offsets) = groups.remove(group_id) {
                partitions.extend(offsets.into_keys());
            }
        }
        partitions
    }

    /// Whether an open transaction staged any offset of `group_id`: such a group is not
    /// deleted by offset expiration (Kafka's `openTransactionsByGroup` check).
    pub(crate) fn has_open_txn_offsets(&self, group_id: &str) -> bool {
        self.pending_txn_offsets.values().any(|groups| groups.get(group_id).is_some_and(|o| !o.is_empty()))
    }

    /// The producer's transaction ended (its marker is in this shard's partition): the
    /// pending offsets become the groups' committed offsets, or are dropped.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool, now_ms: i64) {
        let Some(groups) = self.pending_txn_offsets.remove(&producer_id) else { return };
        if !commit {
            return;
        }
        for (group_id, offsets) in groups {
            for ((topic, partition), value) in offsets {
                self.store_offset(&group_id, &topic, partition, value, now_ms);
            }
        }
    }

    /// Replays a record of a transactional batch of `producer_id` (load).
    pub fn replay_txn(&mut self, producer_id: i64, key: &[u8], value: Option<&[u8]>) -> Result<(), CoordinatorError> {
        if let RecordKey::OffsetCommit { group, topic, partition } = records::decode_key(key)? {
            match value {
                Some(v) => {
                    let offset = records::decode_offset_value(v)?;
                    self.stage_txn_offset(producer_id, &group, (&topic, partition), offset);
                }
                None => {
                    let _ = self.drop_pending_txn_offset(&group, &topic, partition);
                }
            }
        }
        Ok(())
    }

    /// Whether a transaction has an uncommitted offset for the partition: OffsetFetch
    /// with `require_stable` answers UNSTABLE_OFFSET_COMMIT for it.
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        if self.pending_txn_offsets.is_empty() {
            return false;
        }
        let key = (topic.to_owned(), partition);
        self.pending_txn_offsets.values().any(|groups| groups.get(group_id).is_some_and(|o| o.contains_key(&key)))
    }
}
