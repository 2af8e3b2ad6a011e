//! Target `record_batch`: the input is the `records` field of a Produce request, a run of
//! RecordBatch v2 bytes straight from the client. It goes through the header view
//! (`RecordBatchHeader::parse`, every getter, `validate_from_producer`), batch iteration,
//! record decoding with every codec (`decode_records`, `decode_records_and_markers`:
//! varints, headers, lengths, decompression), and, for inputs that pass validation, the
//! produce path of a real log (`append_as_leader`: producer sequence checks, duplicate
//! detection) including a compacted one (key checks, then a clean over the stored bytes).
//!
//! Invariants checked: iteration covers the input exactly up to the first bad batch; the
//! in-place rewrites the broker does to an accepted batch (offsets, leader epoch,
//! LogAppendTime) keep it valid and leave everything else as the producer sent it; an
//! append reports the offsets it was given and reads back byte for byte.

use bytes::Bytes;
use gregor_log::{LogConfig, PartitionLog};
use gregor_protocol::record_batch::{
    batch_size, set_base_offset, set_log_append_time, set_partition_leader_epoch, BatchIter, RecordBatchHeader,
    BATCH_HEADER_LEN, MAGIC_V2,
};
use gregor_protocol::records::{decode_records, decode_records_and_markers};

use crate::scratch::{open_log, producer_batch, scratch_dir, Writer, NOW_MS};

/// Checks one Produce request's record bytes; panics only on a broken invariant.
pub fn record_batch(data: &[u8]) {
    check_records(data);
    // A client can put any record bytes under a correct CRC. The fuzzer cannot compute
    // CRCs, so the same bytes go through again with every CRC made right: the record
    // decoders, the append path and the cleaner then see what lies behind them.
    if let Some(fixed) = with_valid_crcs(data) {
        check_records(&fixed);
    }
}

/// A copy with each batch's CRC-32C recomputed, or `None` if all were right already.
fn with_valid_crcs(data: &[u8]) -> Option<Vec<u8>> {
    let mut fixed = data.to_vec();
    let mut changed = false;
    for (position, view) in BatchIter::new(data).filter(|(_, v)| !v.is_crc_valid()) {
        let crc = view.compute_crc().to_be_bytes();
        fixed[position + CRC_AT..position + CRC_AT + 4].copy_from_slice(&crc);
        changed = true;
    }
    changed.then_some(fixed)
}

/// Where the CRC sits in a batch header.
const CRC_AT: usize = 17;

fn check_records(data: &[u8]) {
    let _ = batch_size(data);
    let mut iter = BatchIter::new(data);
    let mut expected = 0;
    let mut all_valid = true;
    let mut count = 0;
    for (position, view) in iter.by_ref() {
        assert_eq!(position, expected, "batches are contiguous");
        expected += view.size();
        all_valid &= check_batch(&view);
        count += 1;
    }
    assert_eq!(iter.position(), expected);
    assert_eq!(iter.remainder().len(), data.len() - expected);
    let whole = Bytes::copy_from_slice(data);
    let _ = decode_records(whole.clone());
    let _ = decode_records_and_markers(whole);
    if count > 0 && all_valid && expected == data.len() {
        produce_path(data);
    }
}

/// Returns whether the batch passes the broker's producer validation.
fn check_batch(view: &RecordBatchHeader<'_>) -> bool {
    assert!(view.size() >= BATCH_HEADER_LEN);
    assert_eq!(view.magic(), MAGIC_V2);
    let _ = (view.base_offset(), view.last_offset(), view.partition_leader_epoch(), view.crc(), view.attributes());
    let _ = (view.compression(), view.is_log_append_time(), view.is_transactional(), view.is_control());
    let _ = (view.base_timestamp(), view.max_timestamp(), view.producer_id(), view.producer_epoch());
    let _ = (view.base_sequence(), view.last_sequence(), view.records_count(), view.records().len());
    let _ = decode_records_and_markers(Bytes::copy_from_slice(view.bytes()));
    let valid = view.validate_from_producer().is_ok();
    if valid {
        check_broker_rewrites(view);
    }
    valid
}

/// The fields a producer chose, which the broker must never change.
fn producer_fields(v: &RecordBatchHeader<'_>) -> (i16, i32, i64, i64, i16, i32, i32) {
    let attributes = v.attributes() & !0x08; // LogAppendTime may be set by the broker
    (
        attributes,
        v.last_offset_delta(),
        v.base_timestamp(),
        v.producer_id(),
        v.producer_epoch(),
        v.base_sequence(),
        v.records_count(),
    )
}

/// What the broker writes into an accepted batch keeps it valid and changes only that.
fn check_broker_rewrites(view: &RecordBatchHeader<'_>) {
    let mut copy = view.bytes().to_vec();
    set_base_offset(&mut copy, 1_234);
    set_partition_leader_epoch(&mut copy, 7);
    let rewritten = RecordBatchHeader::parse(&copy).expect("a rewritten batch parses");
    rewritten.validate_from_producer().expect("offset and epoch lie outside the CRC");
    assert_eq!((rewritten.base_offset(), rewritten.partition_leader_epoch()), (1_234, 7));
    assert_eq!(producer_fields(&rewritten), producer_fields(view));
    assert_eq!(rewritten.records(), view.records());
    set_log_append_time(&mut copy, NOW_MS);
    let stamped = RecordBatchHeader::parse(&copy).expect("a stamped batch parses");
    stamped.validate_from_producer().expect("LogAppendTime rewrites the CRC");
    assert!(stamped.is_log_append_time());
    assert_eq!(stamped.max_timestamp(), NOW_MS);
    assert_eq!(producer_fields(&stamped), producer_fields(view));
}

/// Appends the batches as a Produce request would, to a plain and to a compacted log.
fn produce_path(data: &[u8]) {
    let dir = scratch_dir();
    let plain = LogConfig { segment_bytes: 64 * 1024, index_interval_bytes: 256, ..LogConfig::default() };
    if let Ok(mut log) = open_log(dir.path(), plain, 0) {
        append_and_read(&mut log, data);
    }
    let compact = LogConfig {
        segment_bytes: 64 * 1024,
        compact: true,
        min_cleanable_dirty_ratio: 0.0,
        min_compaction_lag_ms: 0,
        ..LogConfig::default()
    };
    let dir = scratch_dir();
    if let Ok(mut log) = open_log(dir.path(), compact, 0) {
        if append_and_read(&mut log, data) {
            // The cleaner decodes (and re-compresses) whatever producers stored.
            let _ = log.roll(NOW_MS);
            let keyed = Writer::PLAIN;
            let _ = log.append_as_leader(&mut producer_batch(keyed, CODEC_NONE, 2, true, 3), 0, NOW_MS);
            log.update_high_watermark(log.log_end_offset());
            let _ = log.clean(NOW_MS + 1);
            let _ = log.read(log.log_start_offset(), 1 << 20, i64::MAX).map(|plan| plan.read_bytes());
        }
    }
}

const CODEC_NONE: gregor_protocol::kafka_protocol::records::Compression =
    gregor_protocol::kafka_protocol::records::Compression::None;

/// Appends `data` twice (the second is a producer retry); returns whether the first
/// append was accepted.
fn append_and_read(log: &mut PartitionLog, data: &[u8]) -> bool {
    let mut bytes = data.to_vec();
    let Ok(info) = log.append_as_leader(&mut bytes, 3, NOW_MS) else { return false };
    assert_eq!(info.first_offset, 0);
    assert_eq!(info.last_offset, log.log_end_offset() - 1);
    let plan = log.read(0, bytes.len().max(1), i64::MAX).expect("the first offset is readable");
    let stored = plan.read_bytes().expect("reading the scratch log");
    assert_eq!(&stored[..], &bytes[..stored.len().min(bytes.len())], "stored bytes are what was appended");
    let mut retry = data.to_vec();
    if let Ok(again) = log.append_as_leader(&mut retry, 3, NOW_MS) {
        assert!(again.duplicate || again.first_offset == info.last_offset + 1);
    }
    true
}
