//! Contract: a follower's copy of the leader's batches is byte-for-byte the leader's
//! log (offsets, epochs, timestamps kept), and rebuilds the same producer state, epoch
//! cache and aborted-transaction index, so the follower can take over as leader and
//! still detect a retried batch; batches that are damaged or do not continue the log are
//! refused.

mod common;

use common::*;
use gregor_log::{LogConfig, LogError, PartitionLog, TxnMarker};

const NOW_MS: i64 = 10_000;

fn leader_log(root: &std::path::Path) -> PartitionLog {
    let mut log = open(root, LogConfig::default(), 0);
    log.append_as_leader(&mut idempotent(7, 0, 0, 3), 1, NOW_MS).unwrap();
    log.append_as_leader(&mut transactional(9, 0, 0, 2), 1, NOW_MS).unwrap();
    log.append_as_leader(&mut plain(2, 100), 2, NOW_MS).unwrap();
    let abort = TxnMarker { producer_id: 9, producer_epoch: 0, coordinator_epoch: 3, commit: false };
    log.append_marker(&abort, 2, NOW_MS).unwrap();
    log.append_as_leader(&mut idempotent(7, 0, 3, 1), 4, NOW_MS).unwrap();
    let end = log.log_end_offset();
    log.update_high_watermark(end);
    log
}

fn copy(leader: &PartitionLog, follower: &mut PartitionLog) {
    while follower.log_end_offset() < leader.log_end_offset() {
        let plan = leader.read(follower.log_end_offset(), 100, i64::MAX).unwrap();
        follower.append_as_follower(&plan.read_bytes().unwrap(), NOW_MS).unwrap();
    }
}

#[test]
fn given_leader_batches_when_copied_should_rebuild_the_same_log_and_state() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader_log(a.path());
    let mut follower = open(b.path(), LogConfig::default(), 0);
    copy(&leader, &mut follower);
    let all = |log: &PartitionLog| log.read(0, 1 << 20, i64::MAX).unwrap().read_bytes().unwrap();
    assert_eq!(all(&follower), all(&leader));
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
    assert_eq!(follower.producers(), leader.producers());
    assert_eq!(follower.collect_aborted_txns(0, i64::MAX), leader.collect_aborted_txns(0, i64::MAX));
    assert_eq!(follower.end_offset_for_epoch(2), leader.end_offset_for_epoch(2));
    // As the new leader it recognises the producer's retry of its last batch.
    let retry = follower.append_as_leader(&mut idempotent(7, 0, 3, 1), 5, NOW_MS).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.first_offset, leader.log_end_offset() - 1);
}

#[test]
fn given_batches_that_do_not_continue_the_log_should_refuse_them() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader_log(a.path());
    let mut follower = open(b.path(), LogConfig::default(), 0);
    copy(&leader, &mut follower);
    let again = leader.read(0, 100, i64::MAX).unwrap().read_bytes().unwrap();
    assert!(matches!(follower.append_as_follower(&again, NOW_MS), Err(LogError::InvalidRecord { .. })));
    let mut damaged = again.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    follower.truncate_to(0).unwrap();
    assert!(matches!(follower.append_as_follower(&damaged, NOW_MS), Err(LogError::CorruptRecord { .. })));
    assert_eq!(follower.log_end_offset(), 0);
}

#[test]
fn given_a_diverged_tail_when_truncated_should_copy_the_leader_again() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader_log(a.path());
    let mut follower = open(b.path(), LogConfig::default(), 0);
    copy(&leader, &mut follower);
    follower.truncate_to(3).unwrap();
    assert_eq!(follower.log_end_offset(), 3);
    copy(&leader, &mut follower);
    assert_eq!(follower.producers(), leader.producers());
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
}

/// Finding 1 of the replication simulation (crates/sim, seeds 2229 and 159): a leader
/// deposed before it appended keeps its epoch's start at the log end; truncating to the
/// log end must drop it (Kafka's `UnifiedLog.truncateTo`), or the older epoch's records
/// it then fetches are filed under it and OffsetForLeaderEpoch answers an end too early.
#[test]
fn given_a_deposed_leaders_empty_epoch_when_truncated_at_the_end_should_forget_it() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader_log(a.path());
    let mut follower = open(b.path(), LogConfig::default(), 0);
    copy(&leader, &mut follower);
    // Elected in epoch 9, it appended nothing before the next leader took over.
    follower.assign_epoch_start(9).unwrap();
    assert_eq!(follower.latest_epoch(), Some(9));
    let end = follower.log_end_offset();
    follower.truncate_to(end).unwrap();
    assert_eq!(follower.latest_epoch(), Some(4), "the empty epoch 9 is gone");
    let mut more = open(a.path(), LogConfig::default(), 0);
    more.append_as_leader(&mut plain(3, 200), 4, NOW_MS).unwrap();
    copy(&more, &mut follower);
    assert_eq!(follower.end_offset_for_epoch(4), Some((4, end + 3)), "epoch 4's records are filed under 4");
    // An epoch older than every known one ends where the first known one starts.
    assert_eq!(follower.end_offset_for_epoch(0), Some((0, 0)));
}
