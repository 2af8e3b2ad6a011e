//! OffsetCommit, OffsetFetch, OffsetDelete, DeleteGroups and offsets retention.

use gregor_protocol::kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::{GroupId, OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::{s, Harness, Join, GROUP};
use crate::{FetchedOffset, GroupConfig, GroupResponse};

fn fetched(topic: &str, partition: i32, offset: i64, leader_epoch: i32, metadata: &str) -> FetchedOffset {
    FetchedOffset {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch,
        metadata: Some(metadata.into()),
        error_code: 0,
    }
}

pub(super) fn offset_delete(h: &mut Harness, topics: &[(&str, i32)]) -> OffsetDeleteResponse {
    let meta = h.meta(0);
    let id = meta.id;
    let topics = topics
        .iter()
        .map(|(t, p)| {
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s(t)))
                .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(*p)])
        })
        .collect();
    let request = OffsetDeleteRequest::default().with_group_id(GroupId(s(GROUP))).with_topics(topics);
    let outputs = h.shard.offset_delete(meta, request, h.now_ms);
    h.apply(outputs);
    match &h.responses[&id] {
        GroupResponse::OffsetDelete(r) => r.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn given_no_group_when_standalone_commit_should_create_simple_group_and_be_fetchable() {
    let mut h = Harness::new();
    assert_eq!(h.shard.fetch_offsets(GROUP, None), Ok(vec![]), "unknown group: empty, no error");
    assert_eq!(h.commit("", -1, &[("orders", 0, 42, "m"), ("orders", 1, 7, "")]), vec![0, 0]);
    assert_eq!(h.records.len(), 2, "one record per partition");
    assert_eq!(h.state(), "Empty");
    let all = h.shard.fetch_offsets(GROUP, None).unwrap();
    assert_eq!(all, vec![fetched("orders", 0, 42, 3, "m"), fetched("orders", 1, 7, 3, "")]);
    let wanted = [("orders".to_string(), vec![1, 9]), ("payments".to_string(), vec![0])];
    let some = h.shard.fetch_offsets(GROUP, Some(&wanted)).unwrap();
    assert_eq!(
        some,
        vec![fetched("orders", 1, 7, 3, ""), fetched("orders", 9, -1, -1, ""), fetched("payments", 0, -1, -1, "")]
    );
    let listed = h.shard.list_groups(&[], &[]);
    assert_eq!((listed[0].group_state.as_str(), listed[0].protocol_type.as_str()), ("Empty", ""));
}

#[test]
fn given_group_states_when_committing_should_validate_member_and_generation() {
    let mut h = Harness::new();
    let big = "x".repeat(4097);
    let (leader, follower, generation) = h.stable_pair();
    let cases: Vec<(&str, &str, i32, i16)> = vec![
        ("member of current generation", leader.as_str(), generation, 0),
        ("previous generation", leader.as_str(), generation - 1, 22),
        ("unknown member", "ghost", generation, 25),
        ("standalone commit to a live group", "", -1, 25),
    ];
    for (name, member, generation, code) in cases {
        assert_eq!(h.commit(member, generation, &[("orders", 0, 1, "")]), vec![code], "{name}");
    }
    assert_eq!(h.commit(&follower, generation, &[("orders", 0, 5, &big), ("orders", 1, 6, "")]), vec![12, 0]);

    // PreparingRebalance: the old generation may still commit (eager revocation commits).
    let jl = h.join(&Join::member(&leader));
    assert_eq!(h.commit(&follower, generation, &[("orders", 2, 9, "")]), vec![0]);
    // CompletingRebalance: a member that knows the new generation has no assignment yet.
    let _jf = h.join(&Join::member(&follower));
    let next = h.join_response(jl).unwrap().generation_id;
    assert_eq!(h.state(), "CompletingRebalance");
    assert_eq!(h.commit(&follower, next, &[("orders", 2, 10, "")]), vec![27]);
    let committed: Vec<i64> = h.shard.fetch_offsets(GROUP, None).unwrap().iter().map(|o| o.offset).collect();
    assert_eq!(committed, vec![1, 6, 9]);
}

#[test]
fn given_unknown_group_when_committing_with_generation_should_answer_per_version() {
    let mut h = Harness::new();
    assert_eq!(h.commit("m", 3, &[("orders", 0, 1, "")]), vec![22]);
    h.commit_version = 9;
    assert_eq!(h.commit("m", 3, &[("orders", 0, 1, "")]), vec![69]);
    assert!(h.shard.group_ids().is_empty());
}

#[test]
fn given_stable_consumer_group_when_deleting_offsets_should_refuse_subscribed_topics() {
    let mut h = Harness::new();
    assert_eq!(offset_delete(&mut h, &[("orders", 0)]).error_code, 69, "GROUP_ID_NOT_FOUND");
    let (leader, _follower, generation) = h.stable_pair();
    assert_eq!(h.commit(&leader, generation, &[("orders", 0, 1, ""), ("old-topic", 0, 2, "")]), vec![0, 0]);
    let records_before = h.records.len();
    let response = offset_delete(&mut h, &[("orders", 0), ("old-topic", 0)]);
    let codes: Vec<i16> = response.topics.iter().map(|t| t.partitions[0].error_code).collect();
    assert_eq!(codes, vec![86, 0]);
    assert_eq!(h.records.len(), records_before + 1);
    assert_eq!(h.records.last().unwrap().value, None, "tombstone");
    assert_eq!(h.shard.fetch_offsets(GROUP, None).unwrap().len(), 1);
}

#[test]
fn given_group_when_deleted_should_refuse_non_empty_and_tombstone_empty() {
    let mut h = Harness::new();
    assert_eq!(h.shard.delete_group(GROUP, h.now_ms).0, 69);
    let (leader, follower, generation) = h.stable_pair();
    assert_eq!(h.commit(&leader, generation, &[("orders", 0, 1, "")]), vec![0]);
    let (code, outputs) = h.shard.delete_group(GROUP, h.now_ms);
    assert_eq!((code, outputs.len()), (68, 0), "NON_EMPTY_GROUP");
    let _ = h.leave(4, "", &[(&leader, None), (&follower, None)]);
    assert_eq!(h.state(), "Empty");
    let records_before = h.records.len();
    let (code, outputs) = h.shard.delete_group(GROUP, h.now_ms);
    assert_eq!(code, 0);
    h.apply(outputs);
    assert_eq!(h.records.len(), records_before + 2, "offset and group tombstones");
    assert!(h.records[records_before..].iter().all(|r| r.value.is_none()));
    assert_eq!(h.state(), "Dead");
    assert_eq!(h.shard.fetch_offsets(GROUP, None), Ok(vec![]));
}

#[test]
fn given_retention_when_offsets_age_should_expire_by_kafka_rules() {
    let config = GroupConfig { offsets_retention_ms: 60_000, ..GroupConfig::default() };
    let mut h = Harness::with_config(config);
    // Simple group: counted from each commit; the group goes with its last offset.
    assert_eq!(h.commit("", -1, &[("orders", 0, 1, "")]), vec![0]);
    h.advance(30_000);
    assert_eq!(h.commit("", -1, &[("orders", 1, 1, "")]), vec![0]);
    h.advance(30_000);
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert_eq!(h.shard.fetch_offsets(GROUP, None).unwrap().len(), 1, "only the older commit expired");
    h.advance(30_000);
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert!(h.shard.group_ids().is_empty(), "group deleted with its last offset");
    assert_eq!(h.records.iter().filter(|r| r.value.is_none()).count(), 3);
}

#[test]
fn given_consumer_group_when_offsets_age_should_keep_subscribed_until_group_is_empty_for_retention() {
    let config = GroupConfig { offsets_retention_ms: 60_000, ..GroupConfig::default() };
    let mut h = Harness::with_config(config);
    let (leader, follower, generation) = h.stable_pair();
    assert_eq!(h.commit(&leader, generation, &[("orders", 0, 1, ""), ("gone", 0, 1, "")]), vec![0, 0]);
    for _ in 0..8 {
        h.advance(9_000);
        assert_eq!(h.heartbeat(&leader, generation), 0);
        assert_eq!(h.heartbeat(&follower, generation), 0);
    }
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    let left: Vec<String> = h.shard.fetch_offsets(GROUP, None).unwrap().into_iter().map(|o| o.topic).collect();
    assert_eq!(left, vec!["orders".to_string()], "unsubscribed topic expired (KIP-496)");
    let _ = h.leave(4, "", &[(&leader, None), (&follower, None)]);
    h.advance(59_000);
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert_eq!(h.shard.fetch_offsets(GROUP, None).unwrap().len(), 1, "empty for less than retention");
    h.advance(1_000);
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert!(h.shard.fetch_offsets(GROUP, None).unwrap().is_empty());
    assert!(h.shard.group_ids().is_empty());
}

#[test]
fn given_empty_group_without_offsets_when_cleanup_runs_should_delete_it_as_kafka_does() {
    let mut h = Harness::new();
    let (leader, follower, _generation) = h.stable_pair();
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert_eq!(h.state(), "Stable", "a group with members stays");
    let _ = h.leave(4, "", &[(&leader, None), (&follower, None)]);
    assert_eq!(h.state(), "Empty");
    let before = h.records.len();
    let outputs = h.shard.expire_offsets(h.now_ms);
    h.apply(outputs);
    assert_eq!(h.state(), "Dead", "never committed, nobody in it: deleted at the next cleanup");
    assert!(h.records[before..].iter().all(|r| r.value.is_none()) && h.records.len() > before);
}
