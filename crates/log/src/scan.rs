//! Reading a whole partition back as records, for the broker's internal logs (metadata,
//! `__consumer_offsets`) that are replayed into memory at start-up.

use gregor_protocol::record_batch::BatchIter;
use gregor_protocol::records::{decode_records_and_markers, KeyValue};

use crate::{LogError, PartitionLog};

/// Bytes read per step while scanning.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

impl PartitionLog {
    /// Every record from the log start offset to the high watermark, in offset order,
    /// transaction markers included (`KeyValue::control`): coordinators replaying their
    /// topic apply transactional records only once the marker commits them.
    pub fn read_all_records(&self) -> Result<Vec<KeyValue>, LogError> {
        self.read_all_records_until(self.high_watermark())
    }

    /// Every record from the log start offset up to `end` (at most the log end offset),
    /// transaction markers included.
    pub fn read_all_records_until(&self, end: i64) -> Result<Vec<KeyValue>, LogError> {
        let mut out = Vec::new();
        let mut offset = self.log_start_offset();
        let end = end.min(self.log_end_offset());
        while offset < end {
            let bytes = self.read(offset, SCAN_CHUNK_BYTES, end)?.read_bytes()?;
            if bytes.is_empty() {
                break;
            }
            // Advance by batch headers: a batch of only control records decodes to nothing.
            let Some(next) = BatchIter::new(&bytes).last().map(|(_, b)| b.last_offset() + 1) else { break };
            offset = next;
            out.extend(decode_records_and_markers(bytes)?.into_iter().filter(|r| r.offset >= self.log_start_offset()));
        }
        Ok(out)
    }
}
