//! Faults, and the healing phase that ends a run: every fault undone, producers stopped,
//! then the cluster must become quiet (all replicas back in sync) within a budget.

use crate::ctx::Ctx;
use crate::world::{Event, World};

#[derive(Debug, Clone, Copy)]
enum Fault {
    Crash,
    Isolate,
    CutLink,
    Pause,
}

impl World {
    /// Picks one fault by the configured weights, then sleeps until the next.
    pub(crate) fn nemesis(&mut self, ctx: &mut Ctx) {
        let next = self.now + self.rng.range(self.cfg.faults.nemesis_every_ms);
        self.schedule(next, Event::Nemesis);
        let f = &self.cfg.faults;
        let weights = [
            (Fault::Crash, f.crash),
            (Fault::Isolate, f.isolate),
            (Fault::CutLink, f.cut_link),
            (Fault::Pause, f.pause),
        ];
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        if total <= 0.0 {
            return;
        }
        let mut pick = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let fault = weights.iter().find(|(_, w)| {
            pick -= w;
            pick < 0.0
        });
        let lasts = self.rng.range(self.cfg.faults.fault_ms);
        match fault.map(|(fault, _)| *fault).unwrap_or(Fault::Pause) {
            Fault::Crash => self.crash(lasts, ctx),
            Fault::Isolate => self.isolate(lasts, ctx),
            Fault::CutLink => self.cut_link(lasts, ctx),
            Fault::Pause => self.pause(lasts, ctx),
        }
    }

    fn running(&self) -> Vec<i32> {
        self.brokers.values().filter(|b| b.up && !self.paused_until.contains_key(&b.id)).map(|b| b.id).collect()
    }

    fn crash(&mut self, lasts: u64, ctx: &mut Ctx) {
        let up: Vec<i32> = self.brokers.values().filter(|b| b.up).map(|b| b.id).collect();
        let Some(b) = self.rng.pick(&up) else { return };
        self.brokers.get_mut(&b).expect("a simulated broker").crash();
        let _ = self.paused_until.remove(&b);
        ctx.stats.crashes += 1;
        ctx.note(|| format!("nemesis: kill -9 b{b} for {lasts} ms"));
        self.schedule(self.now + lasts, Event::Restart(b));
    }

    fn isolate(&mut self, lasts: u64, ctx: &mut Ctx) {
        let all: Vec<i32> = self.brokers.keys().copied().collect();
        let Some(b) = self.rng.pick(&all) else { return };
        if self.net.isolate(b) {
            ctx.stats.isolations += 1;
            ctx.note(|| format!("nemesis: b{b} cut from everyone for {lasts} ms"));
            self.schedule(self.now + lasts, Event::Rejoin(b));
        }
    }

    /// Two brokers, or a broker and the controller (id 0), stop reaching each other.
    fn cut_link(&mut self, lasts: u64, ctx: &mut Ctx) {
        let all: Vec<i32> = std::iter::once(0).chain(self.brokers.keys().copied()).collect();
        let (Some(a), Some(b)) = (self.rng.pick(&all), self.rng.pick(&all)) else { return };
        if a != b && self.net.cut(a, b) {
            ctx.stats.cut_links += 1;
            let name = |id: i32| if id == 0 { "controller".to_owned() } else { format!("b{id}") };
            ctx.note(|| format!("nemesis: link {} <-> {} cut for {lasts} ms", name(a), name(b)));
            self.schedule(self.now + lasts, Event::Mend(a, b));
        }
    }

    fn pause(&mut self, lasts: u64, ctx: &mut Ctx) {
        let Some(b) = self.rng.pick(&self.running()) else { return };
        let _ = self.paused_until.insert(b, self.now + lasts);
        ctx.stats.pauses += 1;
        ctx.note(|| format!("nemesis: SIGSTOP b{b} for {lasts} ms"));
        self.schedule(self.now + lasts, Event::Resume(b));
    }

    /// Ends every fault: the network heals, dead brokers restart, producers stop sending.
    /// Stopped brokers resume when their pause ends (soon): resuming one early would let
    /// new messages overtake the ones held for it.
    pub(crate) fn heal(&mut self, ctx: &mut Ctx) {
        self.healing = true;
        self.net.heal_all();
        let down: Vec<i32> = self.brokers.values().filter(|b| !b.up).map(|b| b.id).collect();
        for b in down {
            self.restart(b, ctx);
        }
        for p in &mut self.producers {
            p.active = false;
        }
        ctx.note(|| "nemesis: heal everything".to_owned());
    }

    /// Why the cluster is not quiet yet, or `None` once every replica of every partition
    /// is in sync with a leader at the controller's epoch and nothing is in flight.
    pub(crate) fn unquiet(&self) -> Option<String> {
        if !self.net.is_whole() || !self.paused_until.is_empty() || self.producers.iter().any(|p| !p.idle()) {
            return Some("faults or produces still in flight".into());
        }
        let image = self.controller.image();
        for b in self.brokers.values() {
            let registered = image.brokers.get(&b.id).filter(|r| !r.fenced && r.epoch == b.v.broker_epoch);
            if !b.settled() || registered.is_none() {
                return Some(format!("b{} not registered, unfenced and settled", b.id));
            }
            if b.v.image.as_ref().map_or(-1, |i| i.last_offset) != image.last_offset {
                return Some(format!("b{} has not applied the latest metadata", b.id));
            }
        }
        self.controller.partition_ids().find_map(|p| self.partition_unquiet(p))
    }

    fn partition_unquiet(&self, p: i32) -> Option<String> {
        let reg = self.controller.partition(p)?;
        let (mut isr, mut replicas) = (reg.isr.clone(), reg.replicas.clone());
        isr.sort_unstable();
        replicas.sort_unstable();
        if reg.leader < 0 || isr != replicas {
            return Some(format!("p{p}: leader {} ISR {:?} of {:?}", reg.leader, reg.isr, reg.replicas));
        }
        let leader = &self.brokers[&reg.leader];
        if leader.leading(p).map(|(e, _)| e) != Some(reg.leader_epoch) {
            return Some(format!("p{p}: b{} does not lead epoch {} yet", reg.leader, reg.leader_epoch));
        }
        let end = leader.logs[&p].log_end_offset();
        for r in &reg.replicas {
            let log = &self.brokers[r].logs[&p];
            if log.log_end_offset() != end || log.high_watermark() != end {
                return Some(format!(
                    "p{p}: b{r} at LEO {} HW {}, leader end {end}",
                    log.log_end_offset(),
                    log.high_watermark()
                ));
            }
        }
        None
    }
}
