//! The simulated network: messages between nodes, each delayed, possibly lost, and cut by
//! partitions; each directed link delivers in order (a TCP connection).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use gregor_metadata::replication_control::AlterPartition;
use gregor_metadata::MetadataImage;

use crate::config::Faults;
use crate::replica_log::Record;
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Node {
    Controller,
    Broker(i32),
    Producer(u32),
}

/// Kafka's error codes the simulated requests can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    NotLeaderOrFollower,
    FencedLeaderEpoch,
    UnknownLeaderEpoch,
    OffsetOutOfRange,
    NotEnoughReplicas,
    NotEnoughReplicasAfterAppend,
    RequestTimedOut,
}

/// A follower's fetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchData {
    pub(crate) records: Vec<Record>,
    pub(crate) high_watermark: i64,
}

#[derive(Debug, Clone)]
pub(crate) enum Msg {
    // broker -> controller
    Register {
        incarnation: u32,
    },
    Heartbeat {
        epoch: i64,
        metadata_offset: i64,
    },
    AlterPartition {
        req: u64,
        request: AlterPartition,
    },
    MetadataFetch {
        offset: i64,
    },
    // controller -> broker
    Registered {
        epoch: i64,
    },
    HeartbeatAnswer {
        stale: bool,
    },
    /// `not_applied`: a refusal that says the change was not made (INELIGIBLE_REPLICA).
    AlterPartitionAnswer {
        req: u64,
        not_applied: bool,
    },
    Metadata(Rc<MetadataImage>),
    // follower <-> leader
    Fetch {
        partition: i32,
        req: u64,
        leader_epoch: i32,
        fetch_offset: i64,
        broker_epoch: i64,
    },
    FetchAnswer {
        partition: i32,
        req: u64,
        result: Result<FetchData, Code>,
    },
    EpochQuery {
        partition: i32,
        req: u64,
        current_leader_epoch: i32,
        leader_epoch: i32,
    },
    EpochAnswer {
        partition: i32,
        req: u64,
        result: Result<(i32, i64), Code>,
    },
    // producer <-> leader
    Produce {
        partition: i32,
        req: u64,
        value: u64,
    },
    ProduceAnswer {
        partition: i32,
        req: u64,
        result: Result<i64, Code>,
    },
}

impl Msg {
    /// A one-line summary for the trace (the image is too big to print).
    pub(crate) fn summary(&self) -> String {
        match self {
            Msg::Metadata(image) => format!("Metadata(offset {})", image.last_offset),
            Msg::AlterPartition { req, request } => {
                let isr: Vec<(i32, i64)> = request.new_isr.iter().map(|m| (m.broker_id, m.broker_epoch)).collect();
                format!(
                    "AlterPartition {{ req: {req}, p{} leader {} le {} pe {} isr {isr:?} }}",
                    request.partition, request.leader_id, request.leader_epoch, request.partition_epoch
                )
            }
            Msg::FetchAnswer { partition, req, result: Ok(data) } => {
                let (first, last) = (data.records.first(), data.records.last());
                let span =
                    first.zip(last).map(|(f, l)| format!("{}..={} e{}..e{}", f.offset, l.offset, f.epoch, l.epoch));
                format!(
                    "FetchAnswer {{ p{partition} req {req} [{}] hw {} }}",
                    span.unwrap_or_default(),
                    data.high_watermark
                )
            }
            other => format!("{other:?}"),
        }
    }
}

/// A message on the wire. `to_incarnation`: answers go to the process that asked; a
/// restarted one never sees them (its connections are new).
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) from: Node,
    pub(crate) from_incarnation: u32,
    pub(crate) to: Node,
    pub(crate) to_incarnation: Option<u32>,
    /// A message sent before its destination process started is lost with the old one.
    pub(crate) sent_at: u64,
    pub(crate) msg: Msg,
}

/// Partitions and per-link ordering.
#[derive(Debug, Default)]
pub(crate) struct Network {
    /// Brokers cut from every other node.
    isolated: BTreeSet<i32>,
    /// Pairs (lower id first) that cannot reach each other; 0 is the controller.
    cut: BTreeSet<(i32, i32)>,
    /// When the last message on each directed link arrives, so the next comes after it.
    last_arrival: BTreeMap<(Node, Node), u64>,
    pub(crate) dropped: u64,
}

fn pair(a: i32, b: i32) -> (i32, i32) {
    (a.min(b), a.max(b))
}

impl Network {
    pub(crate) fn reachable(&self, from: Node, to: Node) -> bool {
        let id = |n: Node| match n {
            Node::Broker(b) => Some(b),
            Node::Controller => Some(0),
            Node::Producer(_) => None,
        };
        let (a, b) = (id(from), id(to));
        if a.is_some_and(|a| self.isolated.contains(&a)) || b.is_some_and(|b| self.isolated.contains(&b)) {
            return false;
        }
        !matches!((a, b), (Some(a), Some(b)) if self.cut.contains(&pair(a, b)))
    }

    /// When `envelope` arrives, or `None` when it is lost.
    pub(crate) fn send(&mut self, envelope: &Envelope, now: u64, rng: &mut Rng, faults: &Faults) -> Option<u64> {
        if !self.reachable(envelope.from, envelope.to) || rng.chance(faults.drop) {
            self.dropped += 1;
            return None;
        }
        let link = (envelope.from, envelope.to);
        let at = (now + rng.range(faults.delay_ms)).max(self.last_arrival.get(&link).copied().unwrap_or(0));
        let _ = self.last_arrival.insert(link, at);
        Some(at)
    }

    pub(crate) fn isolate(&mut self, broker: i32) -> bool {
        self.isolated.insert(broker)
    }

    pub(crate) fn rejoin(&mut self, broker: i32) {
        let _ = self.isolated.remove(&broker);
    }

    pub(crate) fn cut(&mut self, a: i32, b: i32) -> bool {
        self.cut.insert(pair(a, b))
    }

    pub(crate) fn mend(&mut self, a: i32, b: i32) {
        let _ = self.cut.remove(&pair(a, b));
    }

    pub(crate) fn heal_all(&mut self) {
        self.isolated.clear();
        self.cut.clear();
    }

    pub(crate) fn is_whole(&self) -> bool {
        self.isolated.is_empty() && self.cut.is_empty()
    }
}
