//! Helpers the storage targets share: scratch directories and producer-style batches.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use gregor_log::{LogConfig, PartitionLog};
use gregor_protocol::kafka_protocol::indexmap::IndexMap;
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use gregor_protocol::TopicPartition;
use tempfile::TempDir;

/// A fixed clock: the targets must behave the same on every run of an input.
pub(crate) const NOW_MS: i64 = 1_700_000_000_000;

/// A scratch directory, on tmpfs when the machine has one: the storage targets fsync on
/// flush and roll, which would otherwise cost milliseconds per run.
pub(crate) fn scratch_dir() -> TempDir {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("gregor-fuzz-");
        b
    };
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("a scratch directory")
}

pub(crate) fn open_log(
    dir: &Path,
    config: LogConfig,
    recovery_point: i64,
) -> Result<PartitionLog, gregor_log::LogError> {
    PartitionLog::open(dir.join("fuzz-0"), TopicPartition::new("fuzz", 0), config, recovery_point, NOW_MS)
}

/// Who writes a batch, as the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Writer {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    /// Sequence of the first record; -1 without an idempotent producer.
    pub(crate) base_sequence: i32,
    pub(crate) transactional: bool,
}

impl Writer {
    pub(crate) const PLAIN: Self =
        Self { producer_id: -1, producer_epoch: -1, base_sequence: -1, transactional: false };
}

/// One v2 batch as a producer would send it: `count` records with optional keys,
/// values of `value_len` bytes and one header on every other record.
pub(crate) fn producer_batch(
    writer: Writer,
    compression: Compression,
    count: usize,
    keyed: bool,
    value_len: usize,
) -> BytesMut {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: writer.transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: writer.producer_id,
            producer_epoch: writer.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch when offset - sequence changes; a constant
            // difference keeps one batch (base sequence -1 for the plain writer).
            sequence: if writer.base_sequence < 0 { i as i32 - 1 } else { writer.base_sequence + i as i32 },
            timestamp: NOW_MS + i as i64,
            key: keyed.then(|| Bytes::from(format!("key-{}", i % 3))),
            value: Some(Bytes::from(vec![b'v'; value_len])),
            headers: if i % 2 == 0 {
                IndexMap::from_iter([(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"1")))])
            } else {
                IndexMap::new()
            },
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encoding a small batch");
    buf
}

pub(crate) const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
