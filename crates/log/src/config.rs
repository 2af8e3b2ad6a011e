/// How the broker stamps a batch's max timestamp (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Keep the producer's timestamps.
    #[default]
    CreateTime,
    /// Overwrite the batch max timestamp with the broker's clock at append.
    LogAppendTime,
}

/// Topic-level log settings, with Kafka's keys and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is this old.
    pub segment_ms: i64,
    /// `segment.index.bytes`: the largest an index may grow; roll when it is full.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: log bytes between two sparse index entries.
    pub index_interval_bytes: u64,
    /// `retention.ms`: delete segments whose newest timestamp is older; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments beyond this size; -1 keeps all.
    pub retention_bytes: i64,
    /// `flush.messages`: fsync after this many unflushed records.
    pub flush_interval_messages: i64,
    /// `flush.ms`: fsync when the last flush is this old.
    pub flush_interval_ms: i64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: u64,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `file.delete.delay.ms`: how long `.deleted` files linger before removal.
    pub file_delete_delay_ms: i64,
    /// `cleanup.policy` includes `compact`: the cleaner keeps the latest record per key,
    /// and appends must carry a key on every record.
    pub compact: bool,
    /// `cleanup.policy` includes `delete`: `retention.ms` / `retention.bytes` delete old
    /// segments. Without it only segments below the log start offset are deleted.
    pub delete: bool,
    /// `min.cleanable.dirty.ratio`: clean once dirty bytes / cleanable bytes reach this.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: segments with records newer than this stay uncompacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: clean regardless of the ratio once dirty data is this old.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone survives after the clean that first
    /// saw it (the batch's delete horizon, KIP-534).
    pub delete_retention_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            segment_index_bytes: 10_485_760,
            index_interval_bytes: 4096,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            flush_interval_messages: i64::MAX,
            flush_interval_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            file_delete_delay_ms: 60_000,
            compact: false,
            delete: true,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
        }
    }
}
