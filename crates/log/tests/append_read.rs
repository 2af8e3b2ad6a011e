//! Contract: appends assign consecutive offsets in place and store batches whole; reads
//! return whole batches from the one holding the fetch offset, at least one batch, never
//! past the given bound, and reject offsets outside the log.

mod common;

use common::*;
use gregor_log::{LogConfig, LogError, TimestampType};
use gregor_protocol::record_batch::RecordBatchHeader;

#[test]
fn given_empty_log_when_appending_batches_should_assign_offsets_and_read_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    let first = append(&mut log, plain(3, 100));
    let second = append(&mut log, plain(2, 200));
    assert_eq!((first.first_offset, first.last_offset, first.record_count), (0, 2, 3));
    assert_eq!((second.first_offset, second.last_offset), (3, 4));
    assert_eq!(first.log_append_time_ms, -1);
    assert!(!second.duplicate);
    assert_eq!(log.log_end_offset(), 5);
    let plan = log.read(0, 1 << 20, i64::MAX).unwrap();
    let bytes = plan.read_bytes().unwrap();
    assert_eq!(decode_offsets(&bytes), vec![(0, 100), (1, 101), (2, 102), (3, 200), (4, 201)]);
    let header = RecordBatchHeader::parse(&bytes).unwrap();
    assert!(header.is_crc_valid());
    assert_eq!(header.partition_leader_epoch(), 0);
}

#[test]
fn given_fetch_offset_inside_a_batch_when_reading_should_return_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, plain(3, 100));
    append(&mut log, plain(3, 200));
    let plan = log.read(4, 1 << 20, i64::MAX).unwrap();
    assert_eq!(plan.first_offset, 3);
    let offsets: Vec<i64> = decode_offsets(&plan.read_bytes().unwrap()).into_iter().map(|(o, _)| o).collect();
    assert_eq!(offsets, vec![3, 4, 5]);
}

#[test]
fn given_max_bytes_smaller_than_first_batch_when_reading_should_still_return_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    let one = plain(5, 100);
    let size = one.len();
    append(&mut log, one);
    append(&mut log, plain(5, 200));
    let plan = log.read(0, 10, i64::MAX).unwrap();
    assert_eq!(plan.length, size);
    let plan = log.read(0, size * 2 - 1, i64::MAX).unwrap();
    assert_eq!(plan.length, size, "a second batch that does not fit is left out");
    assert_eq!(log.read(0, size * 2, i64::MAX).unwrap().length, size * 2);
}

#[test]
fn given_high_watermark_when_reading_should_not_return_batches_at_or_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, plain(2, 100));
    append(&mut log, plain(2, 200));
    log.update_high_watermark(2);
    let plan = log.read(0, 1 << 20, log.high_watermark()).unwrap();
    assert_eq!(decode_offsets(&plan.read_bytes().unwrap()).len(), 2);
    assert!(log.read(2, 1 << 20, 2).unwrap().is_empty());
    log.update_high_watermark(100);
    assert_eq!(log.high_watermark(), 4, "clamped to the log end offset");
}

#[test]
fn given_offsets_outside_the_log_when_reading_should_report_out_of_range_or_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, plain(2, 100));
    assert!(log.read(2, 100, i64::MAX).unwrap().is_empty());
    assert!(log.read(2, 100, i64::MAX).unwrap().read_bytes().unwrap().is_empty());
    match log.read(3, 100, i64::MAX) {
        Err(LogError::OffsetOutOfRange { offset: 3, log_start_offset: 0, log_end_offset: 2 }) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(log.read(-1, 100, i64::MAX), Err(LogError::OffsetOutOfRange { .. })));
}

#[test]
fn given_small_segment_bytes_when_appending_should_roll_and_find_offsets_in_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments(), 0);
    for i in 0..60 {
        append(&mut log, plain(2, 1000 + i));
    }
    assert!(log.segment_count() > 3, "rolled into {} segments", log.segment_count());
    assert_eq!(segment_files(&partition_dir(dir.path()), ".log").len(), log.segment_count());
    for offset in 0..120 {
        let plan = log.read(offset, 1, i64::MAX).unwrap();
        let records = decode_offsets(&plan.read_bytes().unwrap());
        assert_eq!(records[0].0, offset - offset % 2, "fetch at {offset}");
    }
    let everything = read_all(&log, 0);
    assert_eq!(everything.iter().map(|r| r.0).collect::<Vec<_>>(), (0..120).collect::<Vec<_>>());
    let sizes: u64 =
        segment_files(&partition_dir(dir.path()), ".log").iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert_eq!(log.size_bytes(), sizes);
    let indexes = segment_files(&partition_dir(dir.path()), ".index");
    assert!(std::fs::metadata(&indexes[0]).unwrap().len() > 0, "sparse entries were written");
}

#[test]
fn given_log_append_time_topic_when_appending_should_stamp_broker_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { message_timestamp_type: TimestampType::LogAppendTime, ..LogConfig::default() };
    let mut log = open(dir.path(), config, 0);
    let mut bytes = plain(2, 5);
    let info = log.append_as_leader(&mut bytes, 3, 77_000).unwrap();
    assert_eq!(info.log_append_time_ms, 77_000);
    let stored = log.read(0, 1000, i64::MAX).unwrap().read_bytes().unwrap();
    let header = RecordBatchHeader::parse(&stored).unwrap();
    assert!(header.is_log_append_time() && header.is_crc_valid());
    assert_eq!(header.max_timestamp(), 77_000);
    assert_eq!(log.latest_epoch(), Some(3));
}

#[test]
fn given_bad_request_bytes_when_appending_should_reject_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig { max_message_bytes: 200, ..LogConfig::default() }, 0);
    let mut torn = plain(1, 1);
    torn.extend_from_slice(&plain(1, 1)[..30]);
    assert!(matches!(log.append_as_leader(&mut torn, 0, 0), Err(LogError::CorruptRecord { .. })));
    let mut flipped = plain(1, 1);
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    assert!(matches!(log.append_as_leader(&mut flipped, 0, 0), Err(LogError::CorruptRecord { .. })));
    let mut big = batch(Spec { value_len: 500, ..Spec::default() });
    assert!(matches!(log.append_as_leader(&mut big, 0, 0), Err(LogError::RecordBatchTooLarge { .. })));
    assert!(matches!(log.append_as_leader(&mut [], 0, 0), Err(LogError::InvalidRecord { .. })));
    let mut junk = vec![0xffu8; 100];
    assert!(log.append_as_leader(&mut junk, 0, 0).is_err());
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn given_several_batches_in_one_request_when_appending_should_write_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    let mut bytes = plain(2, 10);
    bytes.extend(plain(3, 20));
    let info = log.append_as_leader(&mut bytes, 1, 0).unwrap();
    assert_eq!((info.first_offset, info.last_offset, info.record_count), (0, 4, 5));
    assert_eq!(read_all(&log, 0).len(), 5);
}
