//! Every response the shard produces must encode at the request's version: kafka-protocol
//! refuses fields a version lacks. The harness encodes each response as it arrives, so
//! these tests only need to drive every API, success and error paths, at every version.

use super::{Harness, Join};

/// Join (v0-9), sync (v0-5), heartbeat (v0-4) and commit through a full rebalance,
/// a static rejoin (v5+) and errors.
#[test]
fn given_each_join_version_when_group_rebalances_should_encode_every_response() {
    for version in 0..=9i16 {
        let mut h = Harness::new();
        h.join_version = version;
        h.sync_version = version.min(5);
        h.heartbeat_version = version.min(4);
        h.commit_version = (version + 2).min(9);
        let static_member = version >= 5;
        let join = if static_member { Join::member("").instance("i-a") } else { Join::member("") };
        let ja = if version >= 4 && !static_member { h.join_new(&join).1 } else { h.join(&join) };
        h.advance(3_000);
        let ra = h.join_response(ja).unwrap_or_else(|| panic!("v{version}: joined"));
        assert_eq!(ra.error_code, 0, "v{version}");
        let (a, generation) = (ra.member_id.to_string(), ra.generation_id);
        let sync = h.sync(&a, generation, &[(&a, b"A")]);
        assert_eq!(h.sync_response(sync).unwrap().assignment.as_ref(), b"A", "v{version}");
        assert_eq!(h.heartbeat(&a, generation), 0);
        assert_eq!(h.commit(&a, generation, &[("orders", 0, 1, "")]), vec![0]);
        if static_member {
            let rejoin = h.join(&Join::member("").instance("i-a"));
            let r = h.join_response(rejoin).unwrap();
            assert_eq!((r.error_code, r.members.len()), (0, 1), "v{version}: static leader sees members");
            assert_eq!(r.skip_assignment, version >= 9);
        }
        // Error paths: bad session timeout, sync/heartbeat of a stranger, a superseded join.
        let bad = h.join(&Join { session_timeout_ms: 1, ..Join::member("") });
        assert_eq!(h.join_response(bad).unwrap().error_code, 26);
        let sync = h.sync("ghost", generation, &[]);
        assert_eq!(h.sync_response(sync).unwrap().error_code, 25);
        assert_eq!(h.heartbeat("ghost", generation), 25);
    }
}

#[test]
fn given_each_leave_version_when_members_leave_should_encode_every_response() {
    for version in 0..=5i16 {
        let mut h = Harness::new();
        let (leader, follower, _) = h.stable_pair();
        if version < 3 {
            assert_eq!(h.leave(version, &follower, &[]).error_code, 0);
            assert_eq!(h.leave(version, "ghost", &[]).error_code, 25);
            assert_eq!(h.leave(version, &leader, &[]).error_code, 0);
        } else {
            let response = h.leave(version, "", &[(&follower, None), ("ghost", None), (&leader, None)]);
            assert_eq!(response.members.iter().map(|m| m.error_code).collect::<Vec<_>>(), vec![0, 25, 0]);
        }
        assert_eq!(h.state(), "Empty", "v{version}");
    }
}

#[test]
fn given_each_commit_version_when_committing_should_encode_every_response() {
    for version in 2..=10i16 {
        let mut h = Harness::new();
        h.commit_version = version;
        assert_eq!(h.commit("", -1, &[("orders", 0, 1, "")]), vec![0], "v{version}");
        assert_eq!(h.commit("ghost", 4, &[("orders", 0, 1, "")]), vec![25], "v{version}");
    }
}

/// DescribeGroups and ListGroups are filled for the newest version; the broker only has to
/// drop `error_message` below v6 and set `authorized_operations`.
#[test]
fn given_described_and_listed_groups_when_encoded_at_each_version_should_succeed() {
    use gregor_protocol::kafka_protocol::messages::{DescribeGroupsResponse, ListGroupsResponse};
    use gregor_protocol::kafka_protocol::protocol::Encodable;

    let mut h = Harness::new();
    let ja = h.join(&Join::member("").instance("i-a"));
    h.advance(3_000);
    let a = h.join_response(ja).unwrap().member_id.to_string();
    let _ = h.sync(&a, 1, &[(&a, b"A")]);
    let described = vec![h.shard.describe_group(super::GROUP), h.shard.describe_group("unknown")];
    assert_eq!(described[0].members[0].member_assignment.as_ref(), b"A");
    assert_eq!((described[1].group_state.as_str(), described[1].error_code), ("Dead", 0));
    for version in 0..=6 {
        let response = DescribeGroupsResponse::default().with_groups(described.clone());
        response.encode(&mut bytes::BytesMut::new(), version).unwrap_or_else(|e| panic!("describe v{version}: {e}"));
    }
    let listed = h.shard.list_groups(&[], &[]);
    assert_eq!((listed[0].group_state.as_str(), listed[0].group_type.as_str()), ("Stable", "classic"));
    assert!(h.shard.list_groups(&["EMPTY".into()], &[]).is_empty());
    assert_eq!(h.shard.list_groups(&["stable".into()], &["Classic".into()]).len(), 1);
    assert!(h.shard.list_groups(&[], &["consumer".into()]).is_empty());
    for version in 0..=5 {
        let response = ListGroupsResponse::default().with_groups(listed.clone());
        response.encode(&mut bytes::BytesMut::new(), version).unwrap_or_else(|e| panic!("list v{version}: {e}"));
    }
}
