//! A simulated broker: its logs (which survive a crash) and the process state (which does
//! not). It drives Gregor's real `LeaderState` and `truncation::decide` the way
//! `crates/broker` does: `reconcile` as `Broker::reconcile`, the leader side as
//! `replica_manager.rs` and the Fetch / OffsetForLeaderEpoch / Produce handlers, the
//! follower side as `replica_fetcher.rs`, ISR upkeep as `Broker::maintain_isr`.

mod follower;
mod leader;

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use gregor_metadata::{MetadataImage, PartitionRegistration};
use gregor_replication::Assignment;

use crate::controller::TOPIC;
use crate::ctx::Ctx;
use crate::net::{Msg, Node};
use crate::replica_log::ReplicaLog;

pub(crate) use follower::Followed;
pub(crate) use leader::Leading;

#[derive(Debug)]
pub(crate) enum Role {
    Leader(Box<Leading>),
    Follower(Followed),
}

/// One hosted partition in one leader epoch (`replica_manager::Partition`); `gen` tells
/// this epoch's state from a later one, as the `Arc<Partition>` identity does there.
#[derive(Debug)]
pub(crate) struct Hosted {
    pub(crate) gen: u64,
    pub(crate) leader_epoch: i32,
    pub(crate) role: Role,
}

/// When each periodic duty is due next.
#[derive(Debug, Default)]
struct Due {
    register: u64,
    heartbeat: u64,
    poll: u64,
    checkpoint: u64,
    isr: u64,
}

/// An AlterPartition waiting for the controller's answer (`maintain_isr` blocks on it).
#[derive(Debug)]
struct Alter {
    partition: i32,
    gen: u64,
    deadline: u64,
}

/// Everything a kill -9 loses.
#[derive(Debug)]
pub(crate) struct Volatile {
    /// -1 until registered.
    pub(crate) broker_epoch: i64,
    pub(crate) image: Option<Rc<MetadataImage>>,
    pub(crate) hosted: BTreeMap<i32, Hosted>,
    next_req: u64,
    alters: BTreeMap<u64, Alter>,
    due: Due,
    /// Led partitions whose waiting fetches and produces must look again (Gregor's
    /// `appended.notify_waiters()`).
    dirty: BTreeSet<i32>,
}

impl Volatile {
    fn new() -> Self {
        Self {
            broker_epoch: -1,
            image: None,
            hosted: BTreeMap::new(),
            next_req: 0,
            alters: BTreeMap::new(),
            due: Due::default(),
            dirty: BTreeSet::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Broker {
    pub(crate) id: i32,
    /// The disk: survives crashes (kill -9 keeps the page cache).
    pub(crate) logs: BTreeMap<i32, ReplicaLog>,
    /// `replication-offset-checkpoint`, also on disk.
    hw_checkpoint: BTreeMap<i32, i64>,
    pub(crate) up: bool,
    pub(crate) incarnation: u32,
    /// When the current process started.
    pub(crate) started_at: u64,
    next_gen: u64,
    pub(crate) v: Volatile,
}

fn assignment(p: &PartitionRegistration) -> Assignment {
    Assignment {
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
    }
}

impl Broker {
    pub(crate) fn new(id: i32, partitions: impl Iterator<Item = i32>) -> Self {
        let logs: BTreeMap<i32, ReplicaLog> = partitions.map(|p| (p, ReplicaLog::default())).collect();
        let hw_checkpoint = logs.keys().map(|p| (*p, 0)).collect();
        Self { id, logs, hw_checkpoint, up: true, incarnation: 0, started_at: 0, next_gen: 0, v: Volatile::new() }
    }

    fn me(&self) -> (Node, u32) {
        (Node::Broker(self.id), self.incarnation)
    }

    fn next_req(&mut self) -> u64 {
        self.v.next_req += 1;
        self.v.next_req
    }

    /// The first start, in a cluster formed at `registration` with `epoch`.
    pub(crate) fn boot(&mut self, epoch: i64, image: Rc<MetadataImage>, ctx: &mut Ctx) {
        self.v.broker_epoch = epoch;
        self.v.image = Some(image);
        self.reconcile(ctx);
    }

    pub(crate) fn crash(&mut self) {
        self.up = false;
        self.v = Volatile::new();
    }

    /// A new process on the same disk: the logs reopen, it registers a new incarnation.
    pub(crate) fn restart(&mut self, ctx: &mut Ctx) {
        self.up = true;
        self.incarnation += 1;
        self.started_at = ctx.now;
        for (p, log) in &mut self.logs {
            log.reopen(self.hw_checkpoint.get(p).copied().unwrap_or(0));
        }
        self.v = Volatile::new();
        self.v.due.register = ctx.now;
        self.tick(ctx);
    }

    pub(crate) fn handle(&mut self, from: (Node, u32), msg: Msg, ctx: &mut Ctx) {
        match msg {
            Msg::Registered { epoch } => self.registered(epoch, ctx),
            Msg::HeartbeatAnswer { stale: true } => {
                // STALE_BROKER_EPOCH: register again (`Broker::heartbeat`).
                self.v.broker_epoch = -1;
                self.v.due.register = ctx.now;
            }
            Msg::AlterPartitionAnswer { req, not_applied, .. } => self.alter_answered(req, not_applied),
            Msg::Metadata(image) => self.metadata(image, ctx),
            Msg::Fetch { partition, req, leader_epoch, fetch_offset, broker_epoch } => {
                let replica = match from.0 {
                    Node::Broker(b) => (b, broker_epoch),
                    _ => return,
                };
                self.serve_fetch(from, (partition, req), (leader_epoch, fetch_offset, replica), ctx);
            }
            Msg::EpochQuery { partition, req, current_leader_epoch, leader_epoch } => {
                self.serve_epoch_query(from, (partition, req), (current_leader_epoch, leader_epoch), ctx);
            }
            Msg::Produce { partition, req, value } => self.produce(from, (partition, req), value, ctx),
            Msg::FetchAnswer { partition, req, result } => self.fetch_answered(partition, req, result, ctx),
            Msg::EpochAnswer { partition, req, result } => self.epoch_answered(partition, req, result, ctx),
            _ => {}
        }
        self.service_dirty(ctx);
    }

    /// `register_and_load`: the epoch is known, the partitions load once the image holds
    /// the registration; heartbeats start at once.
    fn registered(&mut self, epoch: i64, ctx: &mut Ctx) {
        if self.v.broker_epoch >= 0 || epoch < 0 {
            return;
        }
        self.v.broker_epoch = epoch;
        self.v.due.heartbeat = ctx.now;
        self.v.due.poll = ctx.now;
        ctx.note(|| format!("b{} registered with epoch {epoch}", self.id));
        self.maybe_reconcile(ctx);
        self.tick(ctx);
    }

    fn metadata(&mut self, image: Rc<MetadataImage>, ctx: &mut Ctx) {
        if self.v.image.as_ref().is_some_and(|i| i.last_offset >= image.last_offset) {
            return;
        }
        self.v.image = Some(image);
        self.maybe_reconcile(ctx);
    }

    fn maybe_reconcile(&mut self, ctx: &mut Ctx) {
        let applied = self.v.image.as_ref().map_or(-1, |i| i.last_offset);
        if self.v.broker_epoch >= 0 && applied >= self.v.broker_epoch {
            self.reconcile(ctx);
        }
    }

    /// `Broker::reconcile`: lead what the image says this broker leads, follow the rest.
    fn reconcile(&mut self, ctx: &mut Ctx) {
        let Some(image) = self.v.image.clone() else { return };
        let Some(topic) = image.topic(TOPIC) else { return };
        let id = self.id;
        for p in topic.partitions.values().filter(|p| p.replicas.contains(&id)) {
            if p.leader == id {
                self.become_leader(p, ctx);
            } else {
                self.become_follower(p, ctx);
            }
        }
    }

    /// Puts a partition's new epoch in place, after `retire` ended the old one.
    fn install(&mut self, partition: i32, leader_epoch: i32, role: Role) {
        self.next_gen += 1;
        let hosted = Hosted { gen: self.next_gen, leader_epoch, role };
        let _ = self.v.hosted.insert(partition, hosted);
    }

    /// The process's timers: registration retries, heartbeats, metadata polls, the
    /// high-watermark checkpoint, ISR upkeep, and every request's timeout.
    pub(crate) fn tick(&mut self, ctx: &mut Ctx) {
        let cfg = ctx.cfg.clone();
        let (t, now) = (&cfg.timing, ctx.now);
        if self.v.broker_epoch < 0 {
            if now >= self.v.due.register {
                self.v.due.register = now + t.request_timeout_ms;
                ctx.send(self.me(), Node::Controller, Msg::Register { incarnation: self.incarnation });
            }
            return;
        }
        if now >= self.v.due.heartbeat {
            self.v.due.heartbeat = now + t.heartbeat_ms;
            let metadata_offset = self.v.image.as_ref().map_or(-1, |i| i.last_offset);
            ctx.send(self.me(), Node::Controller, Msg::Heartbeat { epoch: self.v.broker_epoch, metadata_offset });
        }
        if now >= self.v.due.poll {
            self.v.due.poll = now + t.metadata_poll_ms;
            let offset = self.v.image.as_ref().map_or(-1, |i| i.last_offset);
            ctx.send(self.me(), Node::Controller, Msg::MetadataFetch { offset });
        }
        if now >= self.v.due.checkpoint {
            self.v.due.checkpoint = now + t.hw_checkpoint_ms;
            for (p, log) in &self.logs {
                let _ = self.hw_checkpoint.insert(*p, log.high_watermark());
            }
        }
        self.expire_alters(now);
        if now >= self.v.due.isr {
            // `isr_maintenance`: every half replica.lag.time.max.ms, at most 500 ms.
            self.v.due.isr = now + (t.lag_max_ms as u64 / 2).clamp(10, 500);
            self.maintain_isr(ctx);
        }
        self.leader_deadlines(ctx);
        self.follower_deadlines(ctx);
        self.service_dirty(ctx);
    }

    fn service_dirty(&mut self, ctx: &mut Ctx) {
        while let Some(partition) = self.v.dirty.pop_first() {
            self.service(partition, ctx);
        }
    }

    /// Whether this broker's process is running and believes it leads `partition`, and
    /// in which epoch.
    pub(crate) fn leading(&self, partition: i32) -> Option<(i32, &Leading)> {
        match &self.v.hosted.get(&partition)?.role {
            Role::Leader(l) if self.up => Some((self.v.hosted[&partition].leader_epoch, l)),
            _ => None,
        }
    }

    /// The process state, for failure reports.
    pub(crate) fn describe(&self) -> String {
        let hosted: Vec<String> = self
            .v
            .hosted
            .iter()
            .map(|(p, h)| match &h.role {
                Role::Leader(l) => {
                    format!("p{p} leader e{} isr {:?} hw {}", h.leader_epoch, l.state.isr(), l.state.high_watermark())
                }
                Role::Follower(f) => format!("p{p} follower e{} {f:?}", h.leader_epoch),
            })
            .collect();
        format!(
            "b{} up={} inc {} epoch {} alters {}: {}",
            self.id,
            self.up,
            self.incarnation,
            self.v.broker_epoch,
            self.v.alters.len(),
            hosted.join("; ")
        )
    }

    /// Whether nothing is in flight towards the controller (for the quiet check).
    pub(crate) fn settled(&self) -> bool {
        self.up && self.v.broker_epoch >= 0 && self.v.alters.is_empty()
    }
}
