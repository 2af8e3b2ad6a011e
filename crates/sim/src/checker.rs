//! The invariants, checked after every step (and at the end, after healing). Logs are
//! compared by prefix hash, so each check is a few comparisons per broker and partition.
//!
//! "Committed" is the longest prefix any leader ever had below its high watermark: the
//! records Kafka promises never to lose (consumers may have read them).

use std::collections::BTreeMap;

use crate::broker::Broker;
use crate::controller::Controller;
use crate::ctx::Note;
use crate::replica_log::{Record, ReplicaLog};
use crate::Stats;

/// A broken invariant: which, and the facts.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) invariant: &'static str,
    pub(crate) detail: String,
}

fn fail<T>(invariant: &'static str, detail: String) -> Result<T, Failure> {
    Err(Failure { invariant, detail })
}

/// Every replica of `p` compared with `reference`, for a failure's detail.
fn logs_of(p: i32, brokers: &BTreeMap<i32, Broker>, reference: &ReplicaLog) -> String {
    let lines = brokers.iter().filter_map(|(id, b)| {
        let state = if b.up { "" } else { " (down)" };
        b.logs.get(&p).map(|log| format!("\n    b{id}{state}: {}", log.describe(reference)))
    });
    lines.collect()
}

#[derive(Debug, Default)]
pub(crate) struct Checker {
    min_isr: usize,
    /// Who led each (partition, epoch): broker and incarnation.
    epoch_leader: BTreeMap<(i32, i32), (i32, u32)>,
    /// The highest high watermark each (partition, epoch) leader had.
    epoch_hw: BTreeMap<(i32, i32), i64>,
    committed: BTreeMap<i32, ReplicaLog>,
    /// The high watermark of the leader the controller names, as last seen.
    visible: BTreeMap<i32, i64>,
    pub(crate) acked: Vec<(i32, Record)>,
    new_acks: Vec<(i32, Record)>,
    new_leaders: Vec<(i32, i32, i32)>,
}

impl Checker {
    pub(crate) fn new(min_isr: usize) -> Self {
        Self { min_isr, ..Self::default() }
    }

    pub(crate) fn committed_len(&self, partition: i32) -> i64 {
        self.committed.get(&partition).map_or(0, ReplicaLog::log_end_offset)
    }

    pub(crate) fn take(&mut self, notes: Vec<Note>) {
        for note in notes {
            match note {
                Note::BecameLeader { broker, partition, epoch } => self.new_leaders.push((broker, partition, epoch)),
                Note::Acked { partition, record } => self.new_acks.push((partition, record)),
            }
        }
    }

    pub(crate) fn after_step(
        &mut self,
        brokers: &BTreeMap<i32, Broker>,
        controller: &Controller,
        stats: &mut Stats,
    ) -> Result<(), Failure> {
        self.check_new_leaders(brokers)?;
        for p in controller.partition_ids() {
            self.check_leaders(p, brokers, controller)?;
            self.check_replicas(p, brokers)?;
            self.observe_visible(p, brokers, controller, stats);
        }
        self.check_acks()
    }

    /// A newly elected leader holds every record committed before its epoch (so every
    /// record acknowledged before): what leaders of earlier epochs had below their high
    /// watermarks. A broker may learn of its election late (a stopped process applying
    /// old metadata) when later epochs committed more: those it need not have.
    fn check_new_leaders(&mut self, brokers: &BTreeMap<i32, Broker>) -> Result<(), Failure> {
        for (broker, p, epoch) in std::mem::take(&mut self.new_leaders) {
            let log = &brokers[&broker].logs[&p];
            let n = self.epoch_hw.range((p, i32::MIN)..(p, epoch)).map(|(_, hw)| *hw).max().unwrap_or(0);
            if log.prefix_hash(n) != self.committed_prefix(p, n) {
                return fail(
                    "a new leader holds every record committed before its epoch",
                    format!(
                        "b{broker} leads p{p} in epoch {epoch} with LEO {} but {n} records were committed before; vs committed:{}",
                        log.log_end_offset(),
                        logs_of(p, brokers, &self.committed[&p])
                    ),
                );
            }
        }
        Ok(())
    }

    fn committed_prefix(&self, p: i32, n: i64) -> Option<u64> {
        self.committed.get(&p).map_or(Some(0), |c| c.prefix_hash(n))
    }

    /// Every broker that believes it leads `p`: one per epoch, its high watermark never
    /// back, its committed records the same as everyone's, on at least
    /// min.insync.replicas replicas and on every member of the controller's ISR.
    fn check_leaders(
        &mut self,
        p: i32,
        brokers: &BTreeMap<i32, Broker>,
        controller: &Controller,
    ) -> Result<(), Failure> {
        let mut seen: BTreeMap<i32, i32> = BTreeMap::new();
        for (&id, broker) in brokers {
            let Some((epoch, leading)) = broker.leading(p) else { continue };
            if let Some(other) = seen.insert(epoch, id) {
                return fail("one leader per epoch", format!("b{other} and b{id} both lead p{p} in epoch {epoch}"));
            }
            let who = (id, broker.incarnation);
            let first = *self.epoch_leader.entry((p, epoch)).or_insert(who);
            if first != who {
                return fail("one leader per epoch", format!("p{p} epoch {epoch} led by {first:?}, now by {who:?}"));
            }
            let hw = leading.state.high_watermark();
            let log = &broker.logs[&p];
            if hw != log.high_watermark() || hw > log.log_end_offset() {
                return fail(
                    "leader high watermark",
                    format!("b{id} p{p}: state HW {hw}, log HW {}, LEO {}", log.high_watermark(), log.log_end_offset()),
                );
            }
            let before = self.epoch_hw.insert((p, epoch), hw).unwrap_or(0);
            if hw < before {
                return fail(
                    "high watermark never moves back in an epoch",
                    format!("b{id} p{p} epoch {epoch}: {before} -> {hw}"),
                );
            }
            self.commit(p, id, log)?;
            self.check_copies(p, (id, hw, log), brokers, controller)?;
        }
        Ok(())
    }

    /// The leader's records below its high watermark agree with the committed ones, and
    /// extend them.
    fn commit(&mut self, p: i32, id: i32, log: &ReplicaLog) -> Result<(), Failure> {
        let hw = log.high_watermark();
        let committed = self.committed.entry(p).or_default();
        let n = committed.log_end_offset().min(hw);
        if log.prefix_hash(n) != committed.prefix_hash(n) {
            let at = (0..n).find(|&o| log.get(o) != committed.get(o)).unwrap_or(-1);
            return fail(
                "committed records never change",
                format!(
                    "b{id} p{p} below its HW {hw} has {:?} at offset {at}, committed {:?}",
                    log.get(at),
                    committed.get(at)
                ),
            );
        }
        if hw > committed.log_end_offset() {
            let from = committed.log_end_offset() as usize;
            committed.append_as_follower(&log.records()[from..hw as usize]).expect("extends the committed prefix");
        }
        Ok(())
    }

    /// min.insync.replicas copies of everything below the leader's high watermark, and
    /// Kip320.tla's StrongIsr: every member of the controller's ISR has all of it.
    fn check_copies(
        &self,
        p: i32,
        (id, hw, log): (i32, i64, &ReplicaLog),
        brokers: &BTreeMap<i32, Broker>,
        controller: &Controller,
    ) -> Result<(), Failure> {
        let want = log.prefix_hash(hw);
        let copies = brokers.values().filter(|b| b.logs.get(&p).is_some_and(|l| l.prefix_hash(hw) == want)).count();
        if copies < self.min_isr {
            return fail(
                "min.insync.replicas copies below the high watermark",
                format!("b{id} p{p} HW {hw}: {copies} copies; vs b{id}:{}", logs_of(p, brokers, log)),
            );
        }
        let isr = controller.partition(p).map(|r| r.isr.clone()).unwrap_or_default();
        for member in isr {
            let theirs = brokers.get(&member).and_then(|b| b.logs.get(&p));
            if theirs.and_then(|l| l.prefix_hash(hw)) != want {
                let end = theirs.map_or(-1, ReplicaLog::log_end_offset);
                return fail(
                    "every ISR member holds what is below a leader's high watermark (StrongIsr)",
                    format!(
                        "b{id} p{p} HW {hw}; ISR member b{member} (LEO {end}) lacks or differs; vs b{id}:{}",
                        logs_of(p, brokers, log)
                    ),
                );
            }
        }
        Ok(())
    }

    /// Every running replica's log below its own high watermark is committed data (what a
    /// consumer reading from a follower sees, KIP-392).
    fn check_replicas(&self, p: i32, brokers: &BTreeMap<i32, Broker>) -> Result<(), Failure> {
        let committed = self.committed_len(p);
        for (&id, broker) in brokers.iter().filter(|(_, b)| b.up) {
            let Some(log) = broker.logs.get(&p) else { continue };
            let hw = log.high_watermark();
            if hw > committed || log.prefix_hash(hw) != self.committed_prefix(p, hw) {
                return fail(
                    "a replica's high watermark covers only committed records",
                    format!("b{id} p{p} HW {hw} (LEO {}), committed {committed}", log.log_end_offset()),
                );
            }
        }
        Ok(())
    }

    /// Not an invariant: a new leader starts from its own, older, high watermark, so what
    /// the current leader shows may go back for a while after an election (Kafka too).
    fn observe_visible(&mut self, p: i32, brokers: &BTreeMap<i32, Broker>, controller: &Controller, stats: &mut Stats) {
        let Some(reg) = controller.partition(p) else { return };
        let Some((epoch, leading)) = brokers.get(&reg.leader).and_then(|b| b.leading(p)) else { return };
        if epoch != reg.leader_epoch {
            return;
        }
        let hw = leading.state.high_watermark();
        let before = self.visible.insert(p, hw).unwrap_or(0);
        stats.visible_hw_regressions += u64::from(hw < before);
    }

    /// An acknowledged record is committed, at its offset.
    fn check_acks(&mut self) -> Result<(), Failure> {
        for (p, record) in std::mem::take(&mut self.new_acks) {
            let committed = self.committed.get(&p).and_then(|c| c.get(record.offset));
            if committed != Some(record) {
                return fail(
                    "an acknowledged record is committed",
                    format!("p{p} acked {record:?}, committed {committed:?}"),
                );
            }
            self.acked.push((p, record));
        }
        Ok(())
    }

    /// After healing: every acknowledged record is in every in-sync replica's log at its
    /// offset, and all running replicas agree below the leader's high watermark.
    pub(crate) fn at_end(&self, brokers: &BTreeMap<i32, Broker>, controller: &Controller) -> Result<(), Failure> {
        for &(p, record) in &self.acked {
            let isr = controller.partition(p).map(|r| r.isr.clone()).unwrap_or_default();
            for member in isr {
                let theirs = brokers[&member].logs[&p].get(record.offset);
                if theirs != Some(record) {
                    return fail(
                        "acknowledged records survive",
                        format!("p{p} acked {record:?}, b{member} has {theirs:?}"),
                    );
                }
            }
        }
        for p in controller.partition_ids() {
            let Some(leader) = controller.partition(p).map(|r| r.leader) else { continue };
            let lead = &brokers[&leader].logs[&p];
            let hw = lead.high_watermark();
            for (&id, broker) in brokers.iter().filter(|(_, b)| b.up) {
                if broker.logs.get(&p).is_some_and(|l| l.prefix_hash(hw) != lead.prefix_hash(hw)) {
                    return fail(
                        "replicas agree below the high watermark",
                        format!("p{p}: b{id} differs from leader b{leader} below {hw}"),
                    );
                }
            }
        }
        Ok(())
    }
}
