//! Group requests built from fuzzer choices. Ids come from small alphabets, plus the
//! member ids, generations and epochs the coordinator handed out, so random sequences
//! still meet the same groups and members. Every request goes through the wire at its
//! version before the shard sees it, as the broker's decoder would hand it over.

use bytes::{Bytes, BytesMut};
use gregor_coordinator::Uuid;
use gregor_protocol::kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use gregor_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use gregor_protocol::kafka_protocol::messages::leave_group_request::MemberIdentity;
use gregor_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use gregor_protocol::kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,
    OffsetDeleteRequest, ProducerId, SyncGroupRequest, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use gregor_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::input::Input;

pub(super) const GROUPS: [&str; 3] = ["g0", "g1", ""];
pub(super) const TOPICS: [&str; 3] = ["t0", "t1", "t2"];
/// Commits also name a topic the broker would not know (it filters those; the shard
/// must cope anyway) and partition -1.
pub(super) const COMMIT_TOPICS: [&str; 3] = ["t0", "t1", "gone"];
pub(super) const COMMIT_PARTITIONS: [i32; 4] = [-1, 0, 1, 2];

/// What the coordinator handed out so far, for later requests to reuse.
#[derive(Debug)]
pub(super) struct Learned {
    pub(super) member_ids: Vec<String>,
    pub(super) generations: Vec<i32>,
    pub(super) epochs: Vec<i32>,
    pub(super) owned: Vec<(Uuid, Vec<i32>)>,
}

impl Default for Learned {
    fn default() -> Self {
        Self {
            member_ids: vec![String::new(), "m-unknown".to_owned()],
            generations: vec![-1, 0, 1],
            epochs: vec![0, -1, -2, 1],
            owned: Vec::new(),
        }
    }
}

impl Learned {
    const MAX: usize = 12;

    pub(super) fn member(&mut self, id: &str) {
        if !id.is_empty() && !self.member_ids.iter().any(|m| m == id) && self.member_ids.len() < Self::MAX {
            self.member_ids.push(id.to_owned());
        }
    }

    pub(super) fn number(list: &mut Vec<i32>, n: i32) {
        if !list.contains(&n) && list.len() < Self::MAX {
            list.push(n);
        }
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Sends `request` through the wire at `version`; `None` if it has fields that version
/// cannot carry (the broker could never receive it).
fn wire<T: Encodable + Decodable>(request: T, version: i16) -> Option<T> {
    let mut buf = BytesMut::new();
    request.encode(&mut buf, version).ok()?;
    T::decode(&mut buf.freeze(), version).ok()
}

/// A consumer-protocol subscription (v0), or bytes that may be anything.
fn metadata(input: &mut Input<'_>) -> Bytes {
    if input.u8() < 200 {
        return gregor_coordinator::testing::subscription(&TOPICS[..1 + input.below(TOPICS.len())]);
    }
    Bytes::copy_from_slice(input.bytes(24))
}

fn instance(input: &mut Input<'_>) -> Option<StrBytes> {
    input.pick(&[None, Some("i0"), Some("i1")]).map(s)
}

pub(super) fn join(input: &mut Input<'_>, learned: &Learned, version: i16) -> Option<JoinGroupRequest> {
    let protocols = (0..1 + input.below(2))
        .map(|_| {
            let name = input.pick(&["range", "roundrobin", "cooperative-sticky"]);
            JoinGroupRequestProtocol::default().with_name(s(name)).with_metadata(metadata(input))
        })
        .collect();
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(s(input.pick(&GROUPS))))
        .with_session_timeout_ms(input.pick(&[5_999, 6_000, 10_000, 45_000, 1_800_001]))
        .with_rebalance_timeout_ms(input.pick(&[-1, 1, 10_000, 60_000]))
        .with_member_id(s(&input.pick(&learned.member_ids)))
        .with_group_instance_id(if version >= 5 { instance(input) } else { None })
        .with_protocol_type(s(input.pick(&["consumer", "connect", ""])))
        .with_protocols(protocols)
        .with_reason(if version >= 8 { Some(s("fuzz")) } else { None });
    wire(request, version)
}

pub(super) fn sync(input: &mut Input<'_>, learned: &Learned, version: i16) -> Option<SyncGroupRequest> {
    let assignments = (0..input.below(3))
        .map(|_| {
            SyncGroupRequestAssignment::default()
                .with_member_id(s(&input.pick(&learned.member_ids)))
                .with_assignment(Bytes::copy_from_slice(input.bytes(12)))
        })
        .collect();
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(s(input.pick(&GROUPS))))
        .with_generation_id(input.pick(&learned.generations))
        .with_member_id(s(&input.pick(&learned.member_ids)))
        .with_group_instance_id(if version >= 3 { instance(input) } else { None })
        .with_protocol_type(if version >= 5 { input.pick(&[None, Some("consumer"), Some("x")]).map(s) } else { None })
        .with_protocol_name(if version >= 5 { input.pick(&[None, Some("range"), Some("x")]).map(s) } else { None })
        .with_assignments(assignments);
    wire(request, version)
}

pub(super) fn heartbeat(input: &mut Input<'_>, learned: &Learned, version: i16) -> Option<HeartbeatRequest> {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(s(input.pick(&GROUPS))))
        .with_generation_id(input.pick(&learned.generations))
        .with_member_id(s(&input.pick(&learned.member_ids)))
        .with_group_instance_id(if version >= 3 { instance(input) } else { None });
    wire(request, version)
}

pub(super) fn leave(input: &mut Input<'_>, learned: &Learned, version: i16) -> Option<LeaveGroupRequest> {
    let group = GroupId(s(input.pick(&GROUPS)));
    let request = if version < 3 {
        LeaveGroupRequest::default().with_group_id(group).with_member_id(s(&input.pick(&learned.member_ids)))
    } else {
        let members = (0..1 + input.below(2))
            .map(|_| {
                MemberIdentity::default()
                    .with_member_id(s(&input.pick(&learned.member_ids)))
                    .with_group_instance_id(instance(input))
                    .with_reason(if version >= 5 { Some(s("bye")) } else { None })
            })
            .collect();
        LeaveGroupRequest::default().with_group_id(group).with_members(members)
    };
    wire(request, version)
}

/// `(topic, partition, offset, leader epoch, metadata)` choices shared by both commits.
fn offsets(input: &mut Input<'_>) -> Vec<(&'static str, i32, i64, i32, Option<StrBytes>)> {
    (0..1 + input.below(3))
        .map(|_| {
            let metadata = match input.below(4) {
                0 => None,
                1 => Some(s(&"m".repeat(4_097))),
                _ => Some(s("meta")),
            };
            let offset = input.pick(&[-1, 0, 7, i64::MAX]);
            (input.pick(&COMMIT_TOPICS), input.pick(&COMMIT_PARTITIONS), offset, input.pick(&[-1, 0, 3]), metadata)
        })
        .collect()
}

pub(super) fn offset_commit(input: &mut Input<'_>, learned: &Learned, version: i16) -> Option<OffsetCommitRequest> {
    let topics = offsets(input)
        .into_iter()
        .map(|(topic, partition, offset, epoch, metadata)| {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(if version >= 6 { epoch } else { -1 })
                .with_committed_metadata(metadata);
            OffsetCommitRequestTopic::default().with_name(TopicName(s(topic))).with_partitions(vec![p])
        })
        .collect();
    let generation = if input.bool() { input.pick(&learned.generations) } else { input.pick(&learned.epochs) };
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(input.pick(&GROUPS))))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(&input.pick(&learned.member_ids)))
        .with_group_instance_id(if version >= 7 { instance(input) } else { None })
        .with_retention_time_ms(if version <= 4 { input.pick(&[-1, 0, 60_000]) } else { -1 })
        .with_topics(topics);
    wire(request, version)
}

pub(super) fn txn_offset_commit(
    input: &mut Input<'_>,
    learned: &Learned,
    version: i16,
    producer_id: i64,
) -> Option<TxnOffsetCommitRequest> {
    let topics = offsets(input)
        .into_iter()
        .map(|(topic, partition, offset, epoch, metadata)| {
            let p = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(if version >= 2 { epoch } else { -1 })
                .with_committed_metadata(metadata);
            TxnOffsetCommitRequestTopic::default().with_name(TopicName(s(topic))).with_partitions(vec![p])
        })
        .collect();
    let modern = version >= 3;
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s("tx")))
        .with_group_id(GroupId(s(input.pick(&GROUPS))))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(0)
        .with_generation_id(if modern { input.pick(&learned.generations) } else { -1 })
        .with_member_id(s(&if modern { input.pick(&learned.member_ids) } else { String::new() }))
        .with_group_instance_id(if modern { instance(input) } else { None })
        .with_topics(topics);
    wire(request, version)
}

pub(super) fn offset_delete(input: &mut Input<'_>) -> Option<OffsetDeleteRequest> {
    let topics = (0..1 + input.below(2))
        .map(|_| {
            let p = OffsetDeleteRequestPartition::default().with_partition_index(input.pick(&[0, 1, 2]));
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s(input.pick(&COMMIT_TOPICS))))
                .with_partitions(vec![p])
        })
        .collect();
    wire(OffsetDeleteRequest::default().with_group_id(GroupId(s(input.pick(&GROUPS)))).with_topics(topics), 0)
}

pub(super) fn consumer_heartbeat(
    input: &mut Input<'_>,
    learned: &Learned,
    version: i16,
) -> Option<ConsumerGroupHeartbeatRequest> {
    let subscribed = match input.below(3) {
        0 => None,
        _ => Some(TOPICS[..input.below(TOPICS.len() + 1)].iter().map(|t| TopicName(s(t))).collect()),
    };
    let regex = if version >= 1 { input.pick(&[None, Some("t.*"), Some("(")]).map(s) } else { None };
    let owned = match input.below(3) {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(
            learned
                .owned
                .iter()
                .map(|(id, p)| TopicPartitions::default().with_topic_id(*id).with_partitions(p.clone()))
                .collect(),
        ),
    };
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(input.pick(&GROUPS))))
        .with_member_id(s(&input.pick(&learned.member_ids)))
        .with_member_epoch(input.pick(&learned.epochs))
        .with_instance_id(instance(input))
        .with_rack_id(input.pick(&[None, Some("r0")]).map(s))
        .with_rebalance_timeout_ms(input.pick(&[-1, 1, 30_000]))
        .with_subscribed_topic_names(subscribed)
        .with_subscribed_topic_regex(regex)
        .with_server_assignor(input.pick(&[None, Some("uniform"), Some("range"), Some("bogus")]).map(s))
        .with_topic_partitions(owned);
    wire(request, version)
}
