use std::io;
use std::path::{Path, PathBuf};

use gregor_protocol::ProtocolError;
use thiserror::Error;

/// Everything the storage engine can report. Each variant maps to one Kafka error code
/// at the broker's handler boundary (noted per variant).
#[derive(Debug, Error)]
pub enum LogError {
    /// CRC mismatch, bad sizes, or trailing bytes that are not a whole batch (`CORRUPT_MESSAGE`).
    #[error("corrupt record batch: {reason}")]
    CorruptRecord { reason: &'static str },
    /// A well-formed batch that breaks a rule, e.g. a wrong record count (`INVALID_RECORD`).
    #[error("invalid record: {reason}")]
    InvalidRecord { reason: &'static str },
    /// Records of a batch that break a rule, by their index in the batch (`INVALID_RECORD`
    /// with KIP-467's per-record errors, so the client fails only those records).
    #[error("{} record(s) rejected: {reason}", batch_indexes.len())]
    RecordsRejected { reason: &'static str, batch_indexes: Vec<i32> },
    /// A batch over `max.message.bytes` (`MESSAGE_TOO_LARGE`).
    #[error("record batch of {size} bytes exceeds max.message.bytes ({max_bytes})")]
    RecordBatchTooLarge { size: usize, max_bytes: u64 },
    /// The batches of one request do not fit in a segment (`RECORD_LIST_TOO_LARGE`).
    #[error("{size} bytes of record batches exceed segment.bytes ({max_bytes})")]
    RecordListTooLarge { size: usize, max_bytes: u64 },
    /// A fetch outside `[log_start_offset, log_end_offset]` (`OFFSET_OUT_OF_RANGE`).
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, log_end_offset: i64 },
    /// A sequence gap for an idempotent producer (`OUT_OF_ORDER_SEQUENCE_NUMBER`).
    #[error("producer {producer_id}: expected sequence {expected_sequence}, received {first_sequence}")]
    OutOfOrderSequence { producer_id: i64, expected_sequence: i32, first_sequence: i32 },
    /// A producer epoch older than the one already seen: a zombie (`INVALID_PRODUCER_EPOCH`).
    #[error("producer {producer_id}: epoch {producer_epoch} is older than the current epoch {current_epoch}")]
    InvalidProducerEpoch { producer_id: i64, producer_epoch: i16, current_epoch: i16 },
    /// A transactional rule broken, e.g. plain writes inside a transaction (`INVALID_TXN_STATE`).
    #[error("producer {producer_id}: {reason}")]
    InvalidTxnState { producer_id: i64, reason: &'static str },
    /// A marker from an older transaction coordinator (`TRANSACTION_COORDINATOR_FENCED`).
    #[error("producer {producer_id}: marker of coordinator epoch {coordinator_epoch} is older than {current}")]
    TransactionCoordinatorFenced { producer_id: i64, coordinator_epoch: i32, current: i32 },
    /// The partition was deleted while a caller still held it (`NOT_LEADER_OR_FOLLOWER`).
    #[error("the log of partition {partition} has been deleted")]
    LogDeleted { partition: String },
    /// A disk error; the broker should take the log dir offline (`KAFKA_STORAGE_ERROR`).
    #[error("I/O error while trying to {operation} {}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl From<io::Error> for LogError {
    fn from(source: io::Error) -> Self {
        Self::Io { operation: "access", path: PathBuf::new(), source }
    }
}

impl From<ProtocolError> for LogError {
    fn from(err: ProtocolError) -> Self {
        match err {
            ProtocolError::CorruptBatch(reason) => Self::CorruptRecord { reason },
            ProtocolError::InvalidRecord(reason) => Self::InvalidRecord { reason },
            // Kafka refuses v0/v1 message sets in Produce v3+ as INVALID_RECORD.
            ProtocolError::UnsupportedMagic(_) => {
                Self::InvalidRecord { reason: "only record batch magic v2 is accepted" }
            }
            _ => Self::CorruptRecord { reason: "malformed record batch" },
        }
    }
}

/// Attaches the operation and file to an `io::Error`, so a disk failure names its file.
pub(crate) trait IoContext<T> {
    fn ctx(self, operation: &'static str, path: &Path) -> Result<T, LogError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, operation: &'static str, path: &Path) -> Result<T, LogError> {
        self.map_err(|source| LogError::Io { operation, path: path.to_path_buf(), source })
    }
}
