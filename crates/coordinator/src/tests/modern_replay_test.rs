//! Consumer-group records: replaying everything a scenario appended into a fresh shard
//! gives the same group; after loading, members carry on (or are fenced) as in Kafka; the
//! values are Kafka's bytes; garbage is an error, never a panic.

use super::modern_harness::{count, join_request, parts, view, Consumer};
use super::{Harness, GROUP};
use crate::modern::records as rec;
use crate::records::{self, RecordKey};
use crate::{GroupConfig, GroupCoordinatorShard, Output, TimerKey};

fn replayed(h: &Harness) -> GroupCoordinatorShard {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    for r in &h.records {
        shard.replay(&r.key, r.value.as_deref()).expect("own records replay");
    }
    shard
}

fn assert_same(h: &Harness, shard: &GroupCoordinatorShard) {
    for version in 0..=1 {
        assert_eq!(
            shard.consumer_group_describe(GROUP, &h.topics, version),
            h.shard.consumer_group_describe(GROUP, &h.topics, version)
        );
    }
    assert_eq!(shard.list_groups(&[], &[]), h.shard.list_groups(&[], &[]));
    assert_eq!(shard.fetch_offsets(GROUP, None), h.shard.fetch_offsets(GROUP, None));
    let (mine, theirs) = (&shard.consumer_groups[GROUP], &h.shard.consumer_groups[GROUP]);
    assert_eq!((mine.members.clone(), mine.targets.clone()), (theirs.members.clone(), theirs.targets.clone()));
    assert_eq!((mine.metadata_hash, mine.assignment_epoch), (theirs.metadata_hash, theirs.assignment_epoch));
}

/// Three members mid-rebalance (one revoking), a static member that left with -2, a
/// departed member and a commit.
fn busy_group(h: &mut Harness) -> Vec<Consumer> {
    h.topics = view(&[("orders", 6), ("payments", 3)]);
    let mut a = Consumer { instance: Some("i-a".into()), ..Consumer::new("member-a") };
    let (mut b, mut c, mut d) = (Consumer::new("member-b"), Consumer::new("member-c"), Consumer::new("member-d"));
    let _ = h.cg_join(&mut a, &["orders", "payments"]);
    let _ = h.cg_join(&mut b, &["orders"]);
    h.settle(&mut [&mut a, &mut b]);
    h.commit_version = 9;
    assert_eq!(h.commit(&b.member_id, b.epoch, &[("orders", 0, 7, "m")]), vec![0]);
    let _ = h.cg_join(&mut d, &["payments"]);
    let leave = join_request(&d.member_id, &[]).with_member_epoch(-1);
    assert_eq!(h.cg(1, leave).error_code, 0);
    let _ = h.cg_join(&mut c, &["orders"]);
    let _ = h.poll(&mut b); // b is told to revoke; the coordinator has not seen it done
    let static_leave = join_request("member-a", &[]).with_member_epoch(-2).with_instance_id(Some(super::s("i-a")));
    assert_eq!(h.cg(1, static_leave).member_epoch, -2);
    assert_eq!(h.cg_state(), "Reconciling");
    vec![a, b, c]
}

#[test]
fn given_scenario_records_when_replayed_into_fresh_shard_should_rebuild_the_same_group() {
    let mut h = Harness::new();
    let _ = busy_group(&mut h);
    assert_same(&h, &replayed(&h));
}

#[test]
fn given_replayed_group_when_loaded_should_rearm_timers_and_let_members_continue() {
    let mut h = Harness::new();
    let consumers = busy_group(&mut h);
    let (_, mut b, mut c) = (consumers[0].clone(), consumers[1].clone(), consumers[2].clone());
    let mut restarted = Harness::new();
    restarted.topics = h.topics.clone();
    restarted.shard = replayed(&h);
    restarted.now_ms = h.now_ms + 60_000;
    let outputs = restarted.shard.on_loaded(restarted.now_ms);
    let sessions =
        outputs.iter().filter(|o| matches!(o, Output::SetTimer { key: TimerKey::ConsumerSession { .. }, .. }));
    assert_eq!(sessions.count(), 3);
    let rebalances =
        outputs.iter().filter(|o| matches!(o, Output::SetTimer { key: TimerKey::RebalanceTimeout { .. }, .. }));
    assert_eq!(rebalances.count(), 1, "b is still revoking");
    restarted.apply(outputs);
    // The static member's instance comes back under a new id and finds its partitions.
    let mut a2 = Consumer { instance: Some("i-a".into()), ..Consumer::new("member-a2") };
    assert_eq!(restarted.cg_join(&mut a2, &["orders", "payments"]).error_code, 0);
    restarted.settle(&mut [&mut a2, &mut b, &mut c]);
    assert_eq!(count(&a2.owned, "orders") + count(&b.owned, "orders") + count(&c.owned, "orders"), 6);
    assert_eq!(count(&a2.owned, "payments"), 3);
    // A member that missed the restart's whole session is gone.
    restarted.advance(46_000);
    assert_eq!(restarted.poll(&mut b).error_code, 25);
}

#[test]
fn given_consumer_records_when_encoded_should_match_kafka_layouts() {
    let key = rec::member_metadata_key("g", "m");
    assert_eq!(&key[..], b"\x00\x05\x00\x01g\x00\x01m");
    assert_eq!(records::decode_key(&key), Ok(RecordKey::ConsumerGroupMember { group: "g".into(), member: "m".into() }));
    // Epoch 7, no tagged fields; with a hash: one tagged field, tag 0, 8 bytes.
    assert_eq!(&rec::group_metadata_value(7, 0)[..], b"\x00\x00\x00\x00\x00\x07\x00");
    assert_eq!(rec::decode_group_metadata(&rec::group_metadata_value(7, -5)), Ok((7, -5)));
    let value = rec::CurrentAssignmentValue {
        member_epoch: 3,
        previous_member_epoch: 2,
        state: 1,
        assigned: parts(&[("orders", &[0, 2])]),
        pending_revocation: parts(&[("orders", &[1])]),
    };
    let bytes = rec::current_assignment_value(&value);
    assert_eq!(&bytes[..11], b"\x00\x00\x00\x00\x00\x03\x00\x00\x00\x02\x01");
    assert_eq!(bytes[11], 2, "compact array of one topic");
    assert_eq!(rec::decode_current_assignment(&bytes), Ok(value));
    let member = rec::MemberValue {
        instance_id: None,
        rack_id: Some("r".into()),
        client_id: "c".into(),
        client_host: "/h".into(),
        subscribed_topic_names: vec!["t".into()],
        subscribed_topic_regex: None,
        rebalance_timeout_ms: 5,
        server_assignor: Some("range".into()),
    };
    let bytes = rec::member_value(&member);
    assert_eq!(&bytes[..13], b"\x00\x00\x00\x02r\x02c\x03/h\x02\x02t");
    assert_eq!(rec::decode_member(&bytes), Ok(member));
}

#[test]
fn given_garbage_consumer_values_when_replayed_should_error_without_panicking() {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    let keys = [
        rec::group_metadata_key("g"),
        rec::member_metadata_key("g", "m"),
        rec::target_metadata_key("g"),
        rec::target_member_key("g", "m"),
        rec::current_assignment_key("g", "m"),
    ];
    let garbage: [&[u8]; 6] = [
        b"",
        b"\x00",
        b"\x00\x01\x00\x00\x00\x01\x00",
        b"\x00\x00\xff\xff\xff\xff\xff",
        b"\x00\x00\x05",
        b"\x00\x00\x00\x00\x00\x01\x01\x00\x80",
    ];
    for key in &keys {
        for value in garbage {
            let _ = shard.replay(key, Some(value)); // an error or a harmless value, never a panic
        }
        assert!(shard.replay(key, Some(b"\x00\x07")).is_err(), "unknown value version");
        shard.replay(key, None).expect("tombstones always replay");
    }
}
