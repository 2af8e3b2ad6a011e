//! The leader's side of one partition (Kafka's `Partition` as leader): followers'
//! positions, the high watermark, and the ISR changes it proposes.
//!
//! ```text
//!            follower fetch(offset, broker epoch)         AlterPartition
//!  follower ─────────────────────────────────► leader ───────────────────► controller
//!                                             │ LEO of each follower           │ new ISR,
//!                                             │ HW = min LEO over maximal ISR  │ partition
//!                                             ▼ (only while ISR ≥ min.insync)  ▼ epoch + 1
//! ```

use std::collections::BTreeMap;

/// What the leader knows of one follower, all from its fetches in this leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replica {
    pub broker_id: i32,
    /// The broker epoch the follower fetched with (KIP-903), -1 before its first fetch.
    pub broker_epoch: i64,
    /// Its log end offset: the offset of its last fetch; -1 until it fetched in this epoch.
    pub log_end_offset: i64,
    /// When it last had everything the leader had (Kafka's lastCaughtUpTimeMs).
    pub last_caught_up_ms: i64,
    last_fetch_ms: i64,
    last_fetch_leader_log_end_offset: i64,
}

impl Replica {
    fn new(broker_id: i32, last_caught_up_ms: i64) -> Self {
        Self {
            broker_id,
            broker_epoch: -1,
            log_end_offset: -1,
            last_caught_up_ms,
            last_fetch_ms: -1,
            last_fetch_leader_log_end_offset: -1,
        }
    }

    fn is_caught_up(&self, leader_log_end_offset: i64, now_ms: i64, lag_max_ms: i64) -> bool {
        self.log_end_offset == leader_log_end_offset || now_ms - self.last_caught_up_ms <= lag_max_ms
    }
}

/// An ISR change for the controller (AlterPartition): the epochs it is based on and the
/// new ISR with each member's broker epoch (the leader's own is the caller's to fill in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<(i32, i64)>,
}

/// Where an `acks=all` produce stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The high watermark has not reached it yet.
    Pending,
    Done,
    /// Every ISR member has it, but the ISR shrank below `min.insync.replicas` meanwhile.
    NotEnoughReplicasAfterAppend,
}

/// The leader of one partition in one leader epoch. A new epoch gets a new state.
#[derive(Debug, Clone)]
pub struct LeaderState {
    leader_id: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: Vec<i32>,
    /// The ISR proposed to the controller and not answered yet, and when it was sent.
    pending: Option<(Vec<i32>, i64)>,
    followers: BTreeMap<i32, Replica>,
    /// The log end offset when this epoch began: a follower below it may still hold a
    /// diverging tail, so it cannot join the ISR (rule 4 of `Kip320.tla`).
    epoch_start_offset: i64,
    high_watermark: i64,
    min_isr: usize,
    lag_max_ms: i64,
}

/// The partition as the metadata image has it, for [`LeaderState::new`] and updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl LeaderState {
    /// Becoming leader at `log_end_offset` with the local `high_watermark`. ISR members
    /// get `lag_max_ms` from now to fetch before they count as lagging (Kafka's reset of
    /// the replica states on election).
    pub fn new(
        leader_id: i32,
        assignment: &Assignment,
        offsets: (i64, i64),
        limits: (usize, i64),
        now_ms: i64,
    ) -> Self {
        let (log_end_offset, high_watermark) = offsets;
        let (min_isr, lag_max_ms) = limits;
        let followers = assignment
            .replicas
            .iter()
            .filter(|b| **b != leader_id)
            .map(|&b| (b, Replica::new(b, if assignment.isr.contains(&b) { now_ms } else { 0 })))
            .collect();
        Self {
            leader_id,
            leader_epoch: assignment.leader_epoch,
            partition_epoch: assignment.partition_epoch,
            isr: assignment.isr.clone(),
            pending: None,
            followers,
            epoch_start_offset: log_end_offset,
            high_watermark: high_watermark.min(log_end_offset),
            min_isr: min_isr.max(1),
            lag_max_ms,
        }
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    pub fn follower(&self, broker_id: i32) -> Option<&Replica> {
        self.followers.get(&broker_id)
    }

    /// Kafka's `isUnderMinIsr`: `acks=all` is refused before the append.
    pub fn is_under_min_isr(&self) -> bool {
        self.isr.len() < self.min_isr
    }

    /// The committed ISR and, while a change is pending, the proposed one: the high
    /// watermark waits for all of them, so it is safe whichever the controller accepts.
    fn in_maximal_isr(&self, broker_id: i32) -> bool {
        self.isr.contains(&broker_id) || self.pending.as_ref().is_some_and(|(p, _)| p.contains(&broker_id))
    }

    /// A newer partition epoch from the metadata (same leader epoch): the controller
    /// decided an ISR change, ours or its own (a fenced follower removed).
    pub fn update(&mut self, assignment: &Assignment, limits: (usize, i64)) {
        (self.min_isr, self.lag_max_ms) = (limits.0.max(1), limits.1);
        // Only a decision newer than the one this state has ends a pending proposal: until
        // then the maximal ISR keeps counting the proposed members (KIP-497).
        if assignment.partition_epoch <= self.partition_epoch {
            return;
        }
        self.partition_epoch = assignment.partition_epoch;
        self.isr = assignment.isr.clone();
        self.pending = None;
        self.followers.retain(|b, _| assignment.replicas.contains(b));
        for &b in assignment.replicas.iter().filter(|b| **b != self.leader_id) {
            let _ = self.followers.entry(b).or_insert_with(|| Replica::new(b, 0));
        }
    }

    /// A follower fetched from `fetch_offset` (so it has everything below it) while the
    /// leader's log ended at `leader_log_end_offset`. Returns whether the high watermark
    /// moved.
    pub fn follower_fetched(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        leader_log_end_offset: i64,
        now_ms: i64,
    ) -> bool {
        let Some(replica) = self.followers.get_mut(&broker_id) else { return false };
        // Kafka's updateFollowerFetchState: caught up now if it asked for the end, or as
        // of the previous fetch if it reached where the log ended then.
        if fetch_offset >= leader_log_end_offset {
            replica.last_caught_up_ms = now_ms;
        } else if fetch_offset >= replica.last_fetch_leader_log_end_offset && replica.last_fetch_ms >= 0 {
            replica.last_caught_up_ms = replica.last_caught_up_ms.max(replica.last_fetch_ms);
        }
        replica.broker_epoch = broker_epoch;
        replica.log_end_offset = fetch_offset;
        replica.last_fetch_ms = now_ms;
        replica.last_fetch_leader_log_end_offset = leader_log_end_offset;
        self.maybe_advance_high_watermark(leader_log_end_offset, now_ms)
    }

    /// Kafka's `maybeIncrementLeaderHW`: the lowest log end offset over the maximal ISR
    /// and the caught-up replicas about to join it; never while under min ISR; never back.
    pub fn maybe_advance_high_watermark(&mut self, leader_log_end_offset: i64, now_ms: i64) -> bool {
        if self.is_under_min_isr() {
            return false;
        }
        let mut candidate = leader_log_end_offset;
        for replica in self.followers.values() {
            let joining = replica.log_end_offset >= 0
                && replica.is_caught_up(leader_log_end_offset, now_ms, self.lag_max_ms)
                && replica.log_end_offset >= self.epoch_start_offset;
            if self.in_maximal_isr(replica.broker_id) || joining {
                candidate = candidate.min(replica.log_end_offset);
            }
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            return true;
        }
        false
    }

    /// Where a produce whose last offset is `required - 1` stands (Kafka's
    /// `checkEnoughReplicasReachOffset`).
    pub fn ack(&self, required: i64) -> AckOutcome {
        if self.high_watermark < required {
            AckOutcome::Pending
        } else if self.is_under_min_isr() {
            AckOutcome::NotEnoughReplicasAfterAppend
        } else {
            AckOutcome::Done
        }
    }

    /// The ISR change to propose now, if any and if none is in flight: members that have
    /// not caught up for `replica.lag.time.max.ms` leave; followers that reached the high
    /// watermark and this epoch's start join, if they fetched within the lag time and
    /// `eligible(broker, broker epoch)` (Kafka's `isReplicaIsrEligible`: registered,
    /// unfenced, of that epoch). A proposal unanswered for `retry_ms` is sent again as it
    /// was, never replaced: the controller may have applied it and the answer been lost,
    /// so its members stay in the maximal ISR until newer metadata or a refusal that
    /// says it was not applied ends it (KIP-497, Kafka's `AlterPartitionManager`).
    pub fn isr_change(
        &mut self,
        leader_log_end_offset: i64,
        (now_ms, retry_ms): (i64, i64),
        eligible: &dyn Fn(i32, i64) -> bool,
    ) -> Option<IsrChange> {
        if let Some((proposed, sent)) = &mut self.pending {
            if now_ms - *sent < retry_ms {
                return None;
            }
            *sent = now_ms;
            let proposed = proposed.clone();
            return Some(self.change_to(proposed));
        }
        let lagging = |r: &Replica| !r.is_caught_up(leader_log_end_offset, now_ms, self.lag_max_ms);
        let in_sync = |r: &Replica| {
            r.log_end_offset >= 0
                && r.log_end_offset >= self.high_watermark
                && r.log_end_offset >= self.epoch_start_offset
                && now_ms - r.last_fetch_ms <= self.lag_max_ms
                && eligible(r.broker_id, r.broker_epoch)
        };
        let mut new_isr = vec![self.leader_id];
        for replica in self.followers.values() {
            let member = self.isr.contains(&replica.broker_id);
            if (member && !lagging(replica)) || (!member && in_sync(replica)) {
                new_isr.push(replica.broker_id);
            }
        }
        new_isr.sort_unstable();
        let mut current = self.isr.clone();
        current.sort_unstable();
        if new_isr == current {
            return None;
        }
        self.pending = Some((new_isr.clone(), now_ms));
        Some(self.change_to(new_isr))
    }

    fn change_to(&self, new_isr: Vec<i32>) -> IsrChange {
        let epoch_of = |b: i32| self.followers.get(&b).map_or(-1, |r| r.broker_epoch);
        IsrChange {
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr: new_isr.into_iter().map(|b| (b, epoch_of(b))).collect(),
        }
    }

    /// The controller refused the proposal in a way that says it did not apply it and
    /// no newer metadata is coming (Kafka: `INELIGIBLE_REPLICA`, `OPERATION_NOT_ATTEMPTED`):
    /// forget it; the next check proposes again from what is true then. Any other
    /// failure (a timeout, a lost answer, a stale epoch) keeps it pending.
    pub fn isr_change_failed(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests;
