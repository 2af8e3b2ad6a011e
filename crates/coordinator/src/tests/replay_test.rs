//! Records: every state a scenario persisted comes back from replay; old record versions
//! load; garbage is an error, never a panic; partition_for matches Java's hashCode.

use bytes::{BufMut, BytesMut};

use super::{Harness, Join, GROUP};
use crate::records::{self, RecordKey};
use crate::{partition_for, CoordinatorError, GroupConfig, GroupCoordinatorShard, Output, TimerKey};

fn replayed(h: &Harness) -> GroupCoordinatorShard {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    for r in &h.records {
        shard.replay(&r.key, r.value.as_deref()).expect("own records replay");
    }
    shard
}

fn assert_same_view(h: &Harness, shard: &GroupCoordinatorShard) {
    assert_eq!(shard.group_ids(), h.shard.group_ids());
    for group in h.shard.group_ids() {
        assert_eq!(shard.describe_group(&group), h.shard.describe_group(&group), "{group}");
        assert_eq!(shard.fetch_offsets(&group, None), h.shard.fetch_offsets(&group, None), "{group}");
    }
    assert_eq!(shard.list_groups(&[], &[]), h.shard.list_groups(&[], &[]));
}

#[test]
fn given_scenario_records_when_replayed_into_fresh_shard_should_give_same_answers() {
    let mut h = Harness::new();
    let (leader, follower, generation) = h.stable_pair();
    assert_eq!(h.commit(&leader, generation, &[("orders", 0, 10, "a"), ("orders", 1, 11, "")]), vec![0, 0]);
    assert_eq!(h.commit(&follower, generation, &[("orders", 1, 12, "b"), ("gone", 0, 1, "")]), vec![0, 0]);
    let outputs = h.shard.expire_offsets(h.now_ms + 10_080 * 60_000);
    h.apply(outputs);
    assert_same_view(&h, &replayed(&h));

    // Emptied, the group still comes back (with its generation).
    let _ = h.leave(4, "", &[(&leader, None), (&follower, None)]);
    let shard = replayed(&h);
    assert_same_view(&h, &shard);
    assert_eq!(shard.groups[GROUP].generation_id, generation + 1, "Empty keeps its generation");
}

#[test]
fn given_replayed_stable_group_when_loaded_should_rearm_sessions_and_expire_silent_members() {
    let mut h = Harness::new();
    let (leader, follower, generation) = h.stable_pair();
    let mut restarted = Harness::new();
    restarted.shard = replayed(&h);
    restarted.now_ms = h.now_ms + 60_000;
    let outputs = restarted.shard.on_loaded(restarted.now_ms);
    assert_eq!(
        outputs.iter().filter(|o| matches!(o, Output::SetTimer { key: TimerKey::Heartbeat { .. }, .. })).count(),
        2
    );
    restarted.apply(outputs);
    assert_eq!(restarted.state(), "Stable");
    restarted.advance(5_000);
    assert_eq!(restarted.heartbeat(&leader, generation), 0);
    let sync = restarted.sync(&follower, generation, &[]);
    assert_eq!(restarted.sync_response(sync).unwrap().assignment.as_ref(), b"F", "assignment survived");
    restarted.advance(9_000);
    assert_eq!(restarted.heartbeat(&leader, generation), 0);
    restarted.advance(2_000); // the follower's session (renewed by its sync) ran out
    assert_eq!(restarted.state(), "PreparingRebalance");
    let jl = restarted.join(&Join::member(&leader));
    assert_eq!(restarted.join_response(jl).unwrap().generation_id, generation + 1);
}

/// (what, key, value)
type GarbageCase = (&'static str, Vec<u8>, Option<Vec<u8>>);

#[test]
fn given_garbage_bytes_when_replayed_should_error_without_panicking() {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    let good_group = records::group_metadata_value(&Harness::new_stable_group_value());
    let cases: Vec<GarbageCase> = vec![
        ("empty key", vec![], None),
        ("one byte key", vec![0], None),
        ("negative key version", vec![0xff, 0xff, 0, 0], None),
        ("offset key truncated", vec![0, 1, 0, 5, b'g'], None),
        ("negative string length", vec![0, 2, 0x80, 0], None),
        ("invalid utf-8", vec![0, 2, 0, 2, 0xc3, 0x28], None),
        ("offset value garbage", records::offset_commit_key("g", "t", 0).to_vec(), Some(vec![0, 3, 1])),
        ("offset value version 9", records::offset_commit_key("g", "t", 0).to_vec(), Some(vec![0, 9, 0, 0])),
        ("group value huge count", records::group_metadata_key("g").to_vec(), Some(huge_member_count())),
        (
            "group value truncated",
            records::group_metadata_key("g").to_vec(),
            Some(good_group[..good_group.len() - 1].to_vec()),
        ),
    ];
    for (name, key, value) in cases {
        assert!(shard.replay(&key, value.as_deref()).is_err(), "{name}");
    }
    assert!(shard.group_ids().is_empty(), "failed replays change nothing");
    // Every prefix of valid records fails cleanly, and pseudo-random bytes never panic.
    for cut in 0..good_group.len() {
        assert!(records::decode_group_value(&good_group[..cut]).is_err());
    }
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20_000 {
        let len = (seed % 40) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        let _ = shard.replay(&bytes, Some(&bytes));
        let _ = shard.replay(&records::group_metadata_key("g"), Some(&bytes));
        let _ = shard.replay(&records::offset_commit_key("g", "t", 1), Some(&bytes));
    }
}

fn huge_member_count() -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    buf.put_i16(0); // protocol type ""
    buf.put_i32(1); // generation
    buf.put_i16(-1);
    buf.put_i16(-1);
    buf.put_i64(0);
    buf.put_i32(i32::MAX); // members that are not there
    buf.to_vec()
}

impl Harness {
    fn new_stable_group_value() -> records::GroupValue {
        let mut h = Harness::new();
        let _ = h.stable_pair();
        h.shard.groups[GROUP].to_record()
    }
}

#[test]
fn given_newer_key_versions_when_replayed_should_skip_them() {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    // 3 and 5-8 are consumer-group records now (see modern_replay_test); 4 (partition
    // metadata, dropped by Kafka 4.1), 16 (regex resolutions) and share/streams types are not.
    for version in [4i16, 9, 16, 17] {
        let mut key = version.to_be_bytes().to_vec();
        key.extend_from_slice(b"\x00\x01g");
        assert_eq!(shard.replay(&key, Some(b"anything")), Ok(()));
        assert_eq!(records::decode_key(&key), Ok(RecordKey::Unknown { version }));
    }
    assert!(shard.group_ids().is_empty());
}

#[test]
fn given_old_value_versions_when_replayed_should_load_them() {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    // OffsetCommitValue v0: offset, metadata, commit timestamp.
    let mut v0 = BytesMut::new();
    v0.put_i16(0);
    v0.put_i64(77);
    v0.put_i16(2);
    v0.put_slice(b"md");
    v0.put_i64(5);
    // v1 adds an expire timestamp.
    let mut v1 = v0.clone();
    v1[1] = 1;
    v1.put_i64(99);
    let key0 = records::offset_commit_key("g", "t", 0);
    let key1 = records::offset_commit_key("g", "t", 1);
    shard.replay(&key0, Some(&v0)).unwrap();
    shard.replay(&key1, Some(&v1)).unwrap();
    let offsets = shard.fetch_offsets("g", None).unwrap();
    assert_eq!(offsets.iter().map(|o| (o.offset, o.leader_epoch)).collect::<Vec<_>>(), vec![(77, -1), (77, -1)]);
    assert_eq!(shard.offsets["g"][&("t".to_string(), 1)].expire_timestamp_ms, Some(99));
    // GroupMetadataValue v0: no rebalance timeout, state timestamp or instance id.
    let value = records::decode_group_value(&rebuild_v0_group()).unwrap();
    assert_eq!(value.members[0].rebalance_timeout_ms, 30_000, "v0: rebalance = session timeout");
    shard.replay(&records::group_metadata_key("old"), Some(&rebuild_v0_group())).unwrap();
    let described = shard.describe_group("old");
    assert_eq!((described.group_state.as_str(), described.members.len()), ("Stable", 1));
    shard.replay(&key0, None).unwrap();
    shard.replay(&records::group_metadata_key("old"), None).unwrap();
    assert_eq!(shard.fetch_offsets("g", None).unwrap().len(), 1, "tombstone removed one offset");
    assert_eq!(shard.describe_group("old").group_state.as_str(), "Dead");
}

fn rebuild_v0_group() -> Vec<u8> {
    let mut b = BytesMut::new();
    let put = |b: &mut BytesMut, s: &str| {
        b.put_i16(s.len() as i16);
        b.put_slice(s.as_bytes());
    };
    b.put_i16(0);
    put(&mut b, "consumer");
    b.put_i32(4);
    put(&mut b, "range");
    put(&mut b, "m1");
    b.put_i32(1);
    put(&mut b, "m1");
    put(&mut b, "client");
    put(&mut b, "host");
    b.put_i32(30_000);
    b.put_i32(0);
    b.put_i32(1);
    b.put_u8(7);
    b.to_vec()
}

#[test]
fn given_error_enum_when_displayed_should_name_the_problem() {
    let e = records::decode_key(&[0]).unwrap_err();
    assert!(matches!(e, CoordinatorError::Truncated { .. }));
    assert!(e.to_string().contains("truncated"));
}

#[test]
fn given_group_ids_when_partitioned_should_match_java_string_hash_code() {
    // Java: "a".hashCode() == 97, "ab" == 3105, "analytics-group" == -609982088,
    // "😀" is two UTF-16 units 0xD83D 0xDE00 → 55357 * 31 + 56832 == 1772899,
    // "polygenelubricants".hashCode() == Integer.MIN_VALUE (masked to 0, not abs'ed).
    let cases =
        [("a", 47), ("ab", 5), ("analytics-group", 10), ("", 0), ("😀", 49), ("groupé", 42), ("polygenelubricants", 0)];
    for (group, partition) in cases {
        assert_eq!(partition_for(group, 50), partition, "{group:?}");
    }
    assert_eq!(partition_for("a", 1), 0);
    assert_eq!(partition_for("a", 0), 0, "no division by zero");
}
