//! Transactions at the partition: markers, the last stable offset (LSO), read_committed
//! reads and the aborted transactions they report, and markers met during recovery.
//!
//! ```text
//!   offsets:  10 11 12 13 14 15 16 17
//!   pid 7:    d  d        A            d = transactional data, A = abort marker
//!   pid 9:          d  d     d  C      C = commit marker
//!   LSO after 14 = 12 (pid 9 still open); after 17 = high watermark
//!   .txnindex of the segment holding 14: (pid 7, first 10, last 14, lso 12)
//! ```

use bytes::Bytes;
use gregor_protocol::records::{decode_records_and_markers, encode_control_batch};

use super::{PartitionLog, ReadPlan};
use crate::batch::read_batch;
use crate::error::{IoContext, LogError};
use crate::producer_state::{PendingProducers, ProducerInfo, ProducerStateManager};
use crate::segment::{Located, LogSegment};
use crate::txn_index::AbortedTxn;

/// A transaction marker the coordinator writes to one partition of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
}

/// The commit flag and coordinator epoch of the control batch at `located`, or `None` if
/// it is not a readable transaction marker.
fn read_marker(segment: &LogSegment, located: &Located) -> Result<Option<(bool, i32)>, LogError> {
    let bytes = read_batch(segment.file(), located.position, &located.meta).ctx("read batch", segment.path())?;
    Ok(marker_of(Bytes::from(bytes)))
}

/// The commit flag and coordinator epoch of a control batch's bytes, or `None` if it is
/// not a readable transaction marker.
pub(super) fn marker_of(batch: Bytes) -> Option<(bool, i32)> {
    let Ok(records) = decode_records_and_markers(batch) else { return None };
    records.first().and_then(|r| {
        let epoch = r
            .value
            .as_deref()
            .and_then(|v| v.get(2..6))
            .map_or(-1, |b| i32::from_be_bytes(b.try_into().unwrap_or_default()));
        r.control.map(|commit| (commit, epoch))
    })
}

impl PartitionLog {
    /// Appends the coordinator's commit or abort marker for a producer's transaction.
    pub fn append_marker(
        &mut self,
        marker: &TxnMarker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<super::AppendInfo, LogError> {
        self.ensure_live()?;
        let mut records = encode_control_batch(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.commit,
            now_ms,
        )?;
        let batches = [(0, records.len())];
        let append_time = self.append_time(now_ms);
        let metas = self.assign_offsets(&mut records, &batches, leader_epoch, append_time)?;
        let mut pending = PendingProducers::default();
        self.producer_state.check_and_stage_marker(&mut pending, &metas[0], marker.commit, marker.coordinator_epoch)?;
        self.write_appended(&records, &metas, pending, (leader_epoch, append_time), now_ms)
    }

    /// The first offset of the oldest open transaction, if any.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producer_state.first_unstable_offset()
    }

    /// Kafka's LSO: read_committed consumers see nothing at or above it.
    pub fn last_stable_offset(&self) -> i64 {
        self.first_unstable_offset().map_or(self.high_watermark, |first| first.min(self.high_watermark))
    }

    /// The producers this partition remembers (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.producer_state.producers()
    }

    /// A read_committed fetch: whole batches below the LSO, and the aborted transactions
    /// overlapping them, which the client uses to drop aborted records.
    pub fn read_committed(&self, fetch_offset: i64, max_bytes: usize) -> Result<(ReadPlan, Vec<AbortedTxn>), LogError> {
        let plan = self.read(fetch_offset, max_bytes, self.last_stable_offset())?;
        if plan.is_empty() {
            return Ok((plan, Vec::new()));
        }
        let segment = self.segments.range(..=plan.first_offset).next_back().map(|(_, s)| s);
        let upper_bound = match segment {
            Some(s) => s.offset_at(plan.position + plan.length as u64)?,
            None => self.log_end_offset,
        };
        Ok((plan, self.collect_aborted_txns(fetch_offset, upper_bound)))
    }

    /// Aborted transactions with records in `[fetch_offset, upper_bound)`.
    pub fn collect_aborted_txns(&self, fetch_offset: i64, upper_bound: i64) -> Vec<AbortedTxn> {
        let mut out = Vec::new();
        for segment in self.segments_from(fetch_offset) {
            if segment.txn_index().collect(fetch_offset, upper_bound, &mut out) {
                break;
            }
        }
        out
    }

    /// Every aborted transaction that starts below `end_offset` (the cleaner drops their
    /// records).
    pub(crate) fn aborted_txns_below(&self, end_offset: i64) -> Vec<AbortedTxn> {
        let entries = self.segments.values().flat_map(|s| s.txn_index().entries().iter().copied());
        entries.filter(|e| e.first_offset < end_offset).collect()
    }
}

/// Replays one batch of recovery into the producer state. A marker of an aborted
/// transaction missing from its segment's index (written after the last flush) is
/// returned so the caller can add it.
pub(super) fn replay_batch(
    producers: &mut ProducerStateManager,
    segment: &LogSegment,
    located: &Located,
) -> Result<Option<AbortedTxn>, LogError> {
    let meta = &located.meta;
    if !meta.is_control {
        producers.replay(meta);
        return Ok(None);
    }
    let Some((commit, coordinator_epoch)) = read_marker(segment, located)? else {
        return Ok(None);
    };
    let (txn, last_stable_offset) = producers.replay_marker(meta, commit, coordinator_epoch);
    let missing = txn.is_aborted && !segment.txn_index().contains_marker(txn.last_offset);
    Ok(missing.then_some(AbortedTxn {
        producer_id: txn.producer_id,
        first_offset: txn.first_offset,
        last_offset: txn.last_offset,
        last_stable_offset,
    }))
}
