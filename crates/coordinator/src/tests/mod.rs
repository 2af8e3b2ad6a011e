//! Scenario tests: a `Harness` plays the broker (collects appends, delivers responses,
//! fires timers in deadline order) and checks two contracts on every call: each request is
//! answered exactly once, and every response encodes at the version it was asked with.

mod membership_test;
mod modern_assignor_test;
mod modern_describe_test;
mod modern_harness;
mod modern_heartbeat_test;
mod modern_replay_test;
mod offsets_test;
mod replay_test;
mod txn_offsets_test;
mod versions_test;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use gregor_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use gregor_protocol::kafka_protocol::messages::leave_group_request::MemberIdentity;
use gregor_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use gregor_protocol::kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    OffsetCommitRequest, OffsetCommitResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::{Encodable, StrBytes};

use crate::{
    GroupConfig, GroupCoordinatorShard, GroupResponse, Output, Record, RequestId, RequestMeta, TimerKey, TopicsView,
};

pub(crate) const GROUP: &str = "analytics-group";

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

pub(crate) use crate::testing::subscription;

pub(crate) fn encode_at(response: &GroupResponse, version: i16) -> anyhow::Result<()> {
    let mut buf = BytesMut::new();
    match response {
        GroupResponse::Join(r) => r.encode(&mut buf, version),
        GroupResponse::Sync(r) => r.encode(&mut buf, version),
        GroupResponse::Heartbeat(r) => r.encode(&mut buf, version),
        GroupResponse::Leave(r) => r.encode(&mut buf, version),
        GroupResponse::OffsetCommit(r) => r.encode(&mut buf, version),
        GroupResponse::OffsetDelete(r) => r.encode(&mut buf, version),
        GroupResponse::ConsumerGroupHeartbeat(r) => r.encode(&mut buf, version),
        GroupResponse::TxnOffsetCommit(r) => r.encode(&mut buf, version),
    }
}

#[derive(Debug)]
pub(crate) struct Harness {
    pub(crate) shard: GroupCoordinatorShard,
    pub(crate) now_ms: i64,
    next_id: RequestId,
    versions: BTreeMap<RequestId, i16>,
    pub(crate) responses: BTreeMap<RequestId, GroupResponse>,
    pub(crate) records: Vec<Record>,
    /// Records of transactional batches, with their producer id.
    pub(crate) txn_records: Vec<(i64, Record)>,
    pub(crate) timers: BTreeMap<TimerKey, i64>,
    /// Default API versions for the helpers.
    pub(crate) join_version: i16,
    pub(crate) commit_version: i16,
    pub(crate) sync_version: i16,
    pub(crate) heartbeat_version: i16,
    /// The topics the broker would pass to consumer-group heartbeats.
    pub(crate) topics: TopicsView,
}

/// One join as a test describes it.
#[derive(Debug, Clone)]
pub(crate) struct Join<'a> {
    pub(crate) member_id: &'a str,
    pub(crate) instance: Option<&'a str>,
    pub(crate) protocols: Vec<(&'a str, Bytes)>,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
}

impl<'a> Join<'a> {
    pub(crate) fn member(member_id: &'a str) -> Self {
        Self {
            member_id,
            instance: None,
            protocols: vec![("range", subscription(&["orders"]))],
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 20_000,
        }
    }

    pub(crate) fn instance(mut self, instance: &'a str) -> Self {
        self.instance = Some(instance);
        self
    }
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_config(GroupConfig::default())
    }

    pub(crate) fn with_config(config: GroupConfig) -> Self {
        Self {
            shard: GroupCoordinatorShard::new(config),
            now_ms: 1_000_000,
            next_id: 1,
            versions: BTreeMap::new(),
            responses: BTreeMap::new(),
            records: Vec::new(),
            txn_records: Vec::new(),
            timers: BTreeMap::new(),
            join_version: 5,
            commit_version: 8,
            sync_version: 3,
            heartbeat_version: 3,
            topics: TopicsView::new(),
        }
    }

    pub(crate) fn meta(&mut self, version: i16) -> RequestMeta {
        let id = self.next_id;
        self.next_id += 1;
        let _ = self.versions.insert(id, version);
        RequestMeta { id, api_version: version, client_id: "consumer".into(), client_host: "/10.0.0.1".into() }
    }

    /// Carries out outputs as the broker does, checking the response contracts.
    pub(crate) fn apply(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Append(records) => self.records.extend(records),
                Output::AppendTransactional { producer_id, records, .. } => {
                    self.txn_records.extend(records.into_iter().map(|r| (producer_id, r)))
                }
                Output::Respond(id, response) => {
                    let version = self.versions[&id];
                    encode_at(&response, version).unwrap_or_else(|e| panic!("{response:?} at v{version}: {e}"));
                    assert!(self.responses.insert(id, response).is_none(), "request {id} answered twice");
                }
                Output::SetTimer { key, deadline_ms } => {
                    let _ = self.timers.insert(key, deadline_ms);
                }
                Output::CancelTimer(key) => {
                    let _ = self.timers.remove(&key);
                }
            }
        }
    }

    /// Moves the clock, firing due timers earliest first as a broker timer queue would.
    pub(crate) fn advance(&mut self, ms: i64) {
        let until = self.now_ms + ms;
        while let Some((key, deadline)) = crate::testing::take_due_timer(&mut self.timers, until) {
            self.now_ms = self.now_ms.max(deadline);
            let outputs = self.shard.on_timer(key, self.now_ms);
            self.apply(outputs);
        }
        self.now_ms = until;
    }

    pub(crate) fn join(&mut self, join: &Join<'_>) -> RequestId {
        self.join_at(join, self.join_version)
    }

    pub(crate) fn join_at(&mut self, join: &Join<'_>, version: i16) -> RequestId {
        let meta = self.meta(version);
        let id = meta.id;
        let protocols = join
            .protocols
            .iter()
            .map(|(name, metadata)| {
                JoinGroupRequestProtocol::default().with_name(s(name)).with_metadata(metadata.clone())
            })
            .collect();
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_session_timeout_ms(join.session_timeout_ms)
            .with_rebalance_timeout_ms(join.rebalance_timeout_ms)
            .with_member_id(s(join.member_id))
            .with_group_instance_id(join.instance.map(s))
            .with_protocol_type(s("consumer"))
            .with_protocols(protocols);
        let outputs = self.shard.join_group(meta, request, self.now_ms);
        self.apply(outputs);
        id
    }

    pub(crate) fn join_response(&self, id: RequestId) -> Option<JoinGroupResponse> {
        match self.responses.get(&id) {
            Some(GroupResponse::Join(r)) => Some(r.clone()),
            None => None,
            other => panic!("not a join response: {other:?}"),
        }
    }

    /// The v4+ dance: join without an id, get MEMBER_ID_REQUIRED, rejoin with the id.
    pub(crate) fn join_new(&mut self, join: &Join<'_>) -> (String, RequestId) {
        let first = self.join(join);
        let response = self.join_response(first).expect("answered at once");
        assert_eq!(response.error_code, 79, "MEMBER_ID_REQUIRED");
        let member_id = response.member_id.to_string();
        let again = Join { member_id: &member_id, ..join.clone() };
        let id = self.join(&again);
        (member_id, id)
    }

    pub(crate) fn sync(&mut self, member: &str, generation: i32, assignments: &[(&str, &[u8])]) -> RequestId {
        let meta = self.meta(self.sync_version);
        let id = meta.id;
        let assignments = assignments
            .iter()
            .map(|(m, a)| {
                SyncGroupRequestAssignment::default().with_member_id(s(m)).with_assignment(Bytes::copy_from_slice(a))
            })
            .collect();
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_assignments(assignments);
        let outputs = self.shard.sync_group(meta, request, self.now_ms);
        self.apply(outputs);
        id
    }

    pub(crate) fn sync_response(&self, id: RequestId) -> Option<SyncGroupResponse> {
        match self.responses.get(&id) {
            Some(GroupResponse::Sync(r)) => Some(r.clone()),
            None => None,
            other => panic!("not a sync response: {other:?}"),
        }
    }

    pub(crate) fn heartbeat(&mut self, member: &str, generation: i32) -> i16 {
        let meta = self.meta(self.heartbeat_version);
        let id = meta.id;
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_generation_id(generation)
            .with_member_id(s(member));
        let outputs = self.shard.heartbeat(meta, request, self.now_ms);
        self.apply(outputs);
        match &self.responses[&id] {
            GroupResponse::Heartbeat(r) => r.error_code,
            other => panic!("not a heartbeat response: {other:?}"),
        }
    }

    pub(crate) fn leave(
        &mut self,
        version: i16,
        member_id: &str,
        members: &[(&str, Option<&str>)],
    ) -> LeaveGroupResponse {
        let meta = self.meta(version);
        let id = meta.id;
        let members = members
            .iter()
            .map(|(m, i)| MemberIdentity::default().with_member_id(s(m)).with_group_instance_id(i.map(s)))
            .collect();
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_member_id(s(member_id))
            .with_members(members);
        let outputs = self.shard.leave_group(meta, request, self.now_ms);
        self.apply(outputs);
        match &self.responses[&id] {
            GroupResponse::Leave(r) => r.clone(),
            other => panic!("not a leave response: {other:?}"),
        }
    }

    /// Commits `(topic, partition, offset, metadata)`s; returns the per-partition errors.
    pub(crate) fn commit(&mut self, member: &str, generation: i32, offsets: &[(&str, i32, i64, &str)]) -> Vec<i16> {
        let meta = self.meta(self.commit_version);
        let id = meta.id;
        let topics = offsets
            .iter()
            .map(|(t, p, o, m)| {
                let partition = OffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o)
                    .with_committed_leader_epoch(3)
                    .with_committed_metadata(Some(s(m)));
                OffsetCommitRequestTopic::default().with_name(TopicName(s(t))).with_partitions(vec![partition])
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member))
            .with_topics(topics);
        let outputs = self.shard.offset_commit(meta, request, self.now_ms);
        let appended_first = matches!(outputs.first(), Some(Output::Append(_)));
        let accepted = outputs.len() > 1;
        assert!(!accepted || appended_first, "records must precede the response");
        self.apply(outputs);
        let response: &OffsetCommitResponse = match &self.responses[&id] {
            GroupResponse::OffsetCommit(r) => r,
            other => panic!("not a commit response: {other:?}"),
        };
        response.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)).collect()
    }

    pub(crate) fn state(&self) -> String {
        self.shard.describe_group(GROUP).group_state.to_string()
    }

    /// Two members through join and sync: returns (leader, follower, generation).
    pub(crate) fn stable_pair(&mut self) -> (String, String, i32) {
        let (a, ja) = self.join_new(&Join::member(""));
        let (b, jb) = self.join_new(&Join::member(""));
        self.advance(10_000);
        let (ra, rb) = (self.join_response(ja).expect("a joined"), self.join_response(jb).expect("b joined"));
        assert_eq!((ra.error_code, rb.error_code), (0, 0));
        let generation = ra.generation_id;
        let (leader, follower) = if ra.leader.as_str() == a { (a, b) } else { (b, a) };
        let follower_sync = self.sync(&follower, generation, &[]);
        let leader_sync = self.sync(&leader, generation, &[(&leader, b"L"), (&follower, b"F")]);
        assert_eq!(self.sync_response(follower_sync).expect("follower answered").assignment.as_ref(), b"F");
        assert_eq!(self.sync_response(leader_sync).expect("leader answered").assignment.as_ref(), b"L");
        assert_eq!(self.state(), "Stable");
        (leader, follower, generation)
    }
}
