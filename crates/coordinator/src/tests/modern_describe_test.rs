//! ConsumerGroupDescribe, and consumer groups through the classic APIs: ListGroups,
//! DescribeGroups, JoinGroup, DeleteGroups and OffsetCommit/OffsetFetch with member epochs.

use bytes::BytesMut;
use gregor_protocol::kafka_protocol::messages::ConsumerGroupDescribeResponse;
use gregor_protocol::kafka_protocol::protocol::Encodable;

use super::modern_harness::{count, join_request, view, Consumer};
use super::{Harness, Join, GROUP};

fn stable_pair(h: &mut Harness) -> (Consumer, Consumer) {
    h.topics = view(&[("orders", 4)]);
    let mut a = Consumer { instance: Some("i-a".into()), ..Consumer::new("member-a") };
    let mut b = Consumer::new("member-b");
    let _ = h.cg_join(&mut a, &["orders"]);
    let _ = h.cg_join(&mut b, &["orders"]);
    h.settle(&mut [&mut a, &mut b]);
    (a, b)
}

#[test]
fn given_stable_group_when_described_should_show_members_epochs_and_assignments_at_v0_and_v1() {
    let mut h = Harness::new();
    let (a, _) = stable_pair(&mut h);
    for version in 0..=1 {
        let g = h.shard.consumer_group_describe(GROUP, &h.topics, version);
        assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"));
        assert_eq!((g.group_epoch, g.assignment_epoch, g.assignor_name.as_str()), (2, 2, "uniform"));
        let m = &g.members[0];
        assert_eq!((m.member_id.as_str(), m.instance_id.as_ref().map(|s| s.as_str())), ("member-a", Some("i-a")));
        assert_eq!((m.member_epoch, m.client_id.as_str(), m.client_host.as_str()), (a.epoch, "consumer", "/10.0.0.1"));
        assert_eq!(m.subscribed_topic_names.iter().map(|t| t.as_str()).collect::<Vec<_>>(), vec!["orders"]);
        assert_eq!(m.assignment, m.target_assignment);
        assert_eq!(m.assignment.topic_partitions[0].topic_name.as_str(), "orders");
        assert_eq!(m.assignment.topic_partitions[0].partitions.len(), count(&a.owned, "orders"));
        assert_eq!(m.member_type, if version == 1 { 1 } else { -1 });
        let response = ConsumerGroupDescribeResponse::default().with_groups(vec![g.clone()]);
        response.encode(&mut BytesMut::new(), version).unwrap_or_else(|e| panic!("v{version}: {e}"));
    }
}

#[test]
fn given_unknown_or_classic_group_when_described_should_answer_group_id_not_found() {
    let mut h = Harness::new();
    let _ = h.stable_pair();
    let classic = h.shard.consumer_group_describe(GROUP, &h.topics, 1);
    assert_eq!(classic.error_code, 69);
    assert_eq!(
        classic.error_message.as_ref().map(|s| s.as_str()),
        Some("Group analytics-group is not a consumer group.")
    );
    assert_eq!(h.shard.consumer_group_describe("nope", &h.topics, 0).error_code, 69);
    // And a consumer heartbeat cannot take over a classic group with members.
    let r = h.cg(1, join_request("m", &["orders"]));
    assert_eq!(r.error_code, 69);
}

#[test]
fn given_consumer_group_when_listed_or_described_by_classic_apis_should_show_as_consumer() {
    let mut h = Harness::new();
    let _ = stable_pair(&mut h);
    let listed = h.shard.list_groups(&[], &[]);
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].group_type.as_str(), listed[0].group_state.as_str()), ("consumer", "Stable"));
    assert_eq!(listed[0].protocol_type.as_str(), "consumer");
    assert!(h.shard.list_groups(&[], &["classic".into()]).is_empty());
    assert_eq!(h.shard.list_groups(&["STABLE".into()], &["Consumer".into()]).len(), 1);
    assert!(h.shard.list_groups(&["Empty".into()], &[]).is_empty());
    assert!(!h.shard.has_group(GROUP), "DescribeGroups v6: not a classic group");
    assert!(h.shard.is_consumer_group(GROUP));
    assert_eq!(h.shard.describe_group(GROUP).group_state.as_str(), "Dead");
    assert_eq!(h.shard.group_ids(), vec![GROUP.to_owned()]);
}

#[test]
fn given_consumer_group_with_members_when_classic_member_joins_should_answer_inconsistent_group_protocol() {
    let mut h = Harness::new();
    let (a, b) = stable_pair(&mut h);
    let id = h.join(&Join::member(""));
    assert_eq!(h.join_response(id).unwrap().error_code, 23);
    assert_eq!(h.shard.delete_group(GROUP, h.now_ms).0, 68, "NON_EMPTY_GROUP");
    for c in [a, b] {
        let leave = join_request(&c.member_id, &["orders"])
            .with_member_epoch(-1)
            .with_instance_id(c.instance.as_deref().map(super::s));
        assert_eq!(h.cg(1, leave).error_code, 0);
    }
    assert_eq!(h.cg_state(), "Empty");
    // An empty consumer group makes way for a classic one, as in Kafka.
    let (_, id) = h.join_new(&Join::member(""));
    h.advance(3_000);
    assert_eq!(h.join_response(id).unwrap().error_code, 0);
    assert!(!h.shard.is_consumer_group(GROUP));
}

#[test]
fn given_empty_consumer_group_when_deleted_should_tombstone_group_and_offsets() {
    let mut h = Harness::new();
    let (a, _) = stable_pair(&mut h);
    h.commit_version = 9;
    assert_eq!(h.commit(&a.member_id, a.epoch, &[("orders", 0, 5, "")]), vec![0]);
    h.advance(46_000); // nobody heartbeats: both sessions run out
    assert_eq!(h.cg_state(), "Empty");
    let (code, outputs) = h.shard.delete_group(GROUP, h.now_ms);
    assert_eq!(code, 0);
    let records: Vec<crate::Record> = outputs
        .into_iter()
        .flat_map(|o| match o {
            crate::Output::Append(records) => records,
            _ => vec![],
        })
        .collect();
    assert!(records.iter().all(|r| r.value.is_none()));
    assert_eq!(records.len(), 3, "offset, target metadata and group tombstones");
    assert!(h.shard.group_ids().is_empty());
}

#[test]
fn given_member_epochs_when_committing_offsets_should_check_them() {
    let mut h = Harness::new();
    let (a, b) = stable_pair(&mut h);
    h.commit_version = 9;
    assert_eq!(h.commit(&a.member_id, a.epoch, &[("orders", 0, 5, "")]), vec![0]);
    assert_eq!(h.commit(&a.member_id, a.epoch - 1, &[("orders", 0, 5, "")]), vec![113], "STALE_MEMBER_EPOCH");
    assert_eq!(h.commit("ghost", 2, &[("orders", 0, 5, "")]), vec![25]);
    assert_eq!(h.commit("", -1, &[("orders", 0, 5, "")]), vec![25], "standalone commits need an empty group");
    h.commit_version = 8;
    assert_eq!(h.commit(&b.member_id, b.epoch, &[("orders", 1, 5, "")]), vec![35], "UNSUPPORTED_VERSION below v9");
    assert_eq!(h.shard.validate_offset_fetch(GROUP, Some(&a.member_id), a.epoch), Ok(()));
    assert_eq!(h.shard.validate_offset_fetch(GROUP, None, -1), Ok(()));
    let stale = h.shard.validate_offset_fetch(GROUP, Some(&a.member_id), a.epoch + 1);
    assert_eq!(stale.map_err(|e| e.code()), Err(113));
    assert!(h.shard.groups.is_empty(), "commits made no classic group");
    // Offsets of topics nobody subscribes to expire; subscribed ones stay.
    h.commit_version = 9;
    assert_eq!(h.commit(&a.member_id, a.epoch, &[("gone", 0, 1, "")]), vec![0]);
    let outputs = h.shard.expire_offsets(h.now_ms + 10_080 * 60_000);
    h.apply(outputs);
    let left: Vec<String> = h.shard.fetch_offsets(GROUP, None).unwrap().into_iter().map(|o| o.topic).collect();
    assert_eq!(left, vec!["orders"]);
}
