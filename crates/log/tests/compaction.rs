//! Contract: for `cleanup.policy=compact`, the cleaner keeps exactly the latest record of
//! every key in the cleanable segments (below the active segment, the high watermark and
//! `min.compaction.lag.ms`), each at its original offset; tombstones live until
//! `delete.retention.ms` after the clean that first saw them; it cleans only when the
//! dirty ratio or `max.compaction.lag.ms` asks. Compacted logs refuse keyless records and
//! are not trimmed by time or size. A crash at any step of the segment swap reopens to
//! the old or the new segments, never to a log that lost a latest value. Planned reads,
//! LEO, log start, producer state and the cleaner checkpoint survive a clean.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use common::*;
use gregor_log::{LogConfig, LogError, LogManager, PartitionLog};
use gregor_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use gregor_protocol::TopicPartition;

const NOW_MS: i64 = 20_000;
const DELETE_RETENTION_MS: i64 = 5_000;

type Entry = (i64, String, Option<String>);

fn compact_config() -> LogConfig {
    LogConfig {
        compact: true,
        delete: false,
        delete_retention_ms: DELETE_RETENTION_MS,
        file_delete_delay_ms: 0,
        ..small_segments()
    }
}

/// Record `i` of a batch; `producer` is (id, epoch, base sequence).
fn kv_record(i: usize, timestamp: i64, key: Option<&str>, value: Option<&str>, producer: (i64, i16, i32)) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: producer.0,
        producer_epoch: producer.1,
        timestamp_type: TimestampType::Creation,
        offset: i as i64,
        sequence: producer.2.wrapping_add(i as i32),
        timestamp,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: Default::default(),
    }
}

fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf.to_vec()
}

/// One batch of `(key, value)` records from a plain producer, timestamps from `timestamp`.
fn kv_batch(pairs: &[(String, Option<String>)], timestamp: i64, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = pairs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| kv_record(i, timestamp + i as i64, Some(k), v.as_deref(), (-1, -1, -1)))
        .collect();
    encode(&records, compression)
}

fn one(key: &str, value: &str) -> Vec<u8> {
    kv_batch(&[(key.into(), Some(value.into()))], 1_000, Compression::None)
}

/// Record `i` of the standard history: ten keys; keys 3 and 7 end deleted.
fn version(i: usize) -> (String, Option<String>) {
    let key = format!("k{}", i % 10);
    let tombstone = (i % 10 == 3 || i % 10 == 7) && i >= 180;
    (key, (!tombstone).then(|| format!("v{i}")))
}

/// Writes records 0..200 (record `i` stamped `1_000 + i`) in batches of five, rolls,
/// and sets the high watermark.
fn write_history(log: &mut PartitionLog, compression: Compression) {
    for chunk in (0..200).collect::<Vec<_>>().chunks(5) {
        let pairs: Vec<_> = chunk.iter().map(|&i| version(i)).collect();
        append(log, kv_batch(&pairs, 1_000 + chunk[0] as i64, compression));
    }
    log.roll(10_000).unwrap();
    log.update_high_watermark(log.log_end_offset());
}

/// The records of 0..200 that are the latest of their key, in offset order.
fn latest_of_history(with_tombstones: bool) -> Vec<Entry> {
    let mut latest = BTreeMap::new();
    for i in 0..200 {
        latest.insert(version(i).0, i);
    }
    let mut out: Vec<Entry> = latest.values().map(|&i| (i as i64, version(i).0, version(i).1)).collect();
    out.retain(|e| with_tombstones || e.2.is_some());
    out.sort();
    out
}

fn read_entries(log: &PartitionLog) -> Vec<Entry> {
    let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
    log.read_all_records().unwrap().into_iter().map(|r| (r.offset, text(r.key).unwrap(), text(r.value))).collect()
}

/// What a consumer reading the whole log ends up with: key → value.
fn materialize(entries: &[Entry]) -> BTreeMap<String, String> {
    let mut state = BTreeMap::new();
    for (_, key, value) in entries {
        match value {
            Some(v) => state.insert(key.clone(), v.clone()),
            None => state.remove(key),
        };
    }
    state
}

fn compacted_log(root: &Path, compression: Compression) -> PartitionLog {
    let mut log = open(root, compact_config(), 0);
    write_history(&mut log, compression);
    log
}

#[test]
fn given_many_versions_when_cleaned_should_keep_the_latest_record_per_key_at_its_original_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = compacted_log(dir.path(), Compression::None);
    append(&mut log, one("k0", "tail"));
    log.update_high_watermark(log.log_end_offset());
    let active_base = *log.segment_base_offsets().last().unwrap();
    let active_file = partition_dir(dir.path()).join(format!("{active_base:020}.log"));
    let active_before = fs::read(&active_file).unwrap();
    let (size_before, end_before) = (log.size_bytes(), log.log_end_offset());

    let stats = log.clean(NOW_MS).unwrap().expect("a fully dirty log is cleaned");

    let mut expected = latest_of_history(true);
    expected.push((200, "k0".into(), Some("tail".into())));
    let entries = read_entries(&log);
    assert_eq!(entries, expected);
    assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(fs::read(&active_file).unwrap(), active_before, "the active segment is untouched");
    assert_eq!((log.log_end_offset(), log.log_start_offset()), (end_before, 0));
    assert!(log.size_bytes() < size_before / 4);
    assert_eq!((stats.first_dirty_offset, stats.end_offset, stats.keys_mapped), (0, 200, 10));
    assert_eq!((stats.records_read, stats.records_retained), (200, 10));
    assert_eq!(log.first_dirty_offset(), 200);
    assert!(segment_files(&partition_dir(dir.path()), ".cleaned").is_empty());
    assert!(segment_files(&partition_dir(dir.path()), ".swap").is_empty());
    assert_eq!(log.clean(NOW_MS).unwrap(), None, "nothing dirty is left");
}

#[test]
fn given_cleaned_tombstones_when_delete_retention_passes_should_remove_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = compacted_log(dir.path(), Compression::None);
    log.clean(NOW_MS).unwrap().unwrap();
    assert_eq!(read_entries(&log), latest_of_history(true));
    assert_eq!(log.clean(NOW_MS + DELETE_RETENTION_MS - 1).unwrap(), None, "the horizon has not passed");
    assert_eq!(read_entries(&log), latest_of_history(true));
    assert!(log.clean(NOW_MS + DELETE_RETENTION_MS).unwrap().is_some());
    assert_eq!(read_entries(&log), latest_of_history(false));
    assert_eq!(log.clean(NOW_MS + 10 * DELETE_RETENTION_MS).unwrap(), None, "no tombstone is left to expire");
}

#[test]
fn given_dirty_ratio_below_the_minimum_when_cleaner_runs_should_not_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = compacted_log(dir.path(), Compression::None);
    log.clean(NOW_MS).unwrap().unwrap();
    let clean_bytes = log.size_bytes();
    // A small dirty segment next to the clean one: ratio well under 0.5 ... unless forced.
    append(&mut log, one("k1", "new"));
    log.roll(10_000).unwrap();
    log.update_high_watermark(log.log_end_offset());
    assert!(log.size_bytes() - clean_bytes < clean_bytes);
    assert_eq!(log.clean(NOW_MS).unwrap(), None);
    log.set_config(LogConfig { min_cleanable_dirty_ratio: 0.01, ..compact_config() });
    let stats = log.clean(NOW_MS).unwrap().expect("ratio over 0.01");
    assert_eq!((stats.first_dirty_offset, stats.end_offset), (200, 201));
    let entries = read_entries(&log);
    assert!(!entries.iter().any(|e| e.1 == "k1" && e.0 < 200), "the older k1 went");
    assert_eq!(materialize(&entries)["k1"], "new");
}

#[test]
fn given_max_compaction_lag_when_dirty_data_is_old_should_clean_below_the_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { min_cleanable_dirty_ratio: 1.0, max_compaction_lag_ms: 60_000, ..compact_config() };
    let mut log = open(dir.path(), config, 0);
    write_history(&mut log, Compression::None);
    log.clean(NOW_MS).unwrap().unwrap();
    append(&mut log, one("k1", "new"));
    log.roll(10_000).unwrap();
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.clean(NOW_MS).unwrap(), None, "the ratio is below 1.0 and the data is young");
    assert!(log.clean(1_000 + 60_000).unwrap().is_some(), "the dirty batch is older than the max lag");
}

#[test]
fn given_min_compaction_lag_when_segments_are_newer_should_leave_them_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { min_compaction_lag_ms: 10_000, ..compact_config() };
    let mut log = open(dir.path(), config, 0);
    write_history(&mut log, Compression::None);
    // Record timestamps are 1_000..1_200: all newer than now - lag until now passes 11_200.
    assert_eq!(log.clean(5_000).unwrap(), None);
    let stats = log.clean(1_100 + 10_000).unwrap().expect("the older segments are cleanable");
    assert!(stats.end_offset > 0 && stats.end_offset < 200, "{stats:?}");
    let stats = log.clean(1_300 + 10_000).unwrap().expect("now everything is");
    assert_eq!(stats.end_offset, 200);
    assert_eq!(read_entries(&log), latest_of_history(true));
}

#[test]
fn given_unreplicated_segments_when_cleaned_should_stop_at_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = compacted_log(dir.path(), Compression::None);
    log.update_high_watermark(100);
    let stats = log.clean(NOW_MS).unwrap().unwrap();
    assert!(stats.end_offset <= 100, "{stats:?}");
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(materialize(&read_entries(&log)), materialize(&latest_of_history(true)));
}

#[test]
fn given_keyless_record_when_appended_should_be_refused_on_compacted_and_accepted_on_delete_logs() {
    let dir = tempfile::tempdir().unwrap();
    let records = [kv_record(0, 1, Some("a"), Some("1"), (-1, -1, -1)), kv_record(1, 1, None, Some("2"), (-1, -1, -1))];
    let keyless = encode(&records, Compression::Gzip);
    let mut log = open(dir.path(), compact_config(), 0);
    let mut bytes = keyless.clone();
    let refused = log.append_as_leader(&mut bytes, 0, 10_000);
    assert!(
        matches!(&refused, Err(LogError::RecordsRejected { batch_indexes, .. }) if batch_indexes == &[1]),
        "{refused:?}"
    );
    assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0), "nothing was written");
    drop(log);
    let other = tempfile::tempdir().unwrap();
    let mut log = open(other.path(), LogConfig::default(), 0);
    assert_eq!(append(&mut log, keyless).last_offset, 1);
}

#[test]
fn given_compact_only_log_when_retention_runs_should_not_delete_by_time_or_size() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_ms: 1, retention_bytes: 1, ..compact_config() };
    let mut log = open(dir.path(), config.clone(), 0);
    write_history(&mut log, Compression::None);
    let segments = log.segment_count();
    assert_eq!(log.delete_retained_segments(1_000_000).unwrap(), 0);
    assert_eq!(log.segment_count(), segments);
    log.set_config(LogConfig { delete: true, ..config });
    assert!(log.delete_retained_segments(1_000_000).unwrap() > 0, "compact,delete still expires segments");
}

#[test]
fn given_compressed_batches_when_cleaned_should_keep_the_latest_records() {
    for compression in [Compression::Gzip, Compression::Lz4] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = compacted_log(dir.path(), compression);
        log.clean(NOW_MS).unwrap().unwrap();
        assert_eq!(read_entries(&log), latest_of_history(true), "{compression:?}");
        let reopened = open(dir.path(), compact_config(), 0);
        assert_eq!(read_entries(&reopened), latest_of_history(true), "{compression:?} after reopen");
    }
}

#[test]
fn given_read_planned_before_a_clean_when_read_after_should_return_the_old_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = compacted_log(dir.path(), Compression::None);
    let planned = log.read(0, 1 << 20, i64::MAX).unwrap();
    log.clean(NOW_MS).unwrap().unwrap();
    let old = decode_offsets(&planned.read_bytes().unwrap());
    assert_eq!(old.first().map(|r| r.0), Some(0), "offset 0 was superseded but the plan still reads it");
    assert!(old.len() > 5);
}

#[test]
fn given_cleaned_log_when_reopened_should_keep_end_start_and_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(), 0);
    let idempotent = encode(&[kv_record(0, 1_000, Some("k1"), Some("p"), (42, 0, 0))], Compression::None);
    append(&mut log, idempotent.clone());
    log.roll(10_000).unwrap();
    write_history(&mut log, Compression::None);
    log.clean(NOW_MS).unwrap().unwrap();
    let (end, start) = (log.log_end_offset(), log.log_start_offset());
    log.close().unwrap();
    drop(log);
    // Without snapshots, producer state is rebuilt from the cleaned batches alone.
    for snapshot in segment_files(&partition_dir(dir.path()), ".snapshot") {
        fs::remove_file(snapshot).unwrap();
    }
    let mut log = open(dir.path(), compact_config(), 0);
    assert_eq!((log.log_end_offset(), log.log_start_offset()), (end, start));
    let mut retry = idempotent;
    let info = log.append_as_leader(&mut retry, 0, 10_000).unwrap();
    assert!(info.duplicate, "the producer's last batch survived compaction (empty)");
    assert_eq!(info.first_offset, 0);
    log.update_high_watermark(log.log_end_offset());
    assert!(!read_entries(&log).iter().any(|e| e.0 == 0), "its superseded record is gone");
}

/// The three files of every cleaned segment, copied from `from` into `to` under `extra`.
fn copy_segments(from: &Path, to: &Path, bases: &[i64], extra: &str) {
    for base in bases {
        for suffix in [".log", ".index", ".timeindex"] {
            let name = format!("{base:020}{suffix}");
            fs::copy(from.join(&name), to.join(format!("{name}{extra}"))).unwrap();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A log before and after a clean, in two directories, and the bases it rewrote.
struct CrashFixture {
    before: tempfile::TempDir,
    after: tempfile::TempDir,
    bases: Vec<i64>,
}

fn crash_fixture() -> CrashFixture {
    let before = tempfile::tempdir().unwrap();
    let after = tempfile::tempdir().unwrap();
    let mut log = compacted_log(after.path(), Compression::None);
    log.flush().unwrap();
    copy_dir(&partition_dir(after.path()), &partition_dir(before.path()));
    let bases: Vec<i64> = log.segment_base_offsets().into_iter().filter(|b| *b < 200).collect();
    log.clean(NOW_MS).unwrap().unwrap();
    log.close().unwrap();
    CrashFixture { before, after, bases }
}

fn reopen_entries(root: &Path) -> Vec<Entry> {
    let log = open(root, compact_config(), 0);
    let names: Vec<String> = fs::read_dir(partition_dir(root))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted"))
        .collect();
    assert!(names.is_empty(), "transient files left: {names:?}");
    assert_eq!(log.log_end_offset(), 200);
    read_entries(&log)
}

fn all_history() -> Vec<Entry> {
    (0..200).map(|i| (i as i64, version(i).0, version(i).1)).collect()
}

#[test]
fn given_crash_with_cleaned_files_left_when_reopened_should_hold_the_old_contents() {
    let f = crash_fixture();
    copy_segments(&partition_dir(f.after.path()), &partition_dir(f.before.path()), &f.bases, ".cleaned");
    assert_eq!(reopen_entries(f.before.path()), all_history());
}

#[test]
fn given_crash_with_swap_files_and_old_segments_when_reopened_should_finish_the_swap() {
    let f = crash_fixture();
    copy_segments(&partition_dir(f.after.path()), &partition_dir(f.before.path()), &f.bases, ".swap");
    assert_eq!(reopen_entries(f.before.path()), latest_of_history(true));
}

#[test]
fn given_crash_with_swap_files_and_old_segments_deleted_when_reopened_should_finish_the_swap() {
    let f = crash_fixture();
    let pdir = partition_dir(f.before.path());
    for base in &f.bases {
        for suffix in [".log", ".index", ".timeindex"] {
            let name = pdir.join(format!("{base:020}{suffix}"));
            fs::rename(&name, format!("{}.deleted", name.display())).unwrap();
        }
    }
    copy_segments(&partition_dir(f.after.path()), &pdir, &f.bases, ".swap");
    assert_eq!(reopen_entries(f.before.path()), latest_of_history(true));
}

#[test]
fn given_crash_after_some_segments_were_committed_when_reopened_should_keep_every_latest_value() {
    let f = crash_fixture();
    let pdir = partition_dir(f.before.path());
    let (committed, rest) = f.bases.split_at(f.bases.len() / 2);
    copy_segments(&partition_dir(f.after.path()), &pdir, committed, ".swap");
    copy_segments(&partition_dir(f.after.path()), &pdir, &rest[..1], ".cleaned");
    let entries = reopen_entries(f.before.path());
    assert_eq!(materialize(&entries), materialize(&all_history()));
    assert!(entries.len() < 200 && entries.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn given_compacted_partition_when_log_manager_cleans_and_reopens_should_round_trip_the_checkpoint_and_horizons() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("compacted", 0);
    let config = |_: &TopicPartition| compact_config();
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    let log = manager.get_or_create(&tp, compact_config(), "id", 0).unwrap();
    write_history(&mut log.lock().unwrap(), Compression::None);
    let plain_tp = TopicPartition::new("plain", 0);
    manager.get_or_create(&plain_tp, LogConfig::default(), "id2", 0).unwrap();
    assert_eq!(manager.run_cleaner(NOW_MS), 1);
    let text = fs::read_to_string(dir.path().join("cleaner-offset-checkpoint")).unwrap();
    assert_eq!(text, "0\n1\ncompacted 0 200\n");
    assert_eq!(manager.run_cleaner(NOW_MS), 0);
    manager.shutdown().unwrap();
    drop((log, manager));
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    let log = manager.get(&tp).unwrap();
    log.lock().unwrap().update_high_watermark(200);
    assert_eq!(log.lock().unwrap().first_dirty_offset(), 200);
    assert_eq!(read_entries(&log.lock().unwrap()), latest_of_history(true));
    assert_eq!(manager.run_cleaner(NOW_MS), 0, "the checkpoint says everything is clean");
    // After a restart the tombstones' horizons are found again on disk.
    assert_eq!(manager.run_cleaner(NOW_MS + DELETE_RETENTION_MS + 1), 1);
    assert_eq!(read_entries(&log.lock().unwrap()), latest_of_history(false));
}
