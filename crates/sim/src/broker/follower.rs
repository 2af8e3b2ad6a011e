//! The follower's side (`replica_fetcher.rs`): in a new leader epoch, OffsetForLeaderEpoch
//! and `truncation::decide` until the log agrees with the leader's (rule 1 of
//! `Kip320.tla`), then fetches from the log end offset, each naming the epoch followed
//! (rule 2) and this process's broker epoch (KIP-903). One request in flight per
//! partition (the real fetcher batches a leader's partitions into one; sessions, KIP-227,
//! are not simulated).

use gregor_metadata::PartitionRegistration;
use gregor_replication::truncation::{self, FollowerLog, Truncation};

use std::collections::BTreeMap;

use super::{Broker, Hosted, Role};
use crate::config::EpochCache;
use crate::ctx::Ctx;
use crate::net::{Code, FetchData, Msg, Node};
use crate::replica_log::ReplicaLog;

/// `Role::Follower`: the fetcher's state for the partition in this epoch (`Followed`).
#[derive(Debug)]
pub(crate) struct Followed {
    /// -1: the partition is offline; nothing to fetch from.
    pub(crate) leader: i32,
    /// Set once the log was cut to where it agrees with the leader in this epoch.
    truncated: bool,
    /// The request in flight and when it times out.
    in_flight: Option<(u64, u64)>,
    /// After an error: not fetched again before then.
    retry_at: u64,
}

/// `cut_log`: decides with the real `truncation::decide` and carries it out.
fn cut(log: &mut ReplicaLog, leader_answer: (i32, i64), rules: EpochCache) -> (Truncation, i64) {
    let follower = FollowerLog {
        log_end_offset: log.log_end_offset(),
        high_watermark: log.high_watermark(),
        end_for_leader_epoch: log.end_offset_for_epoch(leader_answer.0, rules),
    };
    let decision = truncation::decide(leader_answer, follower);
    let (Truncation::Complete(offset) | Truncation::Retry(offset)) = decision;
    let cut = (follower.log_end_offset - offset).max(0);
    log.truncate_to(offset, rules);
    (decision, cut)
}

/// The followed state of `partition` if `req` is the request it waits for (an answer to
/// an earlier epoch's request, or to one that timed out, is dropped).
fn awaited(hosted: &mut BTreeMap<i32, Hosted>, partition: i32, req: u64) -> Option<&mut Followed> {
    match &mut hosted.get_mut(&partition)?.role {
        Role::Follower(f) if f.in_flight.is_some_and(|(r, _)| r == req) => {
            f.in_flight = None;
            Some(f)
        }
        _ => None,
    }
}

impl Broker {
    /// `ReplicaManager::become_follower` and the fetcher's `assign`: a new epoch starts
    /// with truncation; the same epoch keeps its fetch state.
    pub(super) fn become_follower(&mut self, p: &PartitionRegistration, ctx: &mut Ctx) {
        let same = self.v.hosted.get(&p.partition).filter(|h| h.leader_epoch == p.leader_epoch);
        if same.is_some_and(|h| matches!(h.role, Role::Follower(_))) {
            return;
        }
        self.retire(p.partition, ctx);
        let followed = Followed { leader: p.leader, truncated: false, in_flight: None, retry_at: 0 };
        self.install(p.partition, p.leader_epoch, Role::Follower(followed));
        self.pump(p.partition, ctx);
    }

    /// Sends the partition's next request if none is in flight: OffsetForLeaderEpoch until
    /// truncated, then Fetch.
    fn pump(&mut self, partition: i32, ctx: &mut Ctx) {
        let (me, broker_epoch, req) = (self.me(), self.v.broker_epoch, self.v.next_req + 1);
        let Some(hosted) = self.v.hosted.get_mut(&partition) else { return };
        let Role::Follower(f) = &mut hosted.role else { return };
        if f.leader < 0 || f.in_flight.is_some() || ctx.now < f.retry_at {
            return;
        }
        let log = &self.logs[&partition];
        let current_leader_epoch = hosted.leader_epoch;
        let msg = match (f.truncated, log.latest_epoch()) {
            // Nothing to agree on: an empty epoch cache fetches at once.
            (false, None) => {
                f.truncated = true;
                None
            }
            (false, Some(leader_epoch)) => Some(Msg::EpochQuery { partition, req, current_leader_epoch, leader_epoch }),
            (true, _) => None,
        };
        let msg = msg.unwrap_or(Msg::Fetch {
            partition,
            req,
            leader_epoch: current_leader_epoch,
            fetch_offset: log.log_end_offset(),
            broker_epoch,
        });
        f.in_flight = Some((req, ctx.now + ctx.cfg.timing.request_timeout_ms));
        self.v.next_req = req;
        ctx.send(me, Node::Broker(f.leader), msg);
    }

    pub(super) fn epoch_answered(&mut self, partition: i32, req: u64, result: Result<(i32, i64), Code>, ctx: &mut Ctx) {
        let backoff = ctx.now + ctx.cfg.timing.fetch_backoff_ms;
        let id = self.id;
        let Some(f) = awaited(&mut self.v.hosted, partition, req) else { return };
        match result {
            Err(_) => f.retry_at = backoff,
            Ok(answer) => {
                let log = self.logs.get_mut(&partition).expect("a replica has a log");
                let (decision, cut) = cut(log, answer, ctx.cfg.epoch_cache);
                if matches!(decision, Truncation::Complete(_)) {
                    f.truncated = true;
                }
                ctx.stats.truncated_records += cut as u64;
                ctx.note(|| format!("b{id} p{partition}: leader answered {answer:?}: {decision:?}, cut {cut}"));
            }
        }
        self.pump(partition, ctx);
    }

    pub(super) fn fetch_answered(&mut self, partition: i32, req: u64, result: Result<FetchData, Code>, ctx: &mut Ctx) {
        let backoff = ctx.now + ctx.cfg.timing.fetch_backoff_ms;
        let id = self.id;
        let Some(f) = awaited(&mut self.v.hosted, partition, req) else { return };
        let log = self.logs.get_mut(&partition).expect("a replica has a log");
        match result {
            Ok(data) => {
                if let Err(e) = log.append_as_follower(&data.records) {
                    ctx.note(|| format!("b{id} p{partition}: append refused: {e}"));
                    f.retry_at = backoff;
                } else {
                    log.raise_high_watermark(data.high_watermark.min(log.log_end_offset()));
                }
            }
            // `out_of_range`: the log start is 0, so the logs disagree: truncate again.
            Err(Code::OffsetOutOfRange) => f.truncated = false,
            Err(_) => f.retry_at = backoff,
        }
        self.pump(partition, ctx);
    }

    /// Requests without an answer in time fail (the connection is dropped); every idle
    /// partition past its backoff sends again.
    pub(super) fn follower_deadlines(&mut self, ctx: &mut Ctx) {
        let backoff = ctx.now + ctx.cfg.timing.fetch_backoff_ms;
        let mut partitions = Vec::new();
        for (&p, hosted) in &mut self.v.hosted {
            if let Role::Follower(f) = &mut hosted.role {
                if f.in_flight.is_some_and(|(_, deadline)| deadline <= ctx.now) {
                    f.in_flight = None;
                    f.retry_at = backoff;
                }
                partitions.push(p);
            }
        }
        for p in partitions {
            self.pump(p, ctx);
        }
    }
}
