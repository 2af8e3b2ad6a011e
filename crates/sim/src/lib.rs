//! Deterministic simulation of Gregor's partition replication (issue 17).
//!
//! N simulated brokers run Kafka's ISR protocol for a few partitions of one topic over a
//! simulated network and clock, with a seeded scheduler and fault injection (message loss
//! and delay, kill -9 and restart, network partitions, SIGSTOP). The decisions are
//! Gregor's real code: `gregor_replication::{LeaderState, truncation::decide}` on the
//! brokers, `gregor_metadata::replication_control::{on_broker_change, alter_partition,
//! elect}` on a real `MetadataImage` at the controller. Only the storage (an in-memory log
//! model) and the transport are simulated. After every step the invariants in `checker`
//! are asserted; a failing run returns the seed, the broken invariant, the last events
//! and the command that replays it. See README.md.
#![forbid(unsafe_code)]

mod broker;
mod checker;
mod config;
mod controller;
mod ctx;
mod nemesis;
mod net;
mod producer;
mod replica_log;
mod rng;
mod trace;
mod world;

use std::fmt;

pub use config::{EpochCache, Faults, SimConfig, Timing};

/// What a run did (summed over seeds by the soak).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub runs: u64,
    pub steps: u64,
    pub heal_steps: u64,
    pub sim_ms: u64,
    pub heal_ms: u64,
    /// Records appended by leaders, and `acks=all` acknowledgements (`LeaderState::ack`
    /// said Done) and how many of those reached the producer.
    pub appended: u64,
    pub acked: u64,
    pub acks_received: u64,
    /// Leader epoch bumps, ISR changes and refused AlterPartitions, as the controller saw.
    pub elections: u64,
    pub isr_shrinks: u64,
    pub isr_expansions: u64,
    pub alter_partition_refused: u64,
    pub fences: u64,
    pub crashes: u64,
    pub pauses: u64,
    pub isolations: u64,
    pub cut_links: u64,
    /// Records cut from followers' logs by truncation.
    pub truncated_records: u64,
    /// Times the high watermark of the leader the controller names went back (after an
    /// election, until the new leader's followers fetch): allowed, counted.
    pub visible_hw_regressions: u64,
    pub dropped_messages: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        let pairs = [
            (&mut self.runs, o.runs),
            (&mut self.steps, o.steps),
            (&mut self.heal_steps, o.heal_steps),
            (&mut self.sim_ms, o.sim_ms),
            (&mut self.heal_ms, o.heal_ms),
            (&mut self.appended, o.appended),
            (&mut self.acked, o.acked),
            (&mut self.acks_received, o.acks_received),
            (&mut self.elections, o.elections),
            (&mut self.isr_shrinks, o.isr_shrinks),
            (&mut self.isr_expansions, o.isr_expansions),
            (&mut self.alter_partition_refused, o.alter_partition_refused),
            (&mut self.fences, o.fences),
            (&mut self.crashes, o.crashes),
            (&mut self.pauses, o.pauses),
            (&mut self.isolations, o.isolations),
            (&mut self.cut_links, o.cut_links),
            (&mut self.truncated_records, o.truncated_records),
            (&mut self.visible_hw_regressions, o.visible_hw_regressions),
            (&mut self.dropped_messages, o.dropped_messages),
        ];
        for (mine, theirs) in pairs {
            *mine += theirs;
        }
    }
}

/// A broken invariant, with what replays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub seed: u64,
    pub step: u64,
    pub time_ms: u64,
    pub invariant: String,
    pub detail: String,
    /// The last events before the violation, oldest first.
    pub trace: Vec<String>,
    /// The command that replays this run exactly.
    pub replay: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: invariant broken at step {} (t={} ms): {}",
            self.seed, self.step, self.time_ms, self.invariant
        )?;
        writeln!(f, "  {}", self.detail)?;
        writeln!(f, "last {} events:", self.trace.len())?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        write!(f, "replay: {}", self.replay)
    }
}

impl std::error::Error for Violation {}

/// Runs one seed: `config.steps` steps with faults, then the healing phase, checking the
/// invariants after every step and the end state once quiet.
///
/// # Panics
/// On a config `SimConfig::validate` refuses.
pub fn run(seed: u64, config: SimConfig) -> Result<Stats, Violation> {
    if let Err(e) = config.validate() {
        panic!("invalid simulation config: {e}");
    }
    let replay = match config.flags() {
        Some(flags) => format!("cargo run -p gregor-sim --release -- --seed {seed} {flags}"),
        None => format!("gregor_sim::run({seed}, {config:?})"),
    };
    let mut world = world::World::new(seed, config);
    let mut step = 0;
    let outcome = drive(&mut world, &mut step);
    outcome.map_err(|failure| Violation {
        seed,
        step,
        time_ms: world.now,
        invariant: failure.invariant.to_owned(),
        detail: failure.detail,
        trace: world.trace.lines(),
        replay,
    })
}

fn drive(world: &mut world::World, step: &mut u64) -> Result<Stats, checker::Failure> {
    while *step < world.cfg.steps && world.step()? {
        *step += 1;
    }
    let (steps, fault_ms) = (*step, world.now);
    world.heal_now()?;
    let deadline = world.now + world.cfg.timing.heal_budget_ms;
    while let Some(why) = world.unquiet() {
        if world.now > deadline || !world.step()? {
            let brokers: String = world.brokers.values().map(|b| format!("\n    {}", b.describe())).collect();
            let detail = format!("{why}{brokers}");
            return Err(checker::Failure { invariant: "the cluster heals (liveness)", detail });
        }
        *step += 1;
    }
    world.checker.at_end(&world.brokers, &world.controller)?;
    let mut stats = std::mem::take(&mut world.stats);
    stats.runs = 1;
    stats.steps = steps;
    stats.heal_steps = *step - steps;
    stats.sim_ms = world.now;
    stats.heal_ms = world.now - fault_ms;
    stats.acked = world.checker.acked.len() as u64;
    stats.dropped_messages = world.net.dropped;
    Ok(stats)
}
