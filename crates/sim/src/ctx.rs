//! What a node's handler gets: the time, the config, and where its effects go (messages
//! to send, facts for the invariant checker, the trace and the counters).

use std::rc::Rc;

use crate::config::SimConfig;
use crate::net::{Envelope, Msg, Node};
use crate::replica_log::Record;
use crate::trace::Trace;
use crate::Stats;

/// Facts the checker needs beyond the state it can see after the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// A broker built a fresh leader state for a new epoch.
    BecameLeader { broker: i32, partition: i32, epoch: i32 },
    /// `LeaderState::ack` said `Done` for this record: it is acknowledged to the producer.
    Acked { partition: i32, record: Record },
}

/// Owns the trace and counters while one event is handled (the world lends them), so
/// handlers borrow nothing from the world.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) now: u64,
    pub(crate) cfg: Rc<SimConfig>,
    pub(crate) out: Vec<Envelope>,
    pub(crate) notes: Vec<Note>,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
}

impl Ctx {
    pub(crate) fn new(now: u64, cfg: Rc<SimConfig>, trace: Trace, stats: Stats) -> Self {
        Self { now, cfg, out: Vec::new(), notes: Vec::new(), trace, stats }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.now as i64
    }

    /// A request (or a push) from `from` (node, incarnation) to whoever runs as `to`.
    pub(crate) fn send(&mut self, from: (Node, u32), to: Node, msg: Msg) {
        let sent_at = self.now;
        self.out.push(Envelope { from: from.0, from_incarnation: from.1, to, to_incarnation: None, sent_at, msg });
    }

    /// An answer, delivered only to the incarnation that asked.
    pub(crate) fn reply(&mut self, from: (Node, u32), to: (Node, u32), msg: Msg) {
        let (sent_at, to_incarnation) = (self.now, Some(to.1));
        self.out.push(Envelope { from: from.0, from_incarnation: from.1, to: to.0, to_incarnation, sent_at, msg });
    }

    pub(crate) fn note(&mut self, text: impl FnOnce() -> String) {
        self.trace.push(self.now, text());
    }
}
