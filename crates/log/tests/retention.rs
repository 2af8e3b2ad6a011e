//! Contract: retention deletes the oldest segments by age or total size, moves the log
//! start offset to the first remaining segment, never leaves the log without an active
//! segment, and keeps already planned reads readable. Also: timestamp lookups and
//! follower truncation.

mod common;

use common::*;
use gregor_log::{LogConfig, LogError, PartitionLog};

const HOUR_MS: i64 = 3_600_000;

fn log_with_segments(
    root: &std::path::Path,
    config: LogConfig,
    batches: i64,
    timestamp: impl Fn(i64) -> i64,
) -> PartitionLog {
    let mut log = open(root, config, 0);
    for i in 0..batches {
        let mut bytes = plain(2, timestamp(i));
        log.append_as_leader(&mut bytes, 0, timestamp(i)).unwrap();
    }
    // The replica manager owns the high watermark; a single replica moves it to the end.
    log.update_high_watermark(log.log_end_offset());
    log
}

#[test]
fn given_segments_older_than_retention_ms_when_retention_runs_should_delete_them_and_move_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_ms: HOUR_MS, file_delete_delay_ms: 0, ..small_segments() };
    let mut log = log_with_segments(dir.path(), config, 40, |i| if i < 20 { 1_000 } else { 10 * HOUR_MS });
    let segments = log.segment_count();
    let planned = log.read(0, 100, i64::MAX).unwrap();
    let deleted = log.delete_retained_segments(10 * HOUR_MS + 1).unwrap();
    assert!(deleted > 0 && deleted < segments);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    assert!(log.log_start_offset() > 0 && log.log_start_offset() <= 40);
    assert!(matches!(log.read(0, 100, i64::MAX), Err(LogError::OffsetOutOfRange { .. })));
    assert_eq!(decode_offsets(&planned.read_bytes().unwrap())[0].0, 0, "a planned read survives deletion");
    assert_eq!(read_all(&log, log.log_start_offset()).last().unwrap().0, 79);
    let files = segment_files(&partition_dir(dir.path()), ".log");
    assert_eq!(files.len(), log.segment_count(), "deleted files are gone with a zero delay");
}

#[test]
fn given_every_segment_expired_when_retention_runs_should_roll_and_keep_an_empty_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_ms: HOUR_MS, ..small_segments() };
    let mut log = log_with_segments(dir.path(), config, 30, |_| 1_000);
    log.delete_retained_segments(5 * HOUR_MS).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.size_bytes()), (60, 60, 0));
    assert!(log.read(60, 100, i64::MAX).unwrap().is_empty());
    let pdir = partition_dir(dir.path());
    assert!(!segment_files(&pdir, ".deleted").is_empty(), "files wait for file.delete.delay.ms");
    log.maybe_flush(5 * HOUR_MS + 60_000).unwrap();
    assert!(segment_files(&pdir, ".deleted").is_empty());
    assert_eq!(log.delete_retained_segments(9 * HOUR_MS).unwrap(), 0, "the empty active segment stays");
    assert_eq!(append(&mut log, plain(1, 2)).first_offset, 60);
}

#[test]
fn given_unreplicated_data_when_retention_runs_should_not_delete_past_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_ms: HOUR_MS, ..small_segments() };
    let mut log = log_with_segments(dir.path(), config, 30, |_| 1_000);
    log.update_high_watermark(0);
    assert_eq!(log.delete_retained_segments(5 * HOUR_MS).unwrap(), 0);
}

#[test]
fn given_retention_bytes_when_retention_runs_should_delete_oldest_segments_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_bytes: 2048, retention_ms: -1, ..small_segments() };
    let mut log = log_with_segments(dir.path(), config, 60, |i| 1_000 + i);
    assert!(log.size_bytes() > 4096);
    log.delete_retained_segments(2_000).unwrap();
    assert!(log.size_bytes() <= 2048 + 1024, "size {}", log.size_bytes());
    assert!(log.size_bytes() >= 2048 - 1024);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    assert_eq!(log.log_end_offset(), 120);
}

#[test]
fn given_timestamps_when_looking_up_should_find_first_record_at_or_after_and_the_max() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with_segments(dir.path(), small_segments(), 30, |i| 1_000 + 10 * i);
    log.append_as_leader(&mut plain(3, 5_000), 2, 0).unwrap(); // offsets 60..62, ts 5000..5002
    log.append_as_leader(&mut plain(2, 1_100), 2, 0).unwrap(); // offsets 63..64, older timestamps
    let found = log.fetch_offset_by_timestamp(1_105).unwrap().unwrap();
    assert_eq!((found.offset, found.timestamp_ms), (22, 1_110));
    let exact = log.fetch_offset_by_timestamp(1_101).unwrap().unwrap();
    assert_eq!((exact.offset, exact.timestamp_ms), (21, 1_101));
    assert_eq!(log.fetch_offset_by_timestamp(0).unwrap().unwrap().offset, 0);
    assert_eq!(log.fetch_offset_by_timestamp(5_001).unwrap().unwrap().offset, 61);
    assert!(log.fetch_offset_by_timestamp(9_999).unwrap().is_none());
    let max = log.max_timestamp_and_offset().unwrap().unwrap();
    assert_eq!((max.timestamp_ms, max.offset, max.leader_epoch), (5_002, 62, Some(2)));
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_segments(), 65);
    assert_eq!(log.max_timestamp_and_offset().unwrap().unwrap().offset, 62);
    assert_eq!(log.fetch_offset_by_timestamp(1_105).unwrap().unwrap().offset, 22);
}

#[test]
fn given_empty_log_when_looking_up_timestamps_should_find_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default(), 0);
    assert!(log.fetch_offset_by_timestamp(0).unwrap().is_none());
    assert!(log.max_timestamp_and_offset().unwrap().is_none());
}

#[test]
fn given_follower_divergence_when_truncating_should_cut_at_a_batch_boundary_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with_segments(dir.path(), small_segments(), 30, |i| 1_000 + i);
    log.append_as_leader(&mut idempotent(7, 0, 0, 2), 5, 0).unwrap(); // offsets 60, 61
    log.update_high_watermark(62);
    log.truncate_to(61).unwrap();
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(log.latest_epoch(), Some(0));
    log.truncate_to(7).unwrap();
    assert_eq!((log.log_end_offset(), log.high_watermark()), (6, 6));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(read_all(&log, 0).len(), 6);
    assert_eq!(append(&mut log, idempotent(7, 0, 0, 2)).first_offset, 6, "producer state was truncated too");
    drop(log);
    let log = open(dir.path(), small_segments(), 0);
    assert_eq!(log.log_end_offset(), 8);
}

#[test]
fn given_size_based_roll_when_segment_ms_passes_should_roll_by_time_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_ms: HOUR_MS, ..LogConfig::default() };
    let mut log = open(dir.path(), config, 0);
    log.append_as_leader(&mut plain(1, 1_000), 0, 1_000).unwrap();
    log.append_as_leader(&mut plain(1, 2_000), 0, 2_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(&mut plain(1, 2 * HOUR_MS), 0, 2 * HOUR_MS).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    assert_eq!(log.recovery_point(), 2, "the old segment was flushed at roll");
}

#[test]
fn given_delete_records_when_log_start_moves_should_reject_older_fetches_and_drop_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with_segments(dir.path(), LogConfig { retention_ms: -1, ..small_segments() }, 30, |i| i);
    log.increment_log_start_offset(45).unwrap();
    assert!(matches!(log.read(44, 10, i64::MAX), Err(LogError::OffsetOutOfRange { .. })));
    assert!(log.read(45, 10, i64::MAX).is_ok());
    assert!(log.delete_retained_segments(0).unwrap() > 0);
    assert!(log.segment_base_offsets()[0] <= 45);
    assert!(log.increment_log_start_offset(100).is_err());
}
