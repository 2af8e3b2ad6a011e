//! The simulation in `cargo test`: fixed seeds, each a few thousand steps of faults then
//! healing, every invariant checked after every step. A failure prints the seed, the
//! broken invariant, the last events and the command that replays it.
//!
//! The log model follows Kafka's epoch-cache rules, which `gregor_log` follows since the
//! findings below were fixed; the regressions replay each finding's seed.

use std::ops::Range;

use gregor_sim::{run, Faults, SimConfig};

fn config(brokers: i32) -> SimConfig {
    SimConfig::with_brokers(brokers)
}

fn all_pass(seeds: Range<u64>, config: &SimConfig) {
    for seed in seeds {
        if let Err(violation) = run(seed, config.clone()) {
            panic!("{violation}");
        }
    }
}

#[test]
fn given_3_brokers_should_keep_every_invariant_for_seeds_0_to_50() {
    all_pass(0..50, &config(3));
}

#[test]
fn given_3_brokers_should_keep_every_invariant_for_seeds_50_to_100() {
    all_pass(50..100, &config(3));
}

#[test]
fn given_5_brokers_should_keep_every_invariant_for_seeds_100_to_150() {
    all_pass(100..150, &config(5));
}

#[test]
fn given_5_brokers_and_rf_5_should_keep_every_invariant_for_seeds_150_to_200() {
    all_pass(150..200, &SimConfig { replication_factor: 5, min_insync_replicas: 3, ..config(5) });
}

#[test]
fn given_the_same_seed_should_replay_the_same_run() {
    let first = run(11, config(3));
    assert_eq!(first, run(11, config(3)));
    assert!(first.is_ok_and(|s| s.acked > 0 && s.elections > 0 && s.crashes > 0));
}

#[test]
fn given_no_faults_should_ack_everything_produced() {
    let stats = run(1, SimConfig { faults: Faults::none(), ..config(3) }).expect("no faults, no violation");
    assert_eq!((stats.elections, stats.truncated_records), (0, 0));
    assert!(stats.acked > 300 && stats.acked == stats.appended, "{stats:?}");
}

/// The checks have teeth: unclean leader election loses committed records, and the
/// simulation says so.
#[test]
fn given_unclean_leader_election_should_catch_lost_committed_records() {
    let unclean = SimConfig { unclean_leader_election: true, ..config(3) };
    let caught = (0..20).filter_map(|seed| run(seed, unclean.clone()).err()).next();
    let violation = caught.expect("unclean election loses data within 20 seeds");
    assert!(violation.replay.contains("--unclean"), "{violation}");
}

/// Finding 1 (README.md): `truncate_to` at the log end kept the epoch start a deposed
/// leader recorded without appending (Kafka's `UnifiedLog.truncateTo` clears it), records
/// of an older epoch fetched after it were filed under it, and OffsetForLeaderEpoch then
/// answered an end too early: followers cut committed records (seed 2229) or looped in
/// truncation and never rejoined the ISR (seed 159). Fixed in `gregor_log`.
#[test]
fn regression_dangling_epoch_start_loses_committed_records() {
    all_pass(2229..2230, &config(3));
    all_pass(159..160, &config(3));
}

/// Finding 2 (README.md): for an epoch older than every epoch it knew, the epoch cache
/// answered `None`, which `truncation::decide` takes for "no epochs at all", and the
/// follower kept its diverging log (Kafka answers the start of the first known epoch).
/// Seed 2911. Fixed in `gregor_log`.
#[test]
fn regression_epoch_below_the_first_known_keeps_a_diverging_log() {
    all_pass(2911..2912, &config(3));
}

/// Finding 3 (README.md): an AlterPartition without an answer in time was forgotten
/// (`isr_change_failed`) although the controller may have applied it; the leader's high
/// watermark then ignored a replica the controller put in the ISR, which a later election
/// picked without the records. Now only INELIGIBLE_REPLICA ends a proposal; a timed-out
/// one is sent again and stays in the maximal ISR until the metadata says (Kafka's
/// `AlterPartitionManager`). Seed 2906.
#[test]
fn regression_timed_out_isr_expansion_is_forgotten() {
    let cfg = SimConfig { partitions: 1, steps: 10_000, ..config(3) };
    all_pass(2906..2907, &cfg);
}
