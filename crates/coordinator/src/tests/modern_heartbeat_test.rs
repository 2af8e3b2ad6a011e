//! ConsumerGroupHeartbeat: joining, reconciliation without double ownership, leaving,
//! timeouts, static members, epoch fencing and what bumps the group epoch.

use super::modern_harness::{count, join_request, parts, view, Consumer};
use super::{s, Harness, GROUP};
use crate::{GroupConfig, TopicsView};

fn harness(topics: TopicsView) -> Harness {
    let mut h = Harness::new();
    h.topics = topics;
    h
}

fn group_epoch(h: &Harness) -> i32 {
    h.shard.consumer_groups[GROUP].group_epoch
}

/// Two members on one 6-partition topic, settled.
fn stable_pair(h: &mut Harness) -> (Consumer, Consumer) {
    let (mut a, mut b) = (Consumer::new("member-a"), Consumer::new("member-b"));
    let ra = h.cg_join(&mut a, &["orders"]);
    assert_eq!((ra.error_code, ra.member_epoch, count(&a.owned, "orders")), (0, 1, 6));
    let rb = h.cg_join(&mut b, &["orders"]);
    assert_eq!((rb.error_code, rb.member_epoch), (0, 2));
    assert!(b.owned.is_empty(), "a still owns everything");
    h.settle(&mut [&mut a, &mut b]);
    (a, b)
}

#[test]
fn given_two_members_when_they_join_should_balance_and_stabilise() {
    let mut h = harness(view(&[("orders", 6)]));
    let (a, b) = stable_pair(&mut h);
    assert_eq!((count(&a.owned, "orders"), count(&b.owned, "orders")), (3, 3));
    assert_eq!((a.epoch, b.epoch), (2, 2));
    let r = h.poll(&mut a.clone());
    assert!(r.assignment.is_none(), "unchanged assignment is not resent");
    assert_eq!(r.heartbeat_interval_ms, 5_000);
}

#[test]
fn given_third_member_when_it_joins_should_get_partitions_only_after_their_owner_revoked_them() {
    let mut h = harness(view(&[("orders", 6)]));
    let (mut a, mut b) = stable_pair(&mut h);
    let (a_before, b_before) = (a.owned.clone(), b.owned.clone());
    let mut c = Consumer::new("member-c");
    let rc = h.cg_join(&mut c, &["orders"]);
    assert_eq!((rc.member_epoch, c.owned.len()), (3, 0), "nothing is free yet");
    // a is told to revoke one partition but keeps its epoch until it reports having done so.
    let ra = h.poll(&mut a.clone());
    assert_eq!(ra.member_epoch, 2);
    let kept = super::modern_harness::to_partitions(&ra).expect("revocation is an assignment change");
    assert_eq!(count(&kept, "orders"), 2);
    // c still waits: a has not confirmed yet (it heartbeats again without revoking).
    assert!(h.poll(&mut c).assignment.is_none());
    let still_owning = h.poll(&mut a);
    assert_eq!(still_owning.member_epoch, 2, "a reported owning all three: still revoking");
    a.owned = kept;
    assert_eq!(h.poll(&mut a).member_epoch, 3);
    h.settle(&mut [&mut a, &mut b, &mut c]);
    for member in [&a, &b, &c] {
        assert_eq!(count(&member.owned, "orders"), 2, "{}", member.member_id);
    }
    // Uniform is sticky: a and b each gave up exactly one partition.
    let kept_by = |before: &crate::modern::Partitions, now: &crate::modern::Partitions| {
        before.values().flatten().filter(|p| now.values().flatten().any(|q| q == *p)).count()
    };
    assert_eq!((kept_by(&a_before, &a.owned), kept_by(&b_before, &b.owned)), (2, 2));
}

#[test]
fn given_stable_pair_when_one_leaves_should_give_the_other_everything() {
    let mut h = harness(view(&[("orders", 6)]));
    let (mut a, b) = stable_pair(&mut h);
    let leave = join_request(&b.member_id, &["orders"]).with_member_epoch(-1).with_rebalance_timeout_ms(-1);
    let r = h.cg(1, leave);
    assert_eq!((r.error_code, r.member_epoch), (0, -1));
    assert_eq!(group_epoch(&h), 3);
    assert_eq!(h.cg_state(), "Assigning");
    h.settle(&mut [&mut a]);
    assert_eq!((a.epoch, count(&a.owned, "orders")), (3, 6));
}

#[test]
fn given_silent_member_when_session_expires_should_be_removed_and_partitions_reassigned() {
    let mut h = harness(view(&[("orders", 6)]));
    let (mut a, b) = stable_pair(&mut h);
    for _ in 0..9 {
        h.advance(5_000);
        let _ = h.poll(&mut a);
    }
    assert!(!h.shard.consumer_groups[GROUP].members.contains_key(&b.member_id), "b expired after 45s");
    h.settle(&mut [&mut a]);
    assert_eq!(count(&a.owned, "orders"), 6);
    let r = h.poll(&mut b.clone());
    assert_eq!(r.error_code, 25, "UNKNOWN_MEMBER_ID");
}

#[test]
fn given_member_that_never_revokes_when_rebalance_timeout_passes_should_be_removed() {
    let mut h = harness(view(&[("orders", 6)]));
    let (mut a, b) = stable_pair(&mut h);
    let mut c = Consumer::new("member-c");
    let _ = h.cg_join(&mut c, &["orders"]);
    let stubborn = b.clone();
    let _ = h.poll(&mut stubborn.clone()); // told to revoke, never does
    for _ in 0..7 {
        h.advance(5_000);
        let _ = h.poll(&mut stubborn.clone());
        let _ = h.poll(&mut a);
        let _ = h.poll(&mut c);
    }
    assert!(!h.shard.consumer_groups[GROUP].members.contains_key(&b.member_id), "30s rebalance timeout");
    assert_eq!(h.poll(&mut stubborn.clone()).error_code, 25);
}

#[test]
fn given_static_member_when_it_bounces_should_resume_its_partitions_without_rebalance() {
    let mut h = harness(view(&[("orders", 4)]));
    let mut a = Consumer { instance: Some("i-a".into()), ..Consumer::new("a-1") };
    let mut b = Consumer::new("member-b");
    let _ = h.cg_join(&mut a, &["orders"]);
    let _ = h.cg_join(&mut b, &["orders"]);
    h.settle(&mut [&mut a, &mut b]);
    let epoch = group_epoch(&h);
    let owned = a.owned.clone();
    let leave = join_request("a-1", &["orders"]).with_member_epoch(-2).with_instance_id(Some(s("i-a")));
    assert_eq!(h.cg(1, leave).member_epoch, -2);
    // Someone else cannot take the instance id while it is held.
    let mut thief = Consumer { instance: Some("i-b".into()), ..Consumer::new("t") };
    let _ = h.cg_join(&mut thief, &["orders"]);
    let mut dup = Consumer { instance: Some("i-b".into()), ..Consumer::new("t-2") };
    assert_eq!(h.cg_join(&mut dup, &["orders"]).error_code, 111, "UNRELEASED_INSTANCE_ID");
    let mut a2 = Consumer { instance: Some("i-a".into()), ..Consumer::new("a-2") };
    let r = h.cg_join(&mut a2, &["orders"]);
    assert_eq!(r.error_code, 0);
    assert_eq!(a2.owned, owned, "same partitions");
    assert_eq!(group_epoch(&h), epoch + 1, "only the thief's join bumped the epoch");
    assert_eq!(h.poll(&mut a.clone()).error_code, 25, "the old incarnation is gone");
}

#[test]
fn given_wrong_epochs_when_heartbeating_should_fence_or_refuse() {
    let mut h = harness(view(&[("orders", 6)]));
    let (mut a, _b) = stable_pair(&mut h);
    let ahead = Consumer { epoch: a.epoch + 1, ..a.clone() };
    assert_eq!(h.poll(&mut ahead.clone()).error_code, 110, "FENCED_MEMBER_EPOCH");
    // The previous epoch with owned partitions inside the assignment: a lost response.
    let lost = Consumer { epoch: 1, ..a.clone() };
    let r = h.poll(&mut lost.clone());
    assert_eq!((r.error_code, r.member_epoch), (0, 2));
    assert!(r.assignment.is_some(), "the member missed its assignment");
    let mut outside = lost.clone();
    outside.owned = parts(&[("orders", &[0, 1, 2, 3, 4, 5])]);
    assert_eq!(h.poll(&mut outside).error_code, 110);
    assert_eq!(h.poll(&mut Consumer { epoch: 3, ..Consumer::new("ghost") }).error_code, 25);
    let mut stranger = Consumer { epoch: 1, ..Consumer::new("ghost") };
    let r = h.cg(1, join_request("ghost", &["orders"]).with_group_id(super::GroupId(s("other"))).with_member_epoch(1));
    assert_eq!(r.error_code, 25, "unknown group");
    assert_eq!(h.poll(&mut stranger).error_code, 25);
    assert_eq!(h.poll(&mut a).error_code, 0);
}

#[test]
fn given_changes_when_subscription_or_partitions_change_should_bump_group_epoch() {
    let mut h = harness(view(&[("orders", 4), ("payments", 2)]));
    let (mut a, mut b) = (Consumer::new("member-a"), Consumer::new("member-b"));
    let _ = h.cg_join(&mut a, &["orders"]);
    let _ = h.cg_join(&mut b, &["orders"]);
    h.settle(&mut [&mut a, &mut b]);
    assert_eq!(group_epoch(&h), 2);
    let _ = h.poll(&mut a);
    assert_eq!(group_epoch(&h), 2, "a plain heartbeat changes nothing");
    let resubscribe = join_request(&b.member_id, &["payments", "orders"]).with_member_epoch(b.epoch);
    let r = h.cg(1, resubscribe.with_topic_partitions(Some(super::modern_harness::owned_topics(&b.owned))));
    assert_eq!(r.error_code, 0);
    assert_eq!(group_epoch(&h), 3);
    h.settle(&mut [&mut a, &mut b]);
    assert_eq!((count(&b.owned, "payments"), count(&a.owned, "payments")), (2, 0));
    h.topics = view(&[("orders", 8), ("payments", 2)]);
    let _ = h.poll(&mut a);
    assert_eq!(group_epoch(&h), 4, "partition count change");
    h.settle(&mut [&mut a, &mut b]);
    assert_eq!(count(&a.owned, "orders") + count(&b.owned, "orders"), 8);
}

#[test]
fn given_regex_subscription_when_topics_match_should_assign_them_and_follow_new_topics() {
    let mut h = harness(view(&[("orders", 2), ("orders-eu", 2), ("payments", 2), ("__consumer_offsets", 50)]));
    let mut a = Consumer::new("member-a");
    let request = join_request("member-a", &[])
        .with_subscribed_topic_names(None)
        .with_subscribed_topic_regex(Some(s("orders.*")));
    let r = h.cg(1, request);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    a.epoch = r.member_epoch;
    a.owned = super::modern_harness::to_partitions(&r).unwrap_or_default();
    assert_eq!((count(&a.owned, "orders"), count(&a.owned, "orders-eu"), count(&a.owned, "payments")), (2, 2, 0));
    h.topics.insert("orders-us".into(), (super::modern_harness::topic_id("orders-us"), 3));
    let _ = h.poll(&mut a);
    assert_eq!(count(&a.owned, "orders-us"), 3, "new matching topic joins the subscription");
    let bad =
        join_request("member-b", &[]).with_subscribed_topic_names(None).with_subscribed_topic_regex(Some(s("(orders")));
    assert_eq!(h.cg(1, bad).error_code, 128, "INVALID_REGULAR_EXPRESSION");
}

#[test]
fn given_invalid_requests_when_heartbeating_should_refuse_with_kafka_errors() {
    let mut h = harness(view(&[("orders", 2)]));
    let cases = [
        (join_request("m", &["orders"]).with_rebalance_timeout_ms(-1), 42),
        (join_request("m", &["orders"]).with_subscribed_topic_names(None), 42),
        (join_request("m", &["orders"]).with_topic_partitions(None), 42),
        (join_request("", &["orders"]), 42),
        (join_request("m", &["orders"]).with_instance_id(Some(s(""))), 42),
        (join_request("m", &["orders"]).with_member_epoch(-3), 42),
        (join_request("m", &["orders"]).with_member_epoch(-2), 42),
        (join_request("m", &["orders"]).with_server_assignor(Some(s("sticky"))), 112),
        (join_request("m", &["orders"]).with_group_id(super::GroupId(s(""))), 42),
    ];
    for (request, code) in cases {
        let r = h.cg(1, request.clone());
        assert_eq!(r.error_code, code, "{request:?}");
        assert!(r.error_message.is_some());
    }
    assert!(h.records.is_empty(), "refusals write nothing");
    assert!(h.shard.consumer_groups.is_empty());
}

#[test]
fn given_full_group_when_new_member_joins_should_answer_group_max_size_reached() {
    let mut config = GroupConfig::default();
    config.consumer.max_size = 1;
    let mut h = Harness::with_config(config);
    h.topics = view(&[("orders", 2)]);
    let mut a = Consumer::new("member-a");
    assert_eq!(h.cg_join(&mut a, &["orders"]).error_code, 0);
    assert_eq!(h.cg_join(&mut Consumer::new("member-b"), &["orders"]).error_code, 81);
    assert_eq!(h.cg_join(&mut a, &["orders"]).error_code, 0, "a rejoining member is no new member");
}

#[test]
fn given_v0_member_without_id_when_joining_should_get_a_generated_id() {
    let mut h = harness(view(&[("orders", 2)]));
    let mut a = Consumer { version: 0, ..Consumer::new("") };
    let r = h.cg_join(&mut a, &["orders"]);
    assert_eq!(r.error_code, 0);
    assert_eq!(a.member_id.len(), 36, "uuid-shaped: {}", a.member_id);
    assert_eq!(h.poll(&mut a).error_code, 0);
    let mut v1 = Consumer::new("");
    assert_eq!(h.cg_join(&mut v1, &["orders"]).error_code, 42, "v1 requires the client's id");
}

/// The harness encodes every answer at the version it was asked with; this drives joins,
/// reconciliation, errors and leaves at both versions.
#[test]
fn given_each_version_when_group_rebalances_should_encode_every_response() {
    for version in 0..=1i16 {
        let mut h = harness(view(&[("orders", 4)]));
        let mut a = Consumer { version, ..Consumer::new("member-a") };
        let mut b = Consumer { version, instance: Some("i-b".into()), ..Consumer::new("member-b") };
        assert_eq!(h.cg_join(&mut a, &["orders"]).error_code, 0, "v{version}");
        assert_eq!(h.cg_join(&mut b, &["orders"]).error_code, 0, "v{version}");
        h.settle(&mut [&mut a, &mut b]);
        let errors = [
            h.cg(version, join_request("m", &["orders"]).with_rebalance_timeout_ms(-1)).error_code,
            h.cg(version, join_request("m", &["orders"]).with_server_assignor(Some(s("nope")))).error_code,
            h.poll(&mut Consumer { epoch: 9, version, ..a.clone() }).error_code,
            h.poll(&mut Consumer { epoch: 9, version, ..Consumer::new("ghost") }).error_code,
        ];
        assert_eq!(errors, [42, 112, 110, 25], "v{version}");
        let leave = join_request("member-b", &[]).with_member_epoch(-2).with_instance_id(Some(s("i-b")));
        assert_eq!(h.cg(version, leave).member_epoch, -2);
        let leave = join_request("member-a", &[]).with_member_epoch(-1);
        assert_eq!(h.cg(version, leave).member_epoch, -1);
    }
}
