//! TxnOffsetCommit: offsets pending until the transaction's marker, superseded by later
//! plain commits, and the same state after replaying the records and markers.

use gregor_protocol::kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::{GroupId, ProducerId, TopicName, TxnOffsetCommitRequest};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{s, Harness, GROUP};
use crate::{GroupCoordinatorShard, GroupResponse};

const PRODUCER: i64 = 42;

fn txn_commit(h: &mut Harness, generation: i32, member: &str, partition: i32, offset: i64) -> Vec<i16> {
    let meta = h.meta(3);
    let id = meta.id;
    let p = TxnOffsetCommitRequestPartition::default()
        .with_partition_index(partition)
        .with_committed_offset(offset)
        .with_committed_metadata(Some(s("txn")));
    let request = TxnOffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_producer_id(ProducerId(PRODUCER))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(s("in")))
            .with_partitions(vec![p])]);
    let outputs = h.shard.txn_offset_commit(meta, request, h.now_ms);
    h.apply(outputs);
    match &h.responses[&id] {
        GroupResponse::TxnOffsetCommit(r) => {
            r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)).collect()
        }
        other => panic!("not a TxnOffsetCommit response: {other:?}"),
    }
}

fn committed(shard: &GroupCoordinatorShard, partition: i32) -> i64 {
    let wanted = [("in".to_owned(), vec![partition])];
    shard.fetch_offsets(GROUP, Some(&wanted)).unwrap()[0].offset
}

#[test]
fn given_transactional_commit_should_apply_only_when_the_transaction_commits() {
    let mut h = Harness::new();
    assert_eq!(txn_commit(&mut h, -1, "", 0, 10), vec![0]);
    assert_eq!(h.txn_records.len(), 1, "written as a transactional batch");
    assert_eq!(committed(&h.shard, 0), -1, "pending until the marker");
    assert!(h.shard.has_pending_txn_offset(GROUP, "in", 0));
    h.shard.complete_txn(PRODUCER, true, h.now_ms);
    assert_eq!(committed(&h.shard, 0), 10);
    assert_eq!(txn_commit(&mut h, -1, "", 0, 20), vec![0]);
    h.shard.complete_txn(PRODUCER, false, h.now_ms);
    assert_eq!(committed(&h.shard, 0), 10, "an aborted commit changes nothing");
    assert!(!h.shard.has_pending_txn_offset(GROUP, "in", 0));
}

#[test]
fn given_plain_commit_after_a_pending_one_when_the_transaction_commits_should_keep_the_plain_one() {
    let mut h = Harness::new();
    txn_commit(&mut h, -1, "", 0, 10);
    assert_eq!(h.commit("", -1, &[("in", 0, 15, "")]), vec![0]);
    h.shard.complete_txn(PRODUCER, true, h.now_ms);
    assert_eq!(committed(&h.shard, 0), 15);
}

#[test]
fn given_records_and_markers_when_replayed_should_rebuild_the_same_offsets() {
    let mut h = Harness::new();
    txn_commit(&mut h, -1, "", 0, 10);
    txn_commit(&mut h, -1, "", 1, 11);
    let mut replayed = GroupCoordinatorShard::new(Default::default());
    for (producer, r) in &h.txn_records {
        replayed.replay_txn(*producer, &r.key, r.value.as_deref()).unwrap();
    }
    assert_eq!(committed(&replayed, 1), -1);
    replayed.complete_txn(PRODUCER, true, 0);
    assert_eq!((committed(&replayed, 0), committed(&replayed, 1)), (10, 11));
}

#[test]
fn given_unknown_member_or_generation_should_refuse() {
    let mut h = Harness::new();
    let (leader, _follower, generation) = h.stable_pair();
    let unknown = txn_commit(&mut h, generation, "nobody", 0, 1);
    assert_eq!(unknown, vec![ResponseError::UnknownMemberId.code()]);
    let stale = txn_commit(&mut h, generation - 1, &leader, 0, 1);
    assert_eq!(stale, vec![ResponseError::IllegalGeneration.code()]);
    assert_eq!(txn_commit(&mut h, generation, &leader, 0, 1), vec![0]);
}

/// Replays the plain records around the transactional ones as they were written: the
/// first `before` plain records, then the transaction's, then the rest, then the marker.
fn replay_in_order(h: &Harness, before: usize) -> GroupCoordinatorShard {
    let mut replayed = GroupCoordinatorShard::new(Default::default());
    for r in &h.records[..before] {
        replayed.replay(&r.key, r.value.as_deref()).unwrap();
    }
    for (producer, r) in &h.txn_records {
        replayed.replay_txn(*producer, &r.key, r.value.as_deref()).unwrap();
    }
    for r in &h.records[before..] {
        replayed.replay(&r.key, r.value.as_deref()).unwrap();
    }
    replayed.complete_txn(PRODUCER, true, 0);
    replayed
}

#[test]
fn given_pending_transactional_offset_when_group_deleted_should_tombstone_it_and_the_commit_restore_nothing() {
    let mut h = Harness::new();
    assert_eq!(h.commit("", -1, &[("in", 0, 5, "")]), vec![0]);
    txn_commit(&mut h, -1, "", 1, 10);
    let (code, outputs) = h.shard.delete_group(GROUP, h.now_ms);
    assert_eq!(code, 0);
    h.apply(outputs);
    assert_eq!(h.records.len(), 1 + 3, "tombstones for in-0, the staged in-1 and the group");
    assert!(!h.shard.has_pending_txn_offset(GROUP, "in", 1));
    h.shard.complete_txn(PRODUCER, true, h.now_ms);
    assert_eq!(h.shard.fetch_offsets(GROUP, None), Ok(vec![]));
    assert!(h.shard.group_ids().is_empty(), "the commit does not bring the group back");
    let replayed = replay_in_order(&h, 1);
    assert_eq!(replayed.fetch_offsets(GROUP, None), Ok(vec![]));
    assert!(replayed.group_ids().is_empty());
}

#[test]
fn given_pending_transactional_offset_when_offset_deleted_should_tombstone_it() {
    let mut h = Harness::new();
    assert_eq!(h.commit("", -1, &[("in", 0, 5, "")]), vec![0]);
    txn_commit(&mut h, -1, "", 1, 10);
    let response = super::offsets_test::offset_delete(&mut h, &[("in", 1)]);
    assert_eq!(response.topics[0].partitions[0].error_code, 0);
    assert_eq!(h.records.last().map(|r| r.value.is_none()), Some(true), "a tombstone for the staged offset");
    h.shard.complete_txn(PRODUCER, true, h.now_ms);
    assert_eq!((committed(&h.shard, 0), committed(&h.shard, 1)), (5, -1));
    let replayed = replay_in_order(&h, 1);
    assert_eq!((committed(&replayed, 0), committed(&replayed, 1)), (5, -1));
}

#[test]
fn given_pending_transactional_offset_when_offsets_expire_should_keep_its_partition_and_the_group() {
    let config = crate::GroupConfig { offsets_retention_ms: 60_000, ..Default::default() };
    let mut h = Harness::with_config(config);
    assert_eq!(h.commit("", -1, &[("in", 0, 5, ""), ("in", 1, 6, "")]), vec![0, 0]);
    txn_commit(&mut h, -1, "", 0, 10);
    txn_commit(&mut h, -1, "", 2, 12);
    h.advance(120_000);
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert_eq!(h.records.len(), 2 + 1, "only in-1 expired: in-0 is staged by the open transaction");
    h.advance(120_000);
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert_eq!(h.records.len(), 3, "the group stays while the transaction is open");
    assert_eq!(h.shard.group_ids(), vec![GROUP.to_owned()]);
    h.shard.complete_txn(PRODUCER, true, h.now_ms);
    assert_eq!((committed(&h.shard, 0), committed(&h.shard, 1), committed(&h.shard, 2)), (10, -1, 12));
}

#[test]
fn given_aborted_transaction_when_cleanup_runs_should_delete_the_group_it_kept() {
    let config = crate::GroupConfig { offsets_retention_ms: 60_000, ..Default::default() };
    let mut h = Harness::with_config(config);
    assert_eq!(h.commit("", -1, &[("in", 1, 6, "")]), vec![0]);
    txn_commit(&mut h, -1, "", 0, 10);
    h.advance(120_000);
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert_eq!(h.shard.group_ids(), vec![GROUP.to_owned()], "kept while the transaction is open");
    h.shard.complete_txn(PRODUCER, false, h.now_ms);
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert!(h.shard.group_ids().is_empty(), "aborted: nothing left, the group goes");
}
