//! The leader's side (`replica_manager.rs`, the Fetch, OffsetForLeaderEpoch and Produce
//! handlers, `Broker::maintain_isr`): `LeaderState` learns followers' positions from
//! their fetches and decides the high watermark, `acks=all` answers and ISR proposals.

use gregor_metadata::replication_control::{AlterPartition, IsrMember};
use gregor_metadata::PartitionRegistration;
use gregor_replication::{AckOutcome, LeaderState};

use super::{assignment, Alter, Broker, Role};
use crate::controller::TOPIC;
use crate::ctx::{Ctx, Note};
use crate::net::{Code, FetchData, Msg, Node};
use crate::replica_log::{Record, ReplicaLog};

/// A follower's fetch waiting for data (long poll), bound to the epoch it arrived in.
#[derive(Debug)]
struct Parked {
    from: (Node, u32),
    partition: i32,
    req: u64,
    gen: u64,
    leader_epoch: i32,
    fetch_offset: i64,
    replica: (i32, i64),
    deadline: u64,
}

/// An `acks=all` produce waiting for the high watermark.
#[derive(Debug)]
struct Waiting {
    from: (Node, u32),
    req: u64,
    record: Record,
    deadline: u64,
}

/// `Role::Leader`: the real leader state and what waits on it.
#[derive(Debug)]
pub(crate) struct Leading {
    pub(crate) state: LeaderState,
    parked: Vec<Parked>,
    waiting: Vec<Waiting>,
}

/// `advance_high_watermark` of `replica_manager.rs`: the state decides, the log follows.
fn advance_high_watermark(state: &mut LeaderState, log: &mut ReplicaLog, now_ms: i64) -> bool {
    let advanced = state.maybe_advance_high_watermark(log.log_end_offset(), now_ms);
    if advanced {
        log.raise_high_watermark(state.high_watermark());
    }
    advanced
}

fn epoch_error(asked: i32, current: i32) -> Option<Code> {
    match asked {
        a if a < 0 || a == current => None,
        a if a > current => Some(Code::UnknownLeaderEpoch),
        _ => Some(Code::FencedLeaderEpoch),
    }
}

impl Broker {
    fn limits(ctx: &Ctx) -> (usize, i64) {
        (ctx.cfg.min_insync_replicas, ctx.cfg.timing.lag_max_ms)
    }

    /// `ReplicaManager::become_leader`.
    pub(super) fn become_leader(&mut self, p: &PartitionRegistration, ctx: &mut Ctx) {
        let (now, limits) = (ctx.now_ms(), Self::limits(ctx));
        let log = self.logs.get_mut(&p.partition).expect("a replica has a log");
        if let Some(hosted) = self.v.hosted.get_mut(&p.partition).filter(|h| h.leader_epoch == p.leader_epoch) {
            if let Role::Leader(leading) = &mut hosted.role {
                leading.state.update(&assignment(p), limits);
                let _ = advance_high_watermark(&mut leading.state, log, now);
                let _ = self.v.dirty.insert(p.partition);
                return;
            }
        }
        self.retire(p.partition, ctx);
        let log = self.logs.get_mut(&p.partition).expect("a replica has a log");
        log.assign_epoch_start(p.leader_epoch);
        let offsets = (log.log_end_offset(), log.high_watermark());
        let mut state = LeaderState::new(self.id, &assignment(p), offsets, limits, now);
        let _ = advance_high_watermark(&mut state, log, now);
        ctx.note(|| {
            format!(
                "b{} leads p{} in epoch {} from LEO {} HW {}",
                self.id,
                p.partition,
                p.leader_epoch,
                offsets.0,
                state.high_watermark()
            )
        });
        let leading = Leading { state, parked: Vec::new(), waiting: Vec::new() };
        self.install(p.partition, p.leader_epoch, Role::Leader(Box::new(leading)));
        ctx.notes.push(Note::BecameLeader { broker: self.id, partition: p.partition, epoch: p.leader_epoch });
    }

    /// `retire`: the old epoch ends; whoever waits on it gets NOT_LEADER_OR_FOLLOWER.
    pub(super) fn retire(&mut self, partition: i32, ctx: &mut Ctx) {
        let Some(hosted) = self.v.hosted.remove(&partition) else { return };
        let Role::Leader(leading) = hosted.role else { return };
        let me = self.me();
        for f in leading.parked {
            let msg = Msg::FetchAnswer { partition, req: f.req, result: Err(Code::NotLeaderOrFollower) };
            ctx.reply(me, f.from, msg);
        }
        for w in leading.waiting {
            let msg = Msg::ProduceAnswer { partition, req: w.req, result: Err(Code::NotLeaderOrFollower) };
            ctx.reply(me, w.from, msg);
        }
    }

    /// `Broker::leader_partition`: the image must name this broker as leader, and the
    /// partition be hosted; returns the hosted epoch's `gen`.
    fn leader_partition(&self, partition: i32) -> Result<u64, Code> {
        let image = self.v.image.as_ref().ok_or(Code::NotLeaderOrFollower)?;
        let p = image.topic(TOPIC).and_then(|t| t.partitions.get(&partition)).ok_or(Code::NotLeaderOrFollower)?;
        if p.leader != self.id {
            return Err(Code::NotLeaderOrFollower);
        }
        self.v.hosted.get(&partition).map(|h| h.gen).ok_or(Code::NotLeaderOrFollower)
    }

    pub(super) fn serve_fetch(
        &mut self,
        from: (Node, u32),
        (partition, req): (i32, u64),
        (leader_epoch, fetch_offset, replica): (i32, i64, (i32, i64)),
        ctx: &mut Ctx,
    ) {
        let gen = match self.leader_partition(partition) {
            Ok(gen) => gen,
            Err(code) => return ctx.reply(self.me(), from, Msg::FetchAnswer { partition, req, result: Err(code) }),
        };
        let deadline = ctx.now + ctx.cfg.timing.fetch_wait_ms;
        let fetch = Parked { from, partition, req, gen, leader_epoch, fetch_offset, replica, deadline };
        if let Some(parked) = self.read_for(fetch, ctx) {
            if let Some(Role::Leader(leading)) = self.v.hosted.get_mut(&partition).map(|h| &mut h.role) {
                leading.parked.push(parked);
            }
        }
    }

    /// One pass of the Fetch handler's loop: answers, or hands the fetch back to wait.
    fn read_for(&mut self, fetch: Parked, ctx: &mut Ctx) -> Option<Parked> {
        let result = self.read_one(&fetch, ctx);
        if matches!(&result, Ok(data) if data.records.is_empty()) && ctx.now < fetch.deadline {
            return Some(fetch);
        }
        let msg = Msg::FetchAnswer { partition: fetch.partition, req: fetch.req, result };
        ctx.reply(self.me(), fetch.from, msg);
        None
    }

    /// `read_one` of the Fetch handler for a follower: epoch check, `follower_fetched`
    /// (the leader learns its position), then the read up to the log end.
    fn read_one(&mut self, f: &Parked, ctx: &mut Ctx) -> Result<FetchData, Code> {
        let hosted = self.v.hosted.get_mut(&f.partition).filter(|h| h.gen == f.gen).ok_or(Code::NotLeaderOrFollower)?;
        if let Some(code) = epoch_error(f.leader_epoch, hosted.leader_epoch) {
            return Err(code);
        }
        let Role::Leader(leading) = &mut hosted.role else { return Err(Code::NotLeaderOrFollower) };
        leading.state.follower(f.replica.0).ok_or(Code::NotLeaderOrFollower)?;
        let log = self.logs.get_mut(&f.partition).expect("a replica has a log");
        let end = log.log_end_offset();
        if leading.state.follower_fetched(f.replica.0, f.replica.1, f.fetch_offset, end, ctx.now_ms()) {
            log.raise_high_watermark(leading.state.high_watermark());
            let _ = self.v.dirty.insert(f.partition);
            let (id, hw) = (self.id, log.high_watermark());
            ctx.note(|| {
                format!(
                    "b{id} p{} HW -> {hw} (b{} fetched at {} in e{})",
                    f.partition, f.replica.0, f.fetch_offset, hosted.leader_epoch
                )
            });
        }
        let records = log.read(f.fetch_offset, ctx.cfg.fetch_max_records).ok_or(Code::OffsetOutOfRange)?;
        Ok(FetchData { records, high_watermark: log.high_watermark() })
    }

    /// OffsetForLeaderEpoch: where the asked epoch ends in this leader's log.
    pub(super) fn serve_epoch_query(
        &mut self,
        from: (Node, u32),
        (partition, req): (i32, u64),
        (current_leader_epoch, leader_epoch): (i32, i32),
        ctx: &mut Ctx,
    ) {
        let result = self.leader_partition(partition).and_then(|_| {
            let hosted = &self.v.hosted[&partition];
            match epoch_error(current_leader_epoch, hosted.leader_epoch) {
                Some(code) => Err(code),
                None => {
                    let log = &self.logs[&partition];
                    Ok(log.end_offset_for_epoch(leader_epoch, ctx.cfg.epoch_cache).unwrap_or((-1, -1)))
                }
            }
        });
        ctx.reply(self.me(), from, Msg::EpochAnswer { partition, req, result });
    }

    /// `ReplicaManager::append` with acks=all, then the wait in `replicated`.
    pub(super) fn produce(&mut self, from: (Node, u32), (partition, req): (i32, u64), value: u64, ctx: &mut Ctx) {
        let deadline = ctx.now + ctx.cfg.timing.request_timeout_ms;
        let now = ctx.now_ms();
        let appended = match self.v.hosted.get_mut(&partition) {
            Some(h) => match &mut h.role {
                Role::Leader(l) if l.state.is_under_min_isr() => Err(Code::NotEnoughReplicas),
                Role::Leader(l) => {
                    let log = self.logs.get_mut(&partition).expect("a replica has a log");
                    let record = log.append_as_leader(h.leader_epoch, value);
                    let _ = advance_high_watermark(&mut l.state, log, now);
                    l.waiting.push(Waiting { from, req, record, deadline });
                    Ok(record)
                }
                Role::Follower(_) => Err(Code::NotLeaderOrFollower),
            },
            None => Err(Code::NotLeaderOrFollower),
        };
        match appended {
            Ok(record) => {
                ctx.stats.appended += 1;
                ctx.note(|| format!("b{} appended p{partition} {record:?}", self.id));
                let _ = self.v.dirty.insert(partition);
            }
            Err(code) => ctx.reply(self.me(), from, Msg::ProduceAnswer { partition, req, result: Err(code) }),
        }
    }

    /// The waiters of a led partition look again (an append or a high-watermark move).
    pub(super) fn service(&mut self, partition: i32, ctx: &mut Ctx) {
        let Some(Role::Leader(leading)) = self.v.hosted.get_mut(&partition).map(|h| &mut h.role) else { return };
        let parked = std::mem::take(&mut leading.parked);
        let still: Vec<Parked> = parked.into_iter().filter_map(|f| self.read_for(f, ctx)).collect();
        self.answer_produces(partition, ctx);
        if let Some(Role::Leader(leading)) = self.v.hosted.get_mut(&partition).map(|h| &mut h.role) {
            leading.parked.extend(still);
        }
    }

    /// `LeaderState::ack` for every waiting produce: `Done` is the acknowledgement.
    fn answer_produces(&mut self, partition: i32, ctx: &mut Ctx) {
        let me = self.me();
        let Some(Role::Leader(leading)) = self.v.hosted.get_mut(&partition).map(|h| &mut h.role) else { return };
        let mut keep = Vec::new();
        for w in std::mem::take(&mut leading.waiting) {
            let result = match leading.state.ack(w.record.offset + 1) {
                AckOutcome::Done => {
                    ctx.notes.push(Note::Acked { partition, record: w.record });
                    Ok(w.record.offset)
                }
                AckOutcome::NotEnoughReplicasAfterAppend => Err(Code::NotEnoughReplicasAfterAppend),
                AckOutcome::Pending if ctx.now >= w.deadline => Err(Code::RequestTimedOut),
                AckOutcome::Pending => {
                    keep.push(w);
                    continue;
                }
            };
            ctx.reply(me, w.from, Msg::ProduceAnswer { partition, req: w.req, result });
        }
        leading.waiting = keep;
    }

    /// Long polls and produce waits that reached their deadline answer now.
    pub(super) fn leader_deadlines(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        let due: Vec<i32> = self
            .v
            .hosted
            .iter()
            .filter(|(_, h)| match &h.role {
                Role::Leader(l) => {
                    l.parked.iter().any(|f| f.deadline <= now) || l.waiting.iter().any(|w| w.deadline <= now)
                }
                Role::Follower(_) => false,
            })
            .map(|(p, _)| *p)
            .collect();
        self.v.dirty.extend(due);
    }

    /// `Broker::maintain_isr`: the ISR changes the led partitions want, to the controller.
    /// The real task waits for each answer before its next round; so does this one.
    pub(super) fn maintain_isr(&mut self, ctx: &mut Ctx) {
        let Some(image) = self.v.image.clone() else { return };
        if !self.v.alters.is_empty() {
            return;
        }
        let Some(topic_id) = image.topic(TOPIC).map(|t| t.topic_id) else { return };
        let eligible = |b: i32, epoch: i64| image.brokers.get(&b).is_some_and(|r| !r.fenced && r.epoch == epoch);
        let retry_ms = ctx.cfg.timing.lag_max_ms.min(5_000);
        let mut changes = Vec::new();
        for (&partition, hosted) in &mut self.v.hosted {
            let Role::Leader(leading) = &mut hosted.role else { continue };
            let end = self.logs[&partition].log_end_offset();
            if let Some(change) = leading.state.isr_change(end, (ctx.now_ms(), retry_ms), &eligible) {
                changes.push((partition, hosted.gen, change));
            }
        }
        for (partition, gen, change) in changes {
            let me = self.v.broker_epoch;
            let new_isr = change
                .new_isr
                .iter()
                .map(|&(b, e)| IsrMember { broker_id: b, broker_epoch: if b == self.id { me } else { e } })
                .collect();
            let request = AlterPartition {
                topic_id,
                partition,
                leader_id: self.id,
                leader_epoch: change.leader_epoch,
                partition_epoch: change.partition_epoch,
                new_isr,
            };
            let req = self.next_req();
            let deadline = ctx.now + ctx.cfg.timing.request_timeout_ms;
            let _ = self.v.alters.insert(req, Alter { partition, gen, deadline });
            ctx.send(self.me(), Node::Controller, Msg::AlterPartition { req, request });
        }
    }

    /// The controller's answer: as `Broker::maintain_isr`, only a refusal that says
    /// nothing was applied (INELIGIBLE_REPLICA) ends the proposal (`isr_change_failed`);
    /// others wait for the metadata, the proposal staying in the maximal ISR.
    pub(super) fn alter_answered(&mut self, req: u64, not_applied: bool) {
        if let Some(alter) = self.v.alters.remove(&req) {
            if not_applied {
                self.isr_change_failed(&alter);
            }
        }
    }

    /// No answer in time: `execute` fails, but the controller may have applied it, so the
    /// proposal stays pending and `LeaderState::isr_change` sends it again.
    pub(super) fn expire_alters(&mut self, now: u64) {
        self.v.alters.retain(|_, a| a.deadline > now);
    }

    fn isr_change_failed(&mut self, alter: &Alter) {
        if let Some(hosted) = self.v.hosted.get_mut(&alter.partition).filter(|h| h.gen == alter.gen) {
            if let Role::Leader(leading) = &mut hosted.role {
                leading.state.isr_change_failed();
            }
        }
    }
}
