//! Contract: on open, every batch after the recovery point is checked (size, CRC,
//! offsets); the log is cut at the first bad or torn batch and later segments are
//! dropped; damaged or missing indexes are rebuilt; nothing panics on bad files.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;

use common::*;
use gregor_log::LogConfig;

fn log_file(root: &std::path::Path) -> std::path::PathBuf {
    segment_files(&partition_dir(root), ".log").pop().unwrap()
}

#[test]
fn given_torn_tail_when_reopened_should_truncate_to_last_whole_batch_and_accept_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, plain(2, 10));
    let whole = log.size_bytes();
    append(&mut log, plain(3, 20));
    drop(log);
    let path = log_file(dir.path());
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(whole + 20).unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(fs::metadata(&path).unwrap().len(), whole);
    let info = append(&mut log, plain(1, 30));
    assert_eq!(info.first_offset, 2);
    assert_eq!(read_all(&log, 0).len(), 3);
}

#[test]
fn given_garbage_appended_when_reopened_should_cut_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, plain(2, 10));
    let whole = log.size_bytes();
    drop(log);
    let mut file = OpenOptions::new().append(true).open(log_file(dir.path())).unwrap();
    file.write_all(&[0xab; 300]).unwrap();
    let log = open(dir.path(), LogConfig::default(), 0);
    assert_eq!((log.log_end_offset(), log.size_bytes()), (2, whole));
}

#[test]
fn given_crc_corruption_in_the_middle_when_reopened_should_truncate_there_and_drop_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments(), 0);
    let mut sizes = Vec::new();
    for i in 0..40 {
        append(&mut log, plain(1, i));
        sizes.push(log.size_bytes());
    }
    let segments = log.segment_count();
    assert!(segments >= 3);
    drop(log);
    let first = segment_files(&partition_dir(dir.path()), ".log").remove(0);
    let mut bytes = fs::read(&first).unwrap();
    let batch_len = plain(1, 0).len();
    bytes[batch_len * 3 + 70] ^= 0x55; // inside the 4th batch's records
    fs::write(&first, &bytes).unwrap();
    let log = open(dir.path(), small_segments(), 0);
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(segment_files(&partition_dir(dir.path()), ".log").len(), 1);
    assert_eq!(read_all(&log, 0).len(), 3);
}

#[test]
fn given_corruption_before_the_recovery_point_when_reopened_should_trust_flushed_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    append(&mut log, plain(1, 1));
    append(&mut log, plain(1, 2));
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 2);
    drop(log);
    let path = log_file(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[70] ^= 1; // record bytes of the first batch, behind the recovery point
    fs::write(&path, &bytes).unwrap();
    assert_eq!(open(dir.path(), LogConfig::default(), 2).log_end_offset(), 2);
    assert_eq!(open(dir.path(), LogConfig::default(), 0).log_end_offset(), 0);
}

fn build_log_with_index(root: &std::path::Path) -> Vec<(i64, i64)> {
    let mut log = open(root, small_segments(), 0);
    for i in 0..12 {
        append(&mut log, plain(2, 100 + i));
    }
    log.close().unwrap();
    read_all(&log, 0)
}

#[test]
fn given_deleted_index_files_when_reopened_should_rebuild_them() {
    let dir = tempfile::tempdir().unwrap();
    let expected = build_log_with_index(dir.path());
    let pdir = partition_dir(dir.path());
    let sizes: Vec<u64> = segment_files(&pdir, ".index").iter().map(|p| fs::metadata(p).unwrap().len()).collect();
    assert!(sizes.iter().any(|s| *s > 0));
    for path in segment_files(&pdir, ".index").into_iter().chain(segment_files(&pdir, ".timeindex")) {
        fs::remove_file(path).unwrap();
    }
    let log = open(dir.path(), small_segments(), 24);
    assert_eq!(read_all(&log, 0), expected);
    let rebuilt: Vec<u64> = segment_files(&pdir, ".index").iter().map(|p| fs::metadata(p).unwrap().len()).collect();
    assert_eq!(rebuilt, sizes);
}

#[test]
fn given_garbage_index_files_when_reopened_should_rebuild_and_read_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let expected = build_log_with_index(dir.path());
    let pdir = partition_dir(dir.path());
    for (i, path) in segment_files(&pdir, "index").into_iter().enumerate() {
        let junk: Vec<u8> = (0..(37 + i * 8)).map(|b| (b * 131 % 251) as u8).collect();
        fs::write(path, junk).unwrap();
    }
    let log = open(dir.path(), small_segments(), 24);
    assert_eq!(read_all(&log, 0), expected);
    for offset in 0..24 {
        let records = decode_offsets(&log.read(offset, 1, i64::MAX).unwrap().read_bytes().unwrap());
        assert_eq!(records[0].0, offset - offset % 2);
    }
    assert_eq!(log.fetch_offset_by_timestamp(105).unwrap().unwrap().offset, 9);
}

#[test]
fn given_index_pointing_past_the_log_when_reopened_should_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig { index_interval_bytes: 1, ..LogConfig::default() }, 0);
    for i in 0..5 {
        append(&mut log, plain(1, i));
    }
    log.close().unwrap();
    drop(log);
    let path = log_file(dir.path());
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 10).unwrap();
    let log = open(dir.path(), LogConfig::default(), 5);
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(read_all(&log, 0).len(), 4);
}

#[test]
fn given_leftover_transient_files_when_opened_should_remove_them() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = partition_dir(dir.path());
    fs::create_dir_all(&pdir).unwrap();
    for name in [
        "00000000000000000007.log.deleted",
        // A `.log.swap` is a committed clean and is completed (tests/compaction.rs); an
        // index `.swap` without its log is from an uncommitted one.
        "00000000000000000003.index.swap",
        "00000000000000000001.log.cleaned",
        "leader-epoch-checkpoint.tmp",
    ] {
        fs::write(pdir.join(name), b"junk").unwrap();
    }
    let log = open(dir.path(), LogConfig::default(), 0);
    assert_eq!(log.log_end_offset(), 0);
    let names: Vec<String> =
        fs::read_dir(&pdir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".deleted")
            && !n.ends_with(".swap")
            && !n.ends_with(".cleaned")
            && !n.ends_with(".tmp")),
        "{names:?}"
    );
}

#[test]
fn given_epochs_when_reopened_should_keep_the_epoch_cache_within_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default(), 0);
    log.append_as_leader(&mut plain(2, 1), 1, 0).unwrap();
    log.append_as_leader(&mut plain(2, 2), 4, 0).unwrap();
    let size = log.size_bytes();
    log.append_as_leader(&mut plain(2, 3), 6, 0).unwrap();
    drop(log);
    OpenOptions::new().write(true).open(log_file(dir.path())).unwrap().set_len(size + 5).unwrap();
    let log = open(dir.path(), LogConfig::default(), 0);
    assert_eq!(log.latest_epoch(), Some(4));
    assert_eq!(log.epoch_for_offset(1), Some(1));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 2)));
    let text = fs::read_to_string(partition_dir(dir.path()).join("leader-epoch-checkpoint")).unwrap();
    assert_eq!(text, "0\n2\n1 0\n4 2\n");
}

#[test]
fn given_random_garbage_segment_when_opened_should_not_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..30 {
        let dir = tempfile::tempdir().unwrap();
        let pdir = partition_dir(dir.path());
        fs::create_dir_all(&pdir).unwrap();
        let mut bytes = plain(3, 1);
        if round % 2 == 0 {
            let at = rng.gen_range(16..bytes.len()); // magic and everything the CRC covers
            bytes[at] = rng.gen();
        }
        let junk: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
        bytes.extend(junk);
        fs::write(pdir.join("00000000000000000000.log"), &bytes).unwrap();
        let index: Vec<u8> = (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect();
        fs::write(pdir.join("00000000000000000000.index"), &index).unwrap();
        fs::write(pdir.join("00000000000000000000.timeindex"), &index).unwrap();
        let mut log = open(dir.path(), LogConfig::default(), 0);
        let end = log.log_end_offset();
        assert!(end == 0 || end == 3);
        assert_eq!(append(&mut log, plain(1, 9)).first_offset, end);
    }
}
