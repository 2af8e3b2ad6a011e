//! Contract: an idempotent producer's retried batch is answered with its original offsets
//! and not written again; sequence gaps and stale epochs are rejected; this state
//! survives a clean close and a crash (rebuilt from snapshot plus log, or the log alone).

mod common;

use std::fs;

use common::*;
use gregor_log::{LogConfig, LogError};

#[test]
fn given_retried_batch_when_appending_should_return_original_offsets_as_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, plain(1, 1));
    let first = append(&mut log, idempotent(42, 0, 0, 3));
    let size = log.size_bytes();
    let retry = append(&mut log, idempotent(42, 0, 0, 3));
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (first.first_offset, first.last_offset));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (4, size));
    assert_eq!(append(&mut log, idempotent(42, 0, 3, 1)).first_offset, 4);
}

#[test]
fn given_sequence_gap_when_appending_should_reject_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, idempotent(42, 0, 0, 2));
    let result = log.append_as_leader(&mut idempotent(42, 0, 5, 1), 0, 0);
    assert!(
        matches!(
            result,
            Err(LogError::OutOfOrderSequence { producer_id: 42, expected_sequence: 2, first_sequence: 5 })
        ),
        "{result:?}"
    );
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn given_newer_epoch_when_older_epoch_appends_should_fence_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, idempotent(42, 0, 0, 2));
    let bad_start = log.append_as_leader(&mut idempotent(42, 1, 3, 1), 0, 0);
    assert!(matches!(bad_start, Err(LogError::OutOfOrderSequence { expected_sequence: 0, .. })));
    append(&mut log, idempotent(42, 1, 0, 1));
    let zombie = log.append_as_leader(&mut idempotent(42, 0, 2, 1), 0, 0);
    assert!(matches!(zombie, Err(LogError::InvalidProducerEpoch { producer_epoch: 0, current_epoch: 1, .. })));
}

#[test]
fn given_unknown_producer_when_appending_any_sequence_should_accept() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    assert_eq!(append(&mut log, idempotent(9, 3, 17, 2)).first_offset, 0);
    assert_eq!(append(&mut log, idempotent(9, 3, 19, 1)).first_offset, 2);
}

fn assert_state_restored(log: &mut gregor_log::PartitionLog) {
    let retry = log.append_as_leader(&mut idempotent(42, 0, 3, 2), 0, 0).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.first_offset, 4);
    let gap = log.append_as_leader(&mut idempotent(42, 0, 9, 1), 0, 0);
    assert!(matches!(gap, Err(LogError::OutOfOrderSequence { expected_sequence: 5, .. })), "{gap:?}");
    assert!(matches!(
        log.append_as_leader(&mut idempotent(42, -1, 5, 1), 0, 0),
        Err(LogError::InvalidProducerEpoch { .. })
    ));
    assert_eq!(log.append_as_leader(&mut idempotent(42, 0, 5, 1), 0, 0).unwrap().first_offset, 6);
}

fn write_producer_history(root: &std::path::Path) -> gregor_log::PartitionLog {
    let mut log = open(root, LogConfig::default(), 0);
    append(&mut log, idempotent(42, 0, 0, 3));
    append(&mut log, plain(1, 1));
    let _ = log.append_as_leader(&mut idempotent(42, 0, 3, 2), 0, 0).unwrap();
    log
}

#[test]
fn given_clean_close_when_reopened_should_restore_producer_state_from_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = write_producer_history(dir.path());
    log.close().unwrap();
    let recovery_point = log.recovery_point();
    drop(log);
    assert_eq!(segment_files(&partition_dir(dir.path()), ".snapshot").len(), 1);
    let mut log = open(dir.path(), LogConfig::default(), recovery_point);
    assert_state_restored(&mut log);
}

#[test]
fn given_crash_without_close_when_reopened_should_rebuild_producer_state_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_producer_history(dir.path());
    drop(log);
    assert!(segment_files(&partition_dir(dir.path()), ".snapshot").is_empty());
    let mut log = open(dir.path(), LogConfig::default(), 0);
    assert_state_restored(&mut log);
}

#[test]
fn given_old_snapshot_when_reopened_after_crash_should_replay_batches_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, idempotent(42, 0, 0, 3));
    log.flush().unwrap();
    append(&mut log, plain(1, 1));
    let _ = log.append_as_leader(&mut idempotent(42, 0, 3, 2), 0, 0).unwrap();
    drop(log);
    let mut log = open(dir.path(), LogConfig::default(), 3);
    assert_state_restored(&mut log);
}

#[test]
fn given_snapshot_past_a_truncated_log_when_reopened_should_ignore_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, idempotent(42, 0, 0, 3));
    let size = log.size_bytes();
    append(&mut log, idempotent(42, 0, 3, 2));
    log.close().unwrap();
    drop(log);
    let path = segment_files(&partition_dir(dir.path()), ".log").remove(0);
    fs::OpenOptions::new().write(true).open(path).unwrap().set_len(size + 3).unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    assert_eq!(log.log_end_offset(), 3);
    assert!(segment_files(&partition_dir(dir.path()), ".snapshot").is_empty());
    assert_eq!(append(&mut log, idempotent(42, 0, 3, 2)).first_offset, 3, "sequence 3 is next again, not a duplicate");
}
