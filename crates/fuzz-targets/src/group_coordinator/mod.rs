//! Target `group_coordinator`: the input is a sequence of group requests (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, OffsetDelete,
//! TxnOffsetCommit and its markers, ConsumerGroupHeartbeat, DeleteGroups, describes and
//! lists), clock advances that fire the shard's timers earliest first, topic metadata
//! changes and coordinator restarts, fed to one `GroupCoordinatorShard` the way the
//! broker's runtime feeds it.
//!
//! Invariants checked: every request is answered at most once and every answer encodes at
//! the version it was asked with (the harness contract of the coordinator's own tests);
//! the shard's own `__consumer_offsets` records replay into a fresh shard without error,
//! and the replayed shard answers like the live one: the same committed offsets for every
//! group, the same KIP-848 groups, and the same view of every classic group that is
//! Stable (a group mid-rebalance is not persisted until the rebalance ends, as in Kafka).

mod requests;

use std::collections::BTreeMap;

use bytes::BytesMut;
use gregor_coordinator::{
    ConsumerGroupConfig, GroupConfig, GroupCoordinatorShard, GroupResponse, Output, Record, RequestId, RequestMeta,
    TimerKey, TopicsView, Uuid,
};
use gregor_protocol::kafka_protocol::protocol::Encodable;

use crate::input::Input;
use requests::{Learned, GROUPS, TOPICS};

/// Steps per input: enough for several rebalances, short enough to stay fast.
const MAX_STEPS: usize = 96;

/// Drives a group coordinator shard; panics only on a broken invariant.
pub fn group_coordinator(data: &[u8]) {
    let mut input = Input::new(data);
    let mut driver = Driver::new(config(&mut input));
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        driver.step(&mut input);
    }
    driver.check_replay();
}

/// Short timeouts sometimes, so sessions and rebalances expire within a few steps.
fn config(input: &mut Input<'_>) -> GroupConfig {
    let defaults = GroupConfig::default();
    let consumer = ConsumerGroupConfig {
        max_size: input.pick(&[i32::MAX, 1, 2]),
        session_timeout_ms: input.pick(&[45_000, 6_000]),
        ..defaults.consumer.clone()
    };
    GroupConfig {
        initial_rebalance_delay_ms: input.pick(&[0, 3_000]),
        max_size: input.pick(&[i32::MAX, 1, 2]),
        consumer,
        ..defaults
    }
}

/// One entry of the shard's `__consumer_offsets` partition.
#[derive(Debug, Clone)]
enum Entry {
    Plain(Record),
    Txn(i64, Record),
    Marker { producer_id: i64, commit: bool },
}

#[derive(Debug)]
struct Driver {
    config: GroupConfig,
    shard: GroupCoordinatorShard,
    now_ms: i64,
    next_id: RequestId,
    /// Requests not yet answered, with their API version.
    waiting: BTreeMap<RequestId, i16>,
    timers: BTreeMap<TimerKey, i64>,
    log: Vec<Entry>,
    topics: TopicsView,
    learned: Learned,
    /// `GREGOR_FUZZ_TRACE` set: print every step, for triage (docs/fuzzing.md).
    trace: bool,
}

impl Driver {
    fn new(config: GroupConfig) -> Self {
        let topics =
            TopicsView::from([("t0".to_owned(), (Uuid::from_u128(1), 3)), ("t1".to_owned(), (Uuid::from_u128(2), 2))]);
        Self {
            shard: GroupCoordinatorShard::new(config.clone()),
            config,
            now_ms: 1_000_000,
            next_id: 1,
            waiting: BTreeMap::new(),
            timers: BTreeMap::new(),
            log: Vec::new(),
            topics,
            learned: Learned::default(),
            trace: std::env::var_os("GREGOR_FUZZ_TRACE").is_some(),
        }
    }

    fn meta(&mut self, api_version: i16, request: &dyn std::fmt::Debug) -> RequestMeta {
        let id = self.next_id;
        if self.trace {
            eprintln!("t={} request {id} at v{api_version}: {request:?}", self.now_ms);
        }
        self.next_id += 1;
        let _ = self.waiting.insert(id, api_version);
        RequestMeta { id, api_version, client_id: "fuzz".to_owned(), client_host: "/127.0.0.1".to_owned() }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        if let Some(outputs) = self.request(input) {
            if self.trace {
                eprintln!("t={} outputs: {outputs:#?}", self.now_ms);
            }
            self.apply(outputs);
        }
        if input.u8() == 0xff {
            self.restart();
        }
    }

    /// One request or event; `None` when it produced no outputs (or could not be sent).
    fn request(&mut self, input: &mut Input<'_>) -> Option<Vec<Output>> {
        let op = input.below(16);
        if op <= 8 {
            self.client_request(op, input)
        } else {
            self.event(op, input)
        }
    }

    /// A request a group member or an admin client sends.
    fn client_request(&mut self, op: usize, input: &mut Input<'_>) -> Option<Vec<Output>> {
        let now = self.now_ms;
        Some(match op {
            0 | 1 => {
                let version = input.below(10) as i16;
                let request = requests::join(input, &self.learned, version)?;
                let meta = self.meta(version, &request);
                self.shard.join_group(meta, request, now)
            }
            2 => {
                let version = input.below(6) as i16;
                let request = requests::sync(input, &self.learned, version)?;
                let meta = self.meta(version, &request);
                self.shard.sync_group(meta, request, now)
            }
            3 => {
                let version = input.below(5) as i16;
                let request = requests::heartbeat(input, &self.learned, version)?;
                let meta = self.meta(version, &request);
                self.shard.heartbeat(meta, request, now)
            }
            4 => {
                let version = input.below(6) as i16;
                let request = requests::leave(input, &self.learned, version)?;
                let meta = self.meta(version, &request);
                self.shard.leave_group(meta, request, now)
            }
            5 => {
                let version = 2 + input.below(8) as i16;
                let request = requests::offset_commit(input, &self.learned, version)?;
                let meta = self.meta(version, &request);
                self.shard.offset_commit(meta, request, now)
            }
            6 | 7 => {
                let version = input.below(2) as i16;
                let request = requests::consumer_heartbeat(input, &self.learned, version)?;
                let meta = self.meta(version, &request);
                self.shard.consumer_group_heartbeat(meta, request, &self.topics, now)
            }
            _ => {
                let (version, producer_id) = (input.below(5) as i16, input.below(2) as i64);
                let request = requests::txn_offset_commit(input, &self.learned, version, producer_id)?;
                let meta = self.meta(version, &request);
                self.shard.txn_offset_commit(meta, request, now)
            }
        })
    }

    /// What else reaches a shard: markers, admin calls, the clock, metadata changes.
    fn event(&mut self, op: usize, input: &mut Input<'_>) -> Option<Vec<Output>> {
        let now = self.now_ms;
        Some(match op {
            9 => {
                let (producer_id, commit) = (input.below(2) as i64, input.bool());
                self.note(&format!("marker of producer {producer_id}, commit {commit}"));
                self.shard.complete_txn(producer_id, commit, now);
                self.log.push(Entry::Marker { producer_id, commit });
                return None;
            }
            10 => {
                let request = requests::offset_delete(input)?;
                let meta = self.meta(0, &request);
                self.shard.offset_delete(meta, request, now)
            }
            11 => {
                let group = input.pick(&GROUPS);
                self.note(&format!("delete group {group:?}"));
                self.shard.delete_group(group, now).1
            }
            12 => {
                let ms = input.pick(&[1, 500, 3_000, 6_000, 20_000, 60_000, 8 * 24 * 3_600_000]);
                self.note(&format!("advance {ms} ms"));
                self.advance(ms);
                return None;
            }
            13 => {
                self.note("expire offsets");
                self.shard.expire_offsets(now)
            }
            14 => {
                self.read_only(input);
                return None;
            }
            _ => {
                self.change_topics(input);
                return None;
            }
        })
    }

    fn note(&self, what: &str) {
        if self.trace {
            eprintln!("t={} {what}", self.now_ms);
        }
    }

    /// Queries that change nothing, as OffsetFetch, DescribeGroups, ListGroups and
    /// ConsumerGroupDescribe run them.
    fn read_only(&self, input: &mut Input<'_>) {
        let group = input.pick(&GROUPS);
        let member = input.pick(&self.learned.member_ids);
        let _ = self.shard.validate_offset_fetch(group, Some(&member), input.pick(&self.learned.epochs));
        let wanted = vec![("t0".to_owned(), vec![0, 1, 5]), ("gone".to_owned(), vec![0])];
        let _ = self.shard.fetch_offsets(group, Some(&wanted));
        let _ = self.shard.has_pending_txn_offset(group, "t0", 0);
        let _ = self.shard.describe_group(group);
        let _ = self.shard.list_groups(&["Stable".to_owned()], &[]);
        let _ = (self.shard.has_group(group), self.shard.is_consumer_group(group), self.shard.group_ids());
        for version in 0..=1 {
            let _ = self.shard.consumer_group_describe(group, &self.topics, version);
        }
    }

    /// Topic metadata changes: partitions added, a topic created or deleted.
    fn change_topics(&mut self, input: &mut Input<'_>) {
        let topic = input.pick(&TOPICS[1..]);
        if input.bool() {
            let _ = self.topics.remove(topic);
        } else {
            let id = Uuid::from_u128(if topic == "t1" { 2 } else { 3 });
            let _ = self.topics.insert(topic.to_owned(), (id, 1 + input.below(4) as i32));
        }
    }

    /// Carries out outputs as the broker's runtime does, checking the response contract.
    fn apply(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Append(records) => self.log.extend(records.into_iter().map(Entry::Plain)),
                Output::AppendTransactional { producer_id, records, .. } => {
                    self.log.extend(records.into_iter().map(|r| Entry::Txn(producer_id, r)));
                }
                Output::Respond(id, response) => {
                    let version = self.waiting.remove(&id).unwrap_or_else(|| panic!("request {id} answered twice"));
                    encode_at(&response, version).unwrap_or_else(|e| panic!("{response:?} at v{version}: {e}"));
                    self.learn(&response);
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

    fn learn(&mut self, response: &GroupResponse) {
        match response {
            GroupResponse::Join(r) => {
                self.learned.member(&r.member_id);
                Learned::number(&mut self.learned.generations, r.generation_id);
            }
            GroupResponse::ConsumerGroupHeartbeat(r) => {
                self.learned.member(r.member_id.as_deref().unwrap_or_default());
                Learned::number(&mut self.learned.epochs, r.member_epoch);
                if let Some(assignment) = &r.assignment {
                    self.learned.owned =
                        assignment.topic_partitions.iter().map(|t| (t.topic_id, t.partitions.clone())).collect();
                }
            }
            _ => {}
        }
    }

    /// Moves the clock, firing due timers earliest first as the broker's timer queue does.
    fn advance(&mut self, ms: i64) {
        let until = self.now_ms + ms;
        while let Some((key, deadline)) = gregor_coordinator::testing::take_due_timer(&mut self.timers, until) {
            self.now_ms = self.now_ms.max(deadline);
            let outputs = self.shard.on_timer(key, self.now_ms);
            self.apply(outputs);
        }
        self.now_ms = until;
    }

    /// Loads the shard's partition into a fresh shard, as a new coordinator would.
    fn replayed(&self) -> GroupCoordinatorShard {
        let mut shard = GroupCoordinatorShard::new(self.config.clone());
        for entry in &self.log {
            match entry {
                Entry::Plain(r) => shard.replay(&r.key, r.value.as_deref()).expect("the shard's own records replay"),
                Entry::Txn(producer_id, r) => {
                    shard
                        .replay_txn(*producer_id, &r.key, r.value.as_deref())
                        .expect("own transactional records replay");
                }
                Entry::Marker { producer_id, commit } => shard.complete_txn(*producer_id, *commit, self.now_ms),
            }
        }
        shard
    }

    /// Coordinator failover: the replayed shard takes over; parked requests are lost (the
    /// broker answers them COORDINATOR_NOT_AVAILABLE) and timers are re-armed by loading.
    fn restart(&mut self) {
        self.check_replay();
        self.shard = self.replayed();
        self.waiting.clear();
        self.timers.clear();
        let outputs = self.shard.on_loaded(self.now_ms);
        self.apply(outputs);
    }

    fn check_replay(&self) {
        let replayed = self.replayed();
        let (live, topics) = (&self.shard, &self.topics);
        let mut groups = live.group_ids();
        groups.extend(replayed.group_ids());
        for group in &groups {
            let offsets = replayed.fetch_offsets(group, None);
            assert_eq!(offsets, live.fetch_offsets(group, None), "offsets of {group:?}");
            assert_eq!(replayed.is_consumer_group(group), live.is_consumer_group(group), "type of {group:?}");
            // An unpersisted classic group answers "not a consumer group", its replay "not found".
            for version in (0..=1).filter(|_| live.is_consumer_group(group)) {
                let mine = replayed.consumer_group_describe(group, topics, version);
                assert_eq!(mine, live.consumer_group_describe(group, topics, version), "consumer group {group:?}");
            }
            let described = live.describe_group(group);
            if described.group_state.as_str() == "Stable" {
                assert_eq!(replayed.describe_group(group), described, "stable classic group {group:?}");
            }
        }
        let consumer = ["consumer".to_owned()];
        assert_eq!(replayed.list_groups(&[], &consumer), live.list_groups(&[], &consumer));
    }
}

fn encode_at(response: &GroupResponse, version: i16) -> anyhow::Result<()> {
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
