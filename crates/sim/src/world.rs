//! The deterministic scheduler: one queue of timed events (message deliveries, node
//! timers, faults), processed one per step in (time, sequence) order, with the
//! invariants checked after each. All randomness comes from the one seeded `Rng`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::rc::Rc;

use crate::broker::Broker;
use crate::checker::{Checker, Failure};
use crate::controller::Controller;
use crate::ctx::Ctx;
use crate::net::{Envelope, Network, Node};
use crate::producer::Producer;
use crate::rng::Rng;
use crate::trace::Trace;
use crate::{SimConfig, Stats};

#[derive(Debug)]
pub(crate) enum Event {
    Deliver(Envelope),
    /// A node's timer, for one incarnation of it.
    Tick(Node, u32),
    Nemesis,
    Restart(i32),
    Resume(i32),
    Rejoin(i32),
    Mend(i32, i32),
}

#[derive(Debug)]
struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug)]
pub(crate) struct World {
    pub(crate) cfg: Rc<SimConfig>,
    pub(crate) rng: Rng,
    pub(crate) now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    pub(crate) net: Network,
    pub(crate) controller: Controller,
    pub(crate) brokers: BTreeMap<i32, Broker>,
    pub(crate) paused_until: BTreeMap<i32, u64>,
    pub(crate) producers: Vec<Producer>,
    pub(crate) checker: Checker,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    next_value: u64,
    pub(crate) healing: bool,
}

impl World {
    pub(crate) fn new(seed: u64, cfg: SimConfig) -> Self {
        let cfg = Rc::new(cfg);
        let mut ctx = Ctx::new(0, cfg.clone(), Trace::default(), Stats::default());
        let controller = Controller::bootstrap(&cfg, &mut ctx);
        let image = controller.image().clone();
        let mut brokers = BTreeMap::new();
        for b in 1..=cfg.brokers {
            let hosted = controller
                .partition_ids()
                .filter(|p| controller.partition(*p).is_some_and(|r| r.replicas.contains(&b)));
            let mut broker = Broker::new(b, hosted);
            let epoch = image.brokers[&b].epoch;
            broker.boot(epoch, image.clone(), &mut ctx);
            let _ = brokers.insert(b, broker);
        }
        let mut world = Self {
            rng: Rng::new(seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            net: Network::default(),
            controller,
            brokers,
            paused_until: BTreeMap::new(),
            producers: (0..cfg.producers).map(Producer::new).collect(),
            checker: Checker::new(cfg.min_insync_replicas),
            trace: Trace::default(),
            stats: Stats::default(),
            next_value: 0,
            healing: false,
            cfg,
        };
        let _ = world.finish(ctx);
        world.start_timers();
        world
    }

    /// Every node's first timer at a random phase, and the first fault.
    fn start_timers(&mut self) {
        let tick = self.cfg.timing.tick_ms;
        for b in 1..=self.cfg.brokers {
            let at = self.rng.range((1, tick));
            self.schedule(at, Event::Tick(Node::Broker(b), 0));
        }
        for p in 0..self.cfg.producers {
            let at = self.rng.range(self.cfg.timing.produce_every_ms);
            self.schedule(at, Event::Tick(Node::Producer(p), 0));
        }
        self.schedule(self.cfg.timing.heartbeat_ms, Event::Tick(Node::Controller, 0));
        let first = self.rng.range(self.cfg.faults.nemesis_every_ms);
        self.schedule(first, Event::Nemesis);
    }

    pub(crate) fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled { at, seq: self.seq, event });
    }

    fn ctx(&mut self) -> Ctx {
        Ctx::new(self.now, self.cfg.clone(), std::mem::take(&mut self.trace), std::mem::take(&mut self.stats))
    }

    /// Takes back the trace and counters, puts the messages on the wire, and gives the
    /// checker its notes.
    fn finish(&mut self, ctx: Ctx) -> Result<(), Failure> {
        self.trace = ctx.trace;
        self.stats = ctx.stats;
        for envelope in ctx.out {
            if let Some(at) = self.net.send(&envelope, self.now, &mut self.rng, &self.cfg.faults) {
                self.schedule(at, Event::Deliver(envelope));
            }
        }
        self.checker.take(ctx.notes);
        self.checker.after_step(&self.brokers, &self.controller, &mut self.stats)
    }

    /// One event, then the invariants. `Ok(false)` when nothing is left to do.
    pub(crate) fn step(&mut self) -> Result<bool, Failure> {
        let Some(Scheduled { at, event, .. }) = self.queue.pop() else { return Ok(false) };
        self.now = at;
        if let Some(until) = self.paused(&event) {
            // A stopped process handles nothing: its messages and timers wait for it.
            self.schedule(until, event);
            return Ok(true);
        }
        let mut ctx = self.ctx();
        match event {
            Event::Deliver(envelope) => self.deliver(envelope, &mut ctx),
            Event::Tick(node, incarnation) => self.tick(node, incarnation, &mut ctx),
            Event::Nemesis if !self.healing => self.nemesis(&mut ctx),
            Event::Restart(b) => self.restart(b, &mut ctx),
            Event::Resume(b) => {
                if self.paused_until.get(&b).is_some_and(|&u| u <= self.now) {
                    let _ = self.paused_until.remove(&b);
                    ctx.note(|| format!("nemesis: b{b} resumes"));
                }
            }
            Event::Rejoin(b) => self.net.rejoin(b),
            Event::Mend(a, b) => self.net.mend(a, b),
            Event::Nemesis => {}
        }
        self.finish(ctx)?;
        Ok(true)
    }

    fn paused(&self, event: &Event) -> Option<u64> {
        let broker = match event {
            Event::Deliver(Envelope { to: Node::Broker(b), .. }) | Event::Tick(Node::Broker(b), _) => *b,
            _ => return None,
        };
        self.paused_until.get(&broker).copied().filter(|&until| until > self.now)
    }

    fn deliver(&mut self, envelope: Envelope, ctx: &mut Ctx) {
        let Envelope { from, from_incarnation, to, to_incarnation, sent_at, msg } = envelope;
        if !self.net.reachable(from, to) {
            self.net.dropped += 1;
            return;
        }
        match to {
            Node::Broker(b) => {
                let broker = self.brokers.get_mut(&b).expect("a simulated broker");
                let stale = to_incarnation.is_some_and(|i| i != broker.incarnation) || sent_at < broker.started_at;
                if !broker.up || stale {
                    return;
                }
                ctx.note(|| format!("{from:?} -> b{b}: {}", msg.summary()));
                broker.handle((from, from_incarnation), msg, ctx);
            }
            Node::Controller => {
                ctx.note(|| format!("{from:?} -> controller: {}", msg.summary()));
                self.controller.handle((from, from_incarnation), msg, ctx);
            }
            Node::Producer(p) => self.producers[p as usize].handle(msg, ctx),
        }
    }

    fn tick(&mut self, node: Node, incarnation: u32, ctx: &mut Ctx) {
        let next = match node {
            Node::Broker(b) => {
                let broker = self.brokers.get_mut(&b).expect("a simulated broker");
                if !broker.up || broker.incarnation != incarnation {
                    return;
                }
                broker.tick(ctx);
                self.now + self.cfg.timing.tick_ms
            }
            Node::Controller => {
                self.controller.tick(ctx);
                self.now + self.cfg.timing.heartbeat_ms
            }
            Node::Producer(p) => {
                let producer = &mut self.producers[p as usize];
                producer.tick(&self.controller, &mut self.rng, &mut self.next_value, ctx);
                self.now + self.rng.range(self.cfg.timing.produce_every_ms)
            }
        };
        self.schedule(next, Event::Tick(node, incarnation));
    }

    pub(crate) fn restart(&mut self, b: i32, ctx: &mut Ctx) {
        let broker = self.brokers.get_mut(&b).expect("a simulated broker");
        if broker.up {
            return;
        }
        broker.restart(ctx);
        ctx.note(|| format!("nemesis: b{b} restarts (incarnation {})", broker.incarnation));
        let incarnation = broker.incarnation;
        self.schedule(self.now + self.cfg.timing.tick_ms, Event::Tick(Node::Broker(b), incarnation));
    }
}

impl World {
    /// The healing phase begins: one step that ends every fault.
    pub(crate) fn heal_now(&mut self) -> Result<(), Failure> {
        let mut ctx = self.ctx();
        self.heal(&mut ctx);
        self.finish(ctx)
    }
}
