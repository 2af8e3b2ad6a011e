//! Soak runner: `cargo run -p gregor-sim --release -- --seeds 10000 [--from S] [--brokers 3|5]`
//! runs seeds S..S+N on every core and prints one summary line; each failing seed is
//! printed with its trace and the command that replays it (`--seed S`).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use gregor_sim::{run, SimConfig, Stats, Violation};

const USAGE: &str = "usage: gregor-sim [--seeds N] [--from S] [--seed S] [--brokers N] [--rf N] \
[--partitions N] [--min-isr N] [--steps N] [--unclean] [--no-faults] [--legacy-epoch-cache] [--threads N]";

#[derive(Debug)]
struct Args {
    from: u64,
    seeds: u64,
    threads: usize,
    config: SimConfig,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        from: 0,
        seeds: 1_000,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        config: SimConfig::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        let c = &mut args.config;
        match flag.as_str() {
            "--seeds" => args.seeds = number(value()?)?,
            "--from" => args.from = number(value()?)?,
            "--seed" => (args.from, args.seeds) = (number(value()?)?, 1),
            "--threads" => args.threads = number(value()?)?.max(1) as usize,
            "--brokers" => c.brokers = number(value()?)? as i32,
            "--rf" => c.replication_factor = number(value()?)? as i32,
            "--partitions" => c.partitions = number(value()?)? as i32,
            "--min-isr" => c.min_insync_replicas = number(value()?)? as usize,
            "--steps" => c.steps = number(value()?)?,
            "--unclean" => c.unclean_leader_election = true,
            "--no-faults" => c.faults = gregor_sim::Faults::none(),
            "--legacy-epoch-cache" => c.epoch_cache = gregor_sim::EpochCache::Legacy,
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    args.config.validate()?;
    Ok(args)
}

/// Runs the seeds on `threads` threads; returns the summed stats and the failures.
fn soak(args: &Args) -> (Stats, Vec<Violation>) {
    let next = AtomicU64::new(args.from);
    let end = args.from + args.seeds;
    let total = Mutex::new((Stats::default(), Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..args.threads.min(args.seeds as usize).max(1) {
            let _ = scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    return;
                }
                let outcome = run(seed, args.config.clone());
                let mut total = total.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match outcome {
                    Ok(stats) => total.0.add(&stats),
                    Err(v) => total.1.push(v),
                }
            });
        }
    });
    let (stats, mut failures) = total.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    failures.sort_by_key(|v| v.seed);
    (stats, failures)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let (s, failures) = soak(&args);
    let secs = started.elapsed().as_secs_f64();
    for v in failures.iter().take(3) {
        println!("{v}\n");
    }
    if failures.len() > 3 {
        let seeds: Vec<u64> = failures.iter().map(|v| v.seed).collect();
        println!("all failing seeds: {seeds:?}\n");
    }
    println!(
        "gregor-sim: seeds {}..{} brokers {} rf {} min.isr {}: {} passed, {} failed in {secs:.1} s ({:.0} seeds/s); \
         {} steps (+{} healing), {:.0} simulated s, {} appended, {} acked, {} elections, {} ISR shrinks, {} expansions, \
         {} fences, {} crashes, {} pauses, {} isolations, {} cut links, {} records truncated, {} visible-HW regressions",
        args.from,
        args.from + args.seeds,
        args.config.brokers,
        args.config.replication_factor,
        args.config.min_insync_replicas,
        s.runs,
        failures.len(),
        args.seeds as f64 / secs.max(1e-9),
        s.steps,
        s.heal_steps,
        s.sim_ms as f64 / 1000.0,
        s.appended,
        s.acked,
        s.elections,
        s.isr_shrinks,
        s.isr_expansions,
        s.fences,
        s.crashes,
        s.pauses,
        s.isolations,
        s.cut_links,
        s.truncated_records,
        s.visible_hw_regressions,
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
