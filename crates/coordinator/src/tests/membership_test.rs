//! Join, sync, heartbeat, leave, timeouts and static membership.

use super::{Harness, Join, GROUP};
use crate::TimerKey;

#[test]
fn given_two_new_members_when_they_join_and_sync_should_reach_stable_with_assignments() {
    let mut h = Harness::new();
    let (a, ja) = h.join_new(&Join::member(""));
    assert!(a.starts_with("consumer-"), "{a}");
    let (b, jb) = h.join_new(&Join::member(""));
    assert_ne!(a, b);
    assert_eq!(h.state(), "PreparingRebalance");
    // The initial delay (3 s) is extended once because b arrived during it.
    h.advance(3_000);
    assert!(h.join_response(ja).is_none());
    h.advance(3_000);
    let (ra, rb) = (h.join_response(ja).unwrap(), h.join_response(jb).unwrap());
    assert_eq!(ra.generation_id, 1);
    assert_eq!(ra.leader.as_str(), a, "first joined member leads");
    assert_eq!(ra.protocol_name.as_ref().map(|p| p.to_string()), Some("range".into()));
    assert_eq!(ra.members.len(), 2, "leader gets the members");
    assert!(rb.members.is_empty(), "followers do not");
    assert_eq!(h.state(), "CompletingRebalance");

    let follower_sync = h.sync(&b, 1, &[]);
    assert!(h.sync_response(follower_sync).is_none(), "follower waits for the leader");
    let records_before = h.records.len();
    let leader_sync = h.sync(&a, 1, &[(&a, b"A"), (&b, b"B")]);
    assert_eq!(h.records.len(), records_before + 1, "group metadata written");
    assert_eq!(h.sync_response(follower_sync).unwrap().assignment.as_ref(), b"B");
    assert_eq!(h.sync_response(leader_sync).unwrap().assignment.as_ref(), b"A");
    assert_eq!(h.state(), "Stable");
    assert!(!h.timers.contains_key(&TimerKey::Sync { group: GROUP.into() }));
    assert_eq!(h.heartbeat(&a, 1), 0);
}

#[test]
fn given_stable_group_when_third_member_joins_should_rebalance_into_new_generation() {
    let mut h = Harness::new();
    let (leader, follower, generation) = h.stable_pair();
    let (c, jc) = h.join_new(&Join::member(""));
    assert_eq!(h.state(), "PreparingRebalance");
    assert_eq!(h.heartbeat(&follower, generation), 27, "REBALANCE_IN_PROGRESS");
    assert_eq!(h.heartbeat(&leader, generation), 27);
    // Members keep their assignment until they rejoin (cooperative clients rely on it).
    let described = h.shard.describe_group(GROUP);
    assert_eq!(described.members.len(), 3);
    let jl = h.join(&Join::member(&leader));
    assert!(h.join_response(jl).is_none());
    let jf = h.join(&Join::member(&follower));
    for id in [jc, jl, jf] {
        let r = h.join_response(id).expect("everyone rejoined: phase completes at once");
        assert_eq!((r.error_code, r.generation_id), (0, generation + 1));
    }
    assert_eq!(h.join_response(jl).unwrap().members.len(), 3, "leader unchanged, sees all");
    assert_eq!(h.heartbeat(&c, generation), 22, "ILLEGAL_GENERATION for the old generation");
    assert_eq!(h.heartbeat(&c, generation + 1), 0);
}

#[test]
fn given_stable_group_when_session_expires_should_remove_member_and_rebalance() {
    let mut h = Harness::new();
    let (leader, follower, generation) = h.stable_pair();
    h.advance(5_000);
    assert_eq!(h.heartbeat(&leader, generation), 0);
    h.advance(6_000); // the follower's 10 s session ends, the leader's does not
    let described = h.shard.describe_group(GROUP);
    assert_eq!(described.members.len(), 1);
    assert_eq!(described.members[0].member_id.as_str(), leader);
    assert_eq!(h.state(), "PreparingRebalance");
    assert_eq!(h.heartbeat(&follower, generation), 25, "UNKNOWN_MEMBER_ID");
    let jl = h.join(&Join::member(&leader));
    let r = h.join_response(jl).expect("sole member rejoined");
    assert_eq!((r.generation_id, r.members.len()), (generation + 1, 1));
}

#[test]
fn given_rebalance_when_a_member_does_not_rejoin_should_drop_it_at_rebalance_timeout() {
    let mut h = Harness::new();
    let (leader, follower, generation) = h.stable_pair();
    let jl = h.join(&Join::member(&leader)); // leader rejoin triggers a rebalance
    assert_eq!(h.state(), "PreparingRebalance");
    // The follower keeps heartbeating but never rejoins.
    for _ in 0..3 {
        h.advance(5_000);
        assert_eq!(h.heartbeat(&follower, generation), 27);
    }
    h.advance(5_000); // 20 s rebalance timeout
    let r = h.join_response(jl).expect("phase ended");
    assert_eq!((r.generation_id, r.members.len()), (generation + 1, 1));
    assert_eq!(h.heartbeat(&follower, generation), 25);
}

#[test]
fn given_completing_rebalance_when_leader_never_syncs_should_remove_unsynced_and_rebalance() {
    let mut h = Harness::new();
    let (a, ja) = h.join_new(&Join::member(""));
    let (b, jb) = h.join_new(&Join::member(""));
    h.advance(10_000);
    let generation = h.join_response(ja).unwrap().generation_id;
    assert!(h.join_response(jb).is_some());
    let sb = h.sync(&b, generation, &[]);
    h.advance(20_000); // sync timeout = rebalance timeout; a (leader) never synced
    assert_eq!(h.sync_response(sb).unwrap().error_code, 27, "parked sync told to rejoin");
    assert!(!h.shard.describe_group(GROUP).members.iter().any(|m| m.member_id.as_str() == a));
    assert_eq!(h.state(), "PreparingRebalance");
}

#[test]
fn given_last_member_leaves_when_v0_leave_should_make_group_empty_and_persist_it() {
    let mut h = Harness::new();
    let (leader, follower, generation) = h.stable_pair();
    assert_eq!(h.leave(1, &follower, &[]).error_code, 0);
    assert_eq!(h.leave(1, "nobody", &[]).error_code, 25);
    let records_before = h.records.len();
    assert_eq!(h.leave(2, &leader, &[]).error_code, 0);
    assert_eq!(h.state(), "Empty");
    assert_eq!(h.records.len(), records_before + 1, "empty group metadata written");
    let value = crate::records::decode_group_value(h.records.last().unwrap().value.as_ref().unwrap()).unwrap();
    assert_eq!((value.generation, value.members.len()), (generation + 1, 0));
    assert_eq!(h.heartbeat(&leader, generation + 1), 25);
}

#[test]
fn given_static_members_when_batch_leave_should_report_each_and_fence_wrong_member_id() {
    let mut h = Harness::new();
    // Static members join without MEMBER_ID_REQUIRED (KIP-345).
    let ja = h.join(&Join::member("").instance("i-a"));
    let jb = h.join(&Join::member("").instance("i-b"));
    h.advance(10_000);
    let (a, b) =
        (h.join_response(ja).unwrap().member_id.to_string(), h.join_response(jb).unwrap().member_id.to_string());
    let response =
        h.leave(3, "", &[("wrong-id", Some("i-a")), (&b, Some("i-b")), ("", Some("i-unknown")), ("ghost", None)]);
    assert_eq!(response.error_code, 0);
    let codes: Vec<i16> = response.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![82, 0, 25, 25]);
    let members: Vec<String> = h.shard.describe_group(GROUP).members.iter().map(|m| m.member_id.to_string()).collect();
    assert_eq!(members, vec![a.clone()]);
    let response = h.leave(4, "", &[("", Some("i-a"))]);
    assert_eq!(response.members[0].error_code, 0, "instance id alone is enough");
    assert_eq!(h.state(), "Empty");
}

#[test]
fn given_stable_static_member_when_it_rejoins_with_new_member_id_should_keep_assignment_and_fence_old_id() {
    let mut h = Harness::new();
    let ja = h.join(&Join::member("").instance("i-a"));
    let jb = h.join(&Join::member("").instance("i-b"));
    h.advance(10_000);
    let (ra, rb) = (h.join_response(ja).unwrap(), h.join_response(jb).unwrap());
    let (a, b, generation) = (ra.member_id.to_string(), rb.member_id.to_string(), ra.generation_id);
    let _ = h.sync(&b, generation, &[]);
    let _ = h.sync(&a, generation, &[(&a, b"A"), (&b, b"B")]);
    assert_eq!(h.state(), "Stable");

    // b restarts: it knows its instance id but not its member id.
    let rejoin = h.join(&Join::member("").instance("i-b"));
    let r = h.join_response(rejoin).expect("answered without a rebalance");
    assert_eq!((r.error_code, r.generation_id), (0, generation));
    let new_b = r.member_id.to_string();
    assert_ne!(new_b, b);
    assert_eq!(h.state(), "Stable");
    let sync = h.sync(&new_b, generation, &[]);
    assert_eq!(h.sync_response(sync).unwrap().assignment.as_ref(), b"B");

    let meta = h.meta(3);
    let id = meta.id;
    let request = gregor_protocol::kafka_protocol::messages::HeartbeatRequest::default()
        .with_group_id(gregor_protocol::kafka_protocol::messages::GroupId(super::s(GROUP)))
        .with_generation_id(generation)
        .with_member_id(super::s(&b))
        .with_group_instance_id(Some(super::s("i-b")));
    let outputs = h.shard.heartbeat(meta, request, h.now_ms);
    h.apply(outputs);
    match &h.responses[&id] {
        crate::GroupResponse::Heartbeat(r) => assert_eq!(r.error_code, 82, "FENCED_INSTANCE_ID"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn given_join_errors_when_requests_are_invalid_should_answer_kafka_codes() {
    let mut h = Harness::new();
    let cases: Vec<(&str, Join<'_>, i16)> = vec![
        ("session too short", Join { session_timeout_ms: 100, ..Join::member("") }, 26),
        ("session too long", Join { session_timeout_ms: 2_000_000, ..Join::member("") }, 26),
        ("unknown member of unknown group", Join::member("stranger"), 25),
        ("no protocols", Join { protocols: vec![], ..Join::member("") }, 23),
    ];
    for (name, join, code) in cases {
        let id = h.join(&join);
        assert_eq!(h.join_response(id).unwrap().error_code, code, "{name}");
    }
    assert!(h.shard.group_ids().is_empty(), "refused joins leave no group behind");

    let (_member, _) = h.join_new(&Join::member(""));
    let other = Join { protocols: vec![("sticky", super::subscription(&["orders"]))], ..Join::member("") };
    let id = h.join(&other);
    assert_eq!(h.join_response(id).unwrap().error_code, 23, "no common protocol");
}

#[test]
fn given_max_size_when_group_is_full_should_refuse_new_member() {
    let config = crate::GroupConfig { max_size: 1, ..crate::GroupConfig::default() };
    let mut h = Harness::with_config(config);
    let (_a, ja) = h.join_new(&Join::member(""));
    h.advance(3_000);
    assert_eq!(h.join_response(ja).unwrap().error_code, 0);
    let jb = h.join(&Join::member(""));
    assert_eq!(h.join_response(jb).unwrap().error_code, 81, "GROUP_MAX_SIZE_REACHED");
}

#[test]
fn given_v3_client_when_joining_without_member_id_should_be_admitted_directly() {
    let mut h = Harness::new();
    let id = h.join_at(&Join::member(""), 3);
    assert!(h.join_response(id).is_none(), "parked: no MEMBER_ID_REQUIRED before v4");
    h.advance(3_000);
    let r = h.join_response(id).unwrap();
    assert_eq!((r.error_code, r.generation_id), (0, 1));
}

#[test]
fn given_pending_member_when_it_never_rejoins_should_expire_and_not_block_the_rebalance() {
    let mut h = Harness::new();
    let (_a, ja) = h.join_new(&Join::member(""));
    let first = h.join(&Join::member(""));
    assert_eq!(h.join_response(first).unwrap().error_code, 79);
    h.advance(3_000);
    assert_eq!(h.join_response(ja).unwrap().members.len(), 1, "the pending id is no member");
    h.advance(10_000);
    assert!(h.shard.groups[GROUP].pending_members.is_empty());
}

#[test]
fn given_sync_errors_when_generation_or_member_is_wrong_should_answer_kafka_codes() {
    let mut h = Harness::new();
    let (leader, _follower, generation) = h.stable_pair();
    let cases = [("old generation", leader.as_str(), generation - 1, 22), ("unknown member", "ghost", generation, 25)];
    for (name, member, generation, code) in cases {
        let id = h.sync(member, generation, &[]);
        assert_eq!(h.sync_response(id).unwrap().error_code, code, "{name}");
    }
    let _ = h.join(&Join::member(&leader));
    let id = h.sync(&leader, generation, &[]);
    assert_eq!(h.sync_response(id).unwrap().error_code, 27, "rebalance in progress");
}

#[test]
fn given_only_a_pending_member_when_it_never_returns_should_forget_the_group() {
    let mut h = Harness::new();
    let id = h.join(&Join::member(""));
    assert_eq!(h.join_response(id).unwrap().error_code, 79);
    assert_eq!(h.shard.group_ids(), vec![GROUP.to_string()]);
    h.advance(10_000);
    assert!(h.shard.group_ids().is_empty());
    assert!(h.records.is_empty(), "nothing was ever persisted");
}

#[test]
fn given_stable_group_when_follower_rejoins_unchanged_should_get_current_generation_without_rebalance() {
    let mut h = Harness::new();
    let (leader, follower, generation) = h.stable_pair();
    let id = h.join(&Join::member(&follower));
    let r = h.join_response(id).expect("answered at once");
    assert_eq!((r.error_code, r.generation_id, r.leader.to_string()), (0, generation, leader.clone()));
    assert_eq!(h.state(), "Stable");
    // Changed metadata (a new subscription, or KIP-429 owned partitions) rebalances.
    let changed =
        Join { protocols: vec![("range", super::subscription(&["orders", "refunds"]))], ..Join::member(&follower) };
    let id = h.join(&changed);
    assert!(h.join_response(id).is_none());
    assert_eq!(h.state(), "PreparingRebalance");
    assert_eq!(h.heartbeat(&leader, generation), 27);
}

#[test]
fn given_members_keep_arriving_when_initial_delay_extends_should_stop_at_rebalance_timeout() {
    let mut h = Harness::new();
    let (_a, ja) = h.join_new(&Join::member("")); // rebalance timeout 20 s, delay 3 s
    let mut waited = 0;
    while h.join_response(ja).is_none() {
        let _ = h.join_new(&Join::member(""));
        h.advance(1_000);
        waited += 1_000;
    }
    assert!(waited <= 20_000, "joined after {waited} ms");
    assert!(waited > 3_000, "the delay was extended");
}
