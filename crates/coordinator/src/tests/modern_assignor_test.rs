//! The server-side assignors: every subscribed partition to exactly one subscriber,
//! balanced per topic, `uniform` sticky, `range` in contiguous co-partitioned ranges.

use std::collections::{BTreeMap, BTreeSet};

use super::modern_harness::{count, parts, topic_id, view, Consumer};
use super::Harness;
use crate::modern::assignor::{assign, AssignorMember};
use crate::modern::Partitions;
use crate::Uuid;

fn member<'a>(id: &'a str, topics: &[&str], previous: Option<&'a Partitions>) -> AssignorMember<'a> {
    AssignorMember { member_id: id, topics: topics.iter().map(|t| topic_id(t)).collect(), previous }
}

fn counts(topics: &[(&str, i32)]) -> BTreeMap<Uuid, i32> {
    topics.iter().map(|(t, n)| (topic_id(t), *n)).collect()
}

/// Each partition of each topic exactly once, and only to subscribers.
fn assert_complete(result: &BTreeMap<String, Partitions>, members: &[AssignorMember<'_>], topics: &[(&str, i32)]) {
    for (topic, n) in topics {
        let mut seen = BTreeSet::new();
        for (id, assignment) in result {
            let subscribed = members.iter().any(|m| m.member_id == id && m.topics.contains(&topic_id(topic)));
            for p in assignment.get(&topic_id(topic)).into_iter().flatten() {
                assert!(subscribed, "{id} got {topic} without subscribing");
                assert!(seen.insert(*p), "{topic}-{p} twice");
            }
        }
        assert_eq!(seen.len(), usize::try_from(*n).unwrap(), "{topic} fully assigned");
    }
}

#[test]
fn given_homogeneous_members_when_uniform_assigns_should_balance_each_topic_and_totals() {
    let topics = [("a", 7), ("b", 3), ("c", 1)];
    let members = [
        member("m1", &["a", "b", "c"], None),
        member("m2", &["a", "b", "c"], None),
        member("m3", &["a", "b", "c"], None),
    ];
    let result = assign("uniform", &members, &counts(&topics));
    assert_complete(&result, &members, &topics);
    for (topic, _) in topics {
        let per: Vec<usize> = result.values().map(|p| count(p, topic)).collect();
        assert!(per.iter().max().unwrap() - per.iter().min().unwrap() <= 1, "{topic}: {per:?}");
    }
    let totals: Vec<usize> = result.values().map(|p| p.values().map(BTreeSet::len).sum()).collect();
    assert!(totals.iter().max().unwrap() - totals.iter().min().unwrap() <= 1, "{totals:?}");
}

#[test]
fn given_heterogeneous_members_when_uniform_assigns_should_respect_subscriptions() {
    let topics = [("a", 4), ("b", 5)];
    let members = [member("m1", &["a"], None), member("m2", &["a", "b"], None), member("m3", &["b"], None)];
    let result = assign("uniform", &members, &counts(&topics));
    assert_complete(&result, &members, &topics);
    assert_eq!((count(&result["m1"], "a"), count(&result["m2"], "a")), (2, 2));
}

#[test]
fn given_previous_assignment_when_member_added_or_removed_should_move_only_what_balance_needs() {
    let topics = [("a", 12)];
    let first = assign("uniform", &[member("m1", &["a"], None), member("m2", &["a"], None)], &counts(&topics));
    let members = [
        member("m1", &["a"], Some(&first["m1"])),
        member("m2", &["a"], Some(&first["m2"])),
        member("m3", &["a"], None),
    ];
    let second = assign("uniform", &members, &counts(&topics));
    assert_complete(&second, &members, &topics);
    for id in ["m1", "m2"] {
        assert!(second[id][&topic_id("a")].is_subset(&first[id][&topic_id("a")]), "{id} only gives up partitions");
        assert_eq!(count(&second[id], "a"), 4);
    }
    let after_leave = [member("m1", &["a"], Some(&second["m1"])), member("m3", &["a"], Some(&second["m3"]))];
    let third = assign("uniform", &after_leave, &counts(&topics));
    for id in ["m1", "m3"] {
        assert!(second[id][&topic_id("a")].is_subset(&third[id][&topic_id("a")]), "{id} keeps what it had");
    }
}

#[test]
fn given_range_assignor_when_assigning_should_lay_out_contiguous_co_partitioned_ranges() {
    let topics = [("a", 5), ("b", 5)];
    let members = [member("m2", &["a", "b"], None), member("m1", &["a", "b"], None)];
    let result = assign("range", &members, &counts(&topics));
    assert_complete(&result, &members, &topics);
    assert_eq!(result["m1"], parts(&[("a", &[0, 1, 2]), ("b", &[0, 1, 2])]));
    assert_eq!(result["m2"], parts(&[("a", &[3, 4]), ("b", &[3, 4])]));
}

#[test]
fn given_members_asking_for_range_when_group_assigns_should_use_it() {
    let mut h = Harness::new();
    h.topics = view(&[("a", 4), ("b", 4)]);
    let (mut m1, mut m2) = (Consumer::new("m1"), Consumer::new("m2"));
    for m in [&mut m1, &mut m2] {
        let request = super::modern_harness::join_request(&m.member_id, &["a", "b"])
            .with_server_assignor(Some(super::s("range")));
        let r = h.cg(1, request);
        assert_eq!(r.error_code, 0);
        m.epoch = r.member_epoch;
        m.owned = super::modern_harness::to_partitions(&r).unwrap_or_default();
    }
    h.settle(&mut [&mut m1, &mut m2]);
    assert_eq!(m1.owned, parts(&[("a", &[0, 1]), ("b", &[0, 1])]));
    assert_eq!(m2.owned, parts(&[("a", &[2, 3]), ("b", &[2, 3])]));
    let described = h.shard.consumer_group_describe(super::GROUP, &h.topics, 1);
    assert_eq!(described.assignor_name.as_str(), "range");
}

#[test]
fn given_no_subscribers_or_empty_topics_when_assigning_should_not_panic() {
    let topics = [("a", 0), ("b", 3)];
    let members = [member("m1", &["zzz"], None)];
    let result = assign("uniform", &members, &counts(&topics));
    assert!(result["m1"].is_empty());
    assert!(assign("range", &[], &counts(&topics)).is_empty());
}
