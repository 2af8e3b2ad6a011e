//! Target `log_recovery`: the input is a small program. Its first part builds a real
//! partition directory through the public log API (plain, keyed, compressed, idempotent
//! and transactional batches, commit and abort markers, leader-epoch changes, rolls,
//! flushes, then a clean close or a "crash"); its second part damages the files
//! (`.log`, `.index`, `.timeindex`, `.txnindex`, `.snapshot`, `leader-epoch-checkpoint`):
//! truncation, bit flips, overwrites, appended garbage, deleted files, and CRCs made valid
//! again over damaged batches; its last bytes pick
//! the recovery point and log start offset the broker would read from its checkpoints.
//! Then `PartitionLog::open` recovers the directory.
//!
//! Invariants checked, whatever the damage: open and every query return instead of
//! panicking; the offsets are ordered (start <= recovery point <= end, LSO <= end); a plain
//! append after recovery succeeds at the log end offset. When the recovery point is 0
//! (everything re-validated, as after an unclean shutdown with nothing flushed), reading
//! from the log start to the end gives whole CRC-valid batches in offset order, each
//! ending below the log end offset; the appended batch reads back byte for byte; and
//! opening the recovered log again finds the same offsets.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use gregor_log::{LogConfig, PartitionLog, TimestampType, TxnMarker};
use gregor_protocol::record_batch::BatchIter;
use gregor_protocol::TopicPartition;

use crate::input::Input;
use crate::scratch::{producer_batch, scratch_dir, Writer, CODECS, NOW_MS};

/// Recovers a damaged partition directory; panics only on a broken invariant.
pub fn log_recovery(data: &[u8]) {
    let mut input = Input::new(data);
    let scratch = scratch_dir();
    let dir = scratch.path().join("fuzz-0");
    let config = log_config(&mut input);
    let flushed = build(&dir, &config, &mut input);
    let resealed = damage(&dir, &mut input);
    keep_for_triage(&dir);
    let recovery_point = match input.below(4) {
        0 => 0,
        1 => flushed.recovery_point,
        2 => flushed.log_end_offset,
        _ => input.i64(),
    };
    let log_start = match input.below(3) {
        0 => 0,
        1 => i64::from(input.u8()),
        _ => input.i64(),
    };
    // Everything re-validated, and no batch damaged behind a valid CRC.
    let full = recovery_point == 0 && log_start == 0 && !resealed;
    let Ok(mut log) = open(&dir, &config, recovery_point, log_start) else { return };
    check_offsets(&log);
    let read_to = read_all(&log, full);
    query_all(&log, full);
    append_after_recovery(&mut log, full, read_to);
    if full {
        reopen_unchanged(log, &dir, &config);
    }
}

/// With `GREGOR_FUZZ_KEEP_DIR=<path>`, copies the damaged directory there before recovery
/// touches it, for `gregor dump-log` (see docs/fuzzing.md).
fn keep_for_triage(dir: &Path) {
    let Some(to) = std::env::var_os("GREGOR_FUZZ_KEEP_DIR").map(PathBuf::from) else { return };
    let _ = fs::create_dir_all(&to);
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = fs::copy(entry.path(), to.join(entry.file_name()));
    }
}

fn open(
    dir: &Path,
    config: &LogConfig,
    recovery_point: i64,
    log_start: i64,
) -> Result<PartitionLog, gregor_log::LogError> {
    let tp = TopicPartition::new("fuzz", 0);
    PartitionLog::open_with_log_start_offset(dir.to_path_buf(), tp, config.clone(), recovery_point, log_start, NOW_MS)
}

/// Small segments and dense indexes, so a few batches already make several of each.
fn log_config(input: &mut Input<'_>) -> LogConfig {
    LogConfig {
        segment_bytes: input.pick(&[400, 1_024, 4_096, 1 << 20]),
        index_interval_bytes: input.pick(&[0, 64, 256, 4_096]),
        segment_index_bytes: input.pick(&[24, 96, 10_485_760]),
        message_timestamp_type: if input.u8() == 0xff {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        ..LogConfig::default()
    }
}

/// What the log said before it was closed or abandoned.
#[derive(Debug, Default)]
struct Flushed {
    recovery_point: i64,
    log_end_offset: i64,
}

/// Per-producer state of the build phase: next sequence, whether a transaction is open.
#[derive(Debug, Default)]
struct Producers {
    next_sequence: [i32; 4],
}

/// Writes a valid log with the operations the input chooses.
fn build(dir: &Path, config: &LogConfig, input: &mut Input<'_>) -> Flushed {
    let Ok(mut log) = open(dir, config, 0, 0) else { return Flushed::default() };
    let mut producers = Producers::default();
    let mut epoch = 0;
    for step in 0..1 + input.below(24) {
        let now = NOW_MS + step as i64;
        match input.below(8) {
            0..=2 => {
                let batch = &mut producer_batch(
                    Writer::PLAIN,
                    input.pick(&CODECS),
                    1 + input.below(4),
                    input.bool(),
                    input.below(40),
                );
                let _ = log.append_as_leader(batch, epoch, now);
            }
            3 => append_producer(&mut log, &mut producers, input, false, (epoch, now)),
            4 => append_producer(&mut log, &mut producers, input, true, (epoch, now)),
            5 => {
                let producer_id = 2 + input.below(2) as i64;
                let marker = TxnMarker { producer_id, producer_epoch: 0, coordinator_epoch: 0, commit: input.bool() };
                let _ = log.append_marker(&marker, epoch, now);
            }
            6 => epoch += 1,
            _ => {
                let _ = if input.bool() { log.roll(now) } else { log.flush() };
            }
        }
    }
    let flushed = Flushed { recovery_point: log.recovery_point(), log_end_offset: log.log_end_offset() };
    if input.bool() {
        let _ = log.close();
    }
    flushed
}

/// An idempotent (producers 0 and 1) or transactional (2 and 3) batch in sequence.
fn append_producer(
    log: &mut PartitionLog,
    producers: &mut Producers,
    input: &mut Input<'_>,
    txn: bool,
    (epoch, now): (i32, i64),
) {
    let slot = if txn { 2 } else { 0 } + input.below(2);
    let count = 1 + input.below(4);
    let writer = Writer {
        producer_id: slot as i64,
        producer_epoch: 0,
        base_sequence: producers.next_sequence[slot],
        transactional: txn,
    };
    let batch = &mut producer_batch(writer, input.pick(&CODECS), count, true, input.below(20));
    if log.append_as_leader(batch, epoch, now).is_ok() {
        producers.next_sequence[slot] += count as i32;
    }
}

/// Damages the files of the directory as the input says; returns whether it made the
/// CRCs of damaged batches valid again.
fn damage(dir: &Path, input: &mut Input<'_>) -> bool {
    let mut resealed = false;
    for _ in 0..input.below(6) {
        let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => break,
        };
        if files.is_empty() {
            break;
        }
        files.sort();
        let path = input.pick(&files);
        resealed |= damage_file(&path, input).unwrap_or(false);
    }
    resealed
}

/// One damage to one file; `Ok(true)` when it recomputed CRCs.
fn damage_file(path: &Path, input: &mut Input<'_>) -> std::io::Result<bool> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len() as usize;
    let at = input.below(len + 1) as u64;
    match input.below(7) {
        0 => file.set_len(at)?,
        1 => {
            let mut byte = [0u8];
            file.read_at(&mut byte, at)?;
            file.write_all_at(&[byte[0] ^ (input.u8() | 1)], at)?;
        }
        2 => file.write_all_at(input.bytes(8), at)?,
        3 => file.write_all_at(input.bytes(64), len as u64)?,
        4 => fs::remove_file(path)?,
        // Length and count fields are i32s: the values that trip size arithmetic.
        5 => file.write_all_at(&input.pick(&[0, -1, 1, 12, 61, i32::MAX, i32::MIN]).to_be_bytes(), at)?,
        _ => {
            reseal(&file, len)?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Recomputes the CRC of every batch in a `.log`, so damage done before looks like a
/// well-formed batch with odd headers (counts, producer ids, markers) to recovery.
fn reseal(file: &fs::File, len: usize) -> std::io::Result<()> {
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0)?;
    let mut fixed = bytes.clone();
    for (position, view) in BatchIter::new(&bytes) {
        fixed[position + 17..position + 21].copy_from_slice(&view.compute_crc().to_be_bytes());
    }
    file.write_all_at(&fixed, 0)
}

fn check_offsets(log: &PartitionLog) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    assert!(start <= end, "log start {start} above log end {end}");
    assert!(
        (start..=end).contains(&log.recovery_point()),
        "recovery point {} outside [{start}, {end}]",
        log.recovery_point()
    );
    assert_eq!(log.high_watermark(), end);
    assert!(log.last_stable_offset() <= end);
}

/// Fetches from the log start towards the log end as a consumer would; returns the
/// offset where the data ran out (the log end, or the start of a gap that reaches it:
/// a segment whose data was lost while a later, empty one keeps the end offset up).
fn read_all(log: &PartitionLog, full: bool) -> i64 {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < end {
        let plan = match log.read(offset, 4_096, i64::MAX) {
            Ok(plan) => plan,
            Err(e) => {
                assert!(!full, "read at {offset} (log end {end}): {e}");
                return offset;
            }
        };
        let Ok(bytes) = plan.read_bytes() else { return offset };
        let Some(last) = check_fetched(&bytes, offset, end, full) else { return offset };
        offset = last + 1;
    }
    offset
}

/// Checks fetched bytes; returns the last offset they hold, `None` to stop reading.
fn check_fetched(bytes: &[u8], offset: i64, end: i64, full: bool) -> Option<i64> {
    let mut batches = BatchIter::new(bytes);
    let mut last: Option<i64> = None;
    for (_, batch) in batches.by_ref() {
        if full {
            assert!(batch.is_crc_valid(), "recovered batch at {} has a bad CRC", batch.base_offset());
            assert!(last.is_none_or(|l| batch.base_offset() > l), "batches out of order");
            assert!(
                batch.last_offset() >= offset && batch.last_offset() < end,
                "batch {}..={} for fetch {offset}, log end {end}",
                batch.base_offset(),
                batch.last_offset()
            );
        }
        last = Some(batch.last_offset());
    }
    assert!(!full || batches.remainder().is_empty(), "a fetch at {offset} ends in a partial batch");
    // A damaged but trusted segment may hold anything: stop rather than loop.
    last.filter(|&l| l >= offset && l < end)
}

/// Every read-only query the broker runs against a partition.
fn query_all(log: &PartitionLog, full: bool) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let _ = log.read_committed(start, 4_096);
    let _ = log.collect_aborted_txns(start, end);
    let _ = (log.producers(), log.first_unstable_offset(), log.leader_epochs(), log.size_bytes());
    // Around each cached epoch, not every number up to the latest: a damaged checkpoint
    // may claim epoch 2^31 - 1.
    for entry in log.leader_epochs() {
        for epoch in [entry.epoch.saturating_sub(1), entry.epoch, entry.epoch.saturating_add(1)] {
            let _ = log.end_offset_for_epoch(epoch);
        }
        let _ = log.epoch_for_offset(entry.start_offset);
    }
    let _ = (log.end_offset_for_epoch(-1), log.epoch_for_offset(start), log.epoch_for_offset(end));
    for timestamp in [-1, 0, NOW_MS, NOW_MS + 10, i64::MAX] {
        if let Ok(Some(found)) = log.fetch_offset_by_timestamp(timestamp) {
            assert!(!full || (start..end).contains(&found.offset), "timestamp {timestamp} found {found:?}");
        }
    }
    let _ = log.max_timestamp_and_offset();
}

/// The broker keeps producing to a recovered partition, and a consumer that stopped at
/// `read_to` (where the data ran out) reads on into the new batch.
fn append_after_recovery(log: &mut PartitionLog, full: bool, read_to: i64) {
    let end = log.log_end_offset();
    let epoch = log.latest_epoch().unwrap_or(0).max(0);
    let mut batch = producer_batch(Writer::PLAIN, CODECS[0], 2, true, 5);
    let info = log.append_as_leader(&mut batch, epoch, NOW_MS + 100).expect("a plain append after recovery");
    assert_eq!((info.first_offset, info.last_offset), (end, end + 1));
    assert_eq!(log.log_end_offset(), end + 2);
    if full {
        let plan = log.read(read_to, 1 << 20, i64::MAX).expect("reading on after recovery");
        let bytes = plan.read_bytes().expect("reading the scratch log");
        let found = check_fetched(&bytes, read_to, end + 2, true).expect("the appended batch after the data");
        assert_eq!(found, end + 1, "a fetch at {read_to} ends at the appended batch");
        assert!(bytes.ends_with(&batch), "the appended batch reads back as written");
    }
}

/// Recovering a log that recovery already repaired changes nothing.
fn reopen_unchanged(mut log: PartitionLog, dir: &Path, config: &LogConfig) {
    log.close().expect("closing the recovered log");
    let (end, segments) = (log.log_end_offset(), log.segment_base_offsets());
    drop(log);
    let again = open(dir, config, 0, 0).expect("reopening a recovered log");
    assert_eq!(
        (again.log_end_offset(), again.segment_base_offsets()),
        (end, segments),
        "a second recovery changed the log"
    );
}
