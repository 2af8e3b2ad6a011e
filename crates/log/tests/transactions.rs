//! Contract: a producer's transactional batches stay above the last stable offset (LSO)
//! until the coordinator's marker ends the transaction; read_committed reads stop at the
//! LSO and report the aborted transactions overlapping what they return; aborted
//! transactions are kept in the marker segment's `.txnindex`, rebuilt after a crash, and
//! their records are dropped by the cleaner. Clients cannot write control batches.

mod common;

use std::fs;

use common::*;
use gregor_log::{AbortedTxn, LogConfig, LogError, PartitionLog, TxnMarker};
use gregor_protocol::records::{decode_records, encode_control_batch};

const NOW_MS: i64 = 10_000;

fn append(log: &mut PartitionLog, mut bytes: Vec<u8>) -> i64 {
    log.append_as_leader(&mut bytes, 0, NOW_MS).unwrap().first_offset
}

fn marker(producer_id: i64, commit: bool) -> TxnMarker {
    TxnMarker { producer_id, producer_epoch: 0, coordinator_epoch: 0, commit }
}

fn end(log: &mut PartitionLog, producer_id: i64, commit: bool) -> i64 {
    let info = log.append_marker(&marker(producer_id, commit), 0, NOW_MS).unwrap();
    let end = log.log_end_offset();
    log.update_high_watermark(end);
    info.first_offset
}

/// pid 7 writes 0-1 and aborts at 4; pid 9 writes 2-3 and commits at 5; plain 6.
fn interleaved(log: &mut PartitionLog) {
    append(log, transactional(7, 0, 0, 2));
    append(log, transactional(9, 0, 0, 2));
    let hw = log.log_end_offset();
    log.update_high_watermark(hw);
    assert_eq!(log.last_stable_offset(), 0);
    assert_eq!(end(log, 7, false), 4);
    assert_eq!(log.last_stable_offset(), 2, "pid 9 is still open");
    assert_eq!(end(log, 9, true), 5);
    append(log, plain(1, 1_000));
    let hw = log.log_end_offset();
    log.update_high_watermark(hw);
}

fn aborted(first_offset: i64, last_offset: i64, last_stable_offset: i64) -> AbortedTxn {
    AbortedTxn { producer_id: 7, first_offset, last_offset, last_stable_offset }
}

#[test]
fn given_open_transactions_when_read_committed_should_stop_at_the_lso_and_report_aborts() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(root.path(), LogConfig::default(), 0);
    append(&mut log, transactional(7, 0, 0, 2));
    log.update_high_watermark(2);
    let (plan, _) = log.read_committed(0, 1 << 20).unwrap();
    assert!(plan.is_empty(), "nothing is stable while the transaction is open");
    assert_eq!(log.producers()[0].current_txn_start_offset, 0);
    end(&mut log, 7, false);
    append(&mut log, transactional(9, 0, 0, 2));
    end(&mut log, 9, true);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    let (plan, aborts) = log.read_committed(0, 1 << 20).unwrap();
    assert_eq!(decode_offsets(&plan.read_bytes().unwrap()).len(), 6, "data and markers, to the end");
    assert_eq!(aborts, vec![aborted(0, 2, 3)]);
    assert!(log.read_committed(3, 1 << 20).unwrap().1.is_empty(), "fetching past the abort");
    assert_eq!(log.producers()[0].current_txn_start_offset, -1);
}

#[test]
fn given_interleaved_transactions_should_record_the_lso_at_each_abort() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(root.path(), LogConfig::default(), 0);
    interleaved(&mut log);
    assert_eq!(log.collect_aborted_txns(0, 7), vec![aborted(0, 4, 2)]);
    assert!(partition_dir(root.path()).join("00000000000000000000.txnindex").exists());
}

#[test]
fn given_crash_after_abort_when_reopened_should_rebuild_the_index_and_open_transactions() {
    let root = tempfile::tempdir().unwrap();
    {
        let mut log = open(root.path(), LogConfig::default(), 0);
        interleaved(&mut log);
        append(&mut log, transactional(11, 0, 0, 3));
        // No close: a crash. The index file is lost as if never written back.
    }
    fs::remove_file(partition_dir(root.path()).join("00000000000000000000.txnindex")).unwrap();
    let log = open(root.path(), LogConfig::default(), 0);
    assert_eq!(log.collect_aborted_txns(0, 7), vec![aborted(0, 4, 2)]);
    assert_eq!(log.first_unstable_offset(), Some(7), "pid 11's transaction is open again");
}

#[test]
fn given_snapshot_with_open_transaction_when_reopened_should_keep_it_open() {
    let root = tempfile::tempdir().unwrap();
    {
        let mut log = open(root.path(), LogConfig::default(), 0);
        append(&mut log, plain(2, 1_000));
        append(&mut log, transactional(7, 0, 0, 2));
        log.close().unwrap();
    }
    let mut log = open(root.path(), LogConfig::default(), 4);
    assert_eq!(log.first_unstable_offset(), Some(2));
    end(&mut log, 7, true);
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn given_stale_marker_epoch_should_be_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(root.path(), LogConfig::default(), 0);
    append(&mut log, transactional(7, 3, 0, 1));
    let stale = TxnMarker { producer_epoch: 2, ..marker(7, true) };
    assert!(matches!(log.append_marker(&stale, 0, NOW_MS), Err(LogError::InvalidProducerEpoch { .. })));
    let plain_write = log.append_as_leader(&mut idempotent(7, 3, 1, 1), 0, NOW_MS);
    assert!(matches!(plain_write, Err(LogError::InvalidTxnState { .. })));
}

#[test]
fn given_control_batch_from_a_client_should_be_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(root.path(), LogConfig::default(), 0);
    let mut bytes = encode_control_batch(7, 0, 0, true, NOW_MS).unwrap().to_vec();
    assert!(matches!(log.append_as_leader(&mut bytes, 0, NOW_MS), Err(LogError::InvalidRecord { .. })));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn given_aborted_records_when_cleaned_should_drop_them_and_keep_committed_values() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig { compact: true, delete: false, file_delete_delay_ms: 0, ..small_segments() };
    let mut log = open(root.path(), config, 0);
    append(&mut log, plain(3, NOW_MS)); // keys k0 k1 k2, committed
    append(&mut log, transactional(7, 0, 0, 2)); // k0 k1, to be aborted
    end(&mut log, 7, false);
    for _ in 0..40 {
        append(&mut log, plain(1, NOW_MS)); // k0 again and again: rolls segments
    }
    let hw = log.log_end_offset();
    log.update_high_watermark(hw);
    log.roll(NOW_MS).unwrap();
    let before = log.read_all_records().unwrap().len();
    log.clean(NOW_MS).unwrap();
    let after = log.read_all_records().unwrap();
    assert!(after.len() < before);
    let k1: Vec<_> = after.iter().filter(|r| r.key.as_deref() == Some(b"k1".as_slice())).collect();
    assert_eq!(k1.len(), 1, "the committed k1 survives, the aborted one is gone");
    assert_eq!(k1[0].offset, 1);
    assert!(after.iter().any(|r| r.control == Some(false)), "the abort marker stays");
    let data = decode_records(log.read(0, 1 << 20, hw).unwrap().read_bytes().unwrap()).unwrap();
    assert!(data.iter().all(|r| !r.transactional));
}

#[test]
fn given_idle_producers_should_forget_them_but_not_open_transactions() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(root.path(), LogConfig::default(), 0);
    append(&mut log, idempotent(3, 0, 0, 2));
    append(&mut log, transactional(7, 0, 0, 1));
    let last = log.producers().iter().map(|p| p.last_timestamp).max().unwrap();
    assert_eq!(log.remove_expired_producers(last + 999, 1000), 0, "not idle long enough yet");
    assert_eq!(log.remove_expired_producers(last + 1000, 1000), 1);
    let left: Vec<i64> = log.producers().iter().map(|p| p.producer_id).collect();
    assert_eq!(left, vec![7], "a producer with an open transaction here is kept");
    end(&mut log, 7, true);
    assert_eq!(log.remove_expired_producers(i64::MAX / 2, 1000), 1);
    assert!(log.producers().is_empty());
    // Forgotten for good: the snapshot written at close has none of them.
    let end = log.log_end_offset();
    log.close().unwrap();
    let log = open(root.path(), LogConfig::default(), end);
    assert!(log.producers().is_empty(), "{:?}", log.producers());
}
