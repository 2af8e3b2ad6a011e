//! Consumer-group (KIP-848) helpers: a `Consumer` that reconciles instantly (it owns
//! exactly the last assignment it was sent), and checks run after every heartbeat: the
//! answer is the last output, records precede it, and no partition is ever held by two
//! members from the coordinator's view.

use std::collections::BTreeSet;

use gregor_protocol::kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedTopic;
use gregor_protocol::kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId, TopicName,
};

use super::{s, Harness, GROUP};
use crate::modern::Partitions;
use crate::{GroupResponse, Output, TopicsView, Uuid};

/// A stable id per topic name, so adding topics does not renumber the others.
pub(crate) fn topic_id(name: &str) -> Uuid {
    Uuid::from_u128(name.bytes().fold(0x5eed_u128, |h, b| h.wrapping_mul(131).wrapping_add(u128::from(b))))
}

pub(crate) fn view(topics: &[(&str, i32)]) -> TopicsView {
    topics.iter().map(|(name, count)| ((*name).to_owned(), (topic_id(name), *count))).collect()
}

pub(crate) fn parts(entries: &[(&str, &[i32])]) -> Partitions {
    entries.iter().map(|(t, ps)| (topic_id(t), ps.iter().copied().collect::<BTreeSet<i32>>())).collect()
}

/// Number of partitions of `topic` in `p`.
pub(crate) fn count(p: &Partitions, topic: &str) -> usize {
    p.get(&topic_id(topic)).map_or(0, BTreeSet::len)
}

/// A client of the consumer protocol.
#[derive(Debug, Clone)]
pub(crate) struct Consumer {
    pub(crate) member_id: String,
    pub(crate) epoch: i32,
    pub(crate) owned: Partitions,
    pub(crate) instance: Option<String>,
    pub(crate) version: i16,
}

impl Consumer {
    pub(crate) fn new(member_id: &str) -> Self {
        Self { member_id: member_id.to_owned(), epoch: 0, owned: Partitions::new(), instance: None, version: 1 }
    }
}

/// A join request (epoch 0) as clients send it.
pub(crate) fn join_request(member_id: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(topics.iter().map(|t| TopicName(s(t))).collect()))
        .with_topic_partitions(Some(vec![]))
}

pub(crate) fn owned_topics(owned: &Partitions) -> Vec<OwnedTopic> {
    owned
        .iter()
        .map(|(id, ps)| OwnedTopic::default().with_topic_id(*id).with_partitions(ps.iter().copied().collect()))
        .collect()
}

pub(crate) fn to_partitions(response: &ConsumerGroupHeartbeatResponse) -> Option<Partitions> {
    response
        .assignment
        .as_ref()
        .map(|a| a.topic_partitions.iter().map(|t| (t.topic_id, t.partitions.iter().copied().collect())).collect())
}

impl Harness {
    /// Sends one ConsumerGroupHeartbeat at `version`, checking the output contracts.
    pub(crate) fn cg(
        &mut self,
        version: i16,
        request: ConsumerGroupHeartbeatRequest,
    ) -> ConsumerGroupHeartbeatResponse {
        let meta = self.meta(version);
        let id = meta.id;
        let topics = self.topics.clone();
        let outputs = self.shard.consumer_group_heartbeat(meta, request, &topics, self.now_ms);
        assert!(matches!(outputs.last(), Some(Output::Respond(r, _)) if *r == id), "answer last: {outputs:?}");
        self.apply(outputs);
        self.assert_exclusive_ownership();
        match &self.responses[&id] {
            GroupResponse::ConsumerGroupHeartbeat(r) => r.clone(),
            other => panic!("not a consumer heartbeat response: {other:?}"),
        }
    }

    /// Joins `c` subscribed to `topics`; returns the response (the consumer takes it in).
    pub(crate) fn cg_join(&mut self, c: &mut Consumer, topics: &[&str]) -> ConsumerGroupHeartbeatResponse {
        let request = join_request(&c.member_id, topics).with_instance_id(c.instance.as_deref().map(s));
        let response = self.cg(c.version, request);
        take_in(c, &response);
        response
    }

    /// A regular heartbeat reporting what `c` owns; the consumer takes the answer in.
    pub(crate) fn poll(&mut self, c: &mut Consumer) -> ConsumerGroupHeartbeatResponse {
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_member_id(s(&c.member_id))
            .with_member_epoch(c.epoch)
            .with_instance_id(c.instance.as_deref().map(s))
            .with_rebalance_timeout_ms(-1)
            .with_topic_partitions(Some(owned_topics(&c.owned)));
        let response = self.cg(c.version, request);
        take_in(c, &response);
        response
    }

    /// Polls every consumer until the group is Stable (bounded).
    pub(crate) fn settle(&mut self, consumers: &mut [&mut Consumer]) {
        for _ in 0..10 {
            for c in consumers.iter_mut() {
                let r = self.poll(c);
                assert_eq!(r.error_code, 0, "{:?}", r.error_message);
            }
            if self.cg_state() == "Stable" {
                return;
            }
        }
        panic!("group did not settle: {}", self.cg_state());
    }

    pub(crate) fn cg_state(&self) -> String {
        self.shard.consumer_group_describe(GROUP, &self.topics, 1).group_state.to_string()
    }

    /// No partition is assigned to, or being revoked from, two members at once.
    pub(crate) fn assert_exclusive_ownership(&self) {
        for group in self.shard.consumer_groups.values() {
            let mut seen = BTreeSet::new();
            for m in group.members.values() {
                for (topic, ps) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                    for p in ps {
                        assert!(seen.insert((*topic, *p)), "{topic}-{p} held twice in {}", group.group_id);
                    }
                }
            }
        }
    }
}

/// What a client does with an answer: adopt the epoch, and own exactly the assignment.
fn take_in(c: &mut Consumer, response: &ConsumerGroupHeartbeatResponse) {
    if response.error_code != 0 {
        return;
    }
    if let Some(id) = &response.member_id {
        c.member_id = id.to_string();
    }
    c.epoch = response.member_epoch;
    if let Some(assignment) = to_partitions(response) {
        c.owned = assignment;
    }
}
