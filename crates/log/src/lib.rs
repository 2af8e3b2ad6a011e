//! Gregor's storage engine: Kafka-format partition logs on local disk.
//!
//! ```text
//!  LogManager (one log dir)            recovery-point-offset-checkpoint, log-start-offset-checkpoint
//!   └─ <topic>-<partition>/  PartitionLog (Kafka's UnifiedLog)
//!        ├─ 00000000000000000000.log        RecordBatch v2 bytes as produced, offsets written in
//!        ├─ 00000000000000000000.index      OffsetIndex: (relative offset, position) every 4 KiB
//!        ├─ 00000000000000000000.timeindex  TimeIndex: (max timestamp, relative offset)
//!        ├─ 00000000000000004096.log ...    later segments; the last one is active
//!        ├─ 00000000000000004096.txnindex   TransactionIndex: aborted transactions (only if any)
//!        ├─ 00000000000000004096.snapshot   ProducerStateManager snapshot
//!        ├─ leader-epoch-checkpoint         LeaderEpochFileCache
//!        └─ partition.metadata              topic id
//! ```
//!
//! Appends go to the page cache with one `pwrite`; `flush` fsyncs and moves the recovery
//! point. On open, everything after the recovery point is re-validated (size, CRC,
//! offsets) and cut at the first bad batch. Reads are planned under the partition lock
//! and performed afterwards with `pread` on a shared file handle. No `unsafe`, no mmap,
//! no async runtime; time is always passed in.
#![forbid(unsafe_code)]

mod batch;
mod checkpoint;
mod cleaner;
mod config;
mod epoch;
mod error;
mod index;
mod log_manager;
mod partition_log;
mod producer_state;
mod record_stream;
mod scan;
mod segment;
mod txn_index;

pub use cleaner::CleanStats;
pub use config::{LogConfig, TimestampType};
pub use epoch::EpochEntry;
pub use error::LogError;
pub use log_manager::{LogManager, SharedLog};
pub use partition_log::{AppendInfo, PartitionLog, ReadPlan, TimestampAndOffset, TxnMarker};
pub use producer_state::ProducerInfo;
pub use txn_index::AbortedTxn;
