//! Durable metadata: records are appended to the `__cluster_metadata-0` partition (a
//! Kafka-format log like any other, one RecordBatch per atomic change, JSON values),
//! fsynced, then applied to the image. Readers get an immutable `Arc<MetadataImage>`
//! snapshot and never wait for a writer's disk I/O.
//!
//! ```text
//!  controller decision ──► records ──► append + fsync ──► replay ──► new Arc<MetadataImage>
//! ```
//!
//! With a single node this store is the quorum; the cluster issue replaces the append
//! with a Raft proposal and keeps the same records and image.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use bytes::{Bytes, BytesMut};
use gregor_log::{LogConfig, PartitionLog};
use gregor_protocol::records::encode_batch as encode_batch_of;
use gregor_protocol::TopicPartition;

use crate::image::MetadataImage;
use crate::record::MetadataRecord;
use crate::MetadataError;

/// The metadata partition's name, as in KRaft.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

#[derive(Debug)]
pub struct MetadataStore {
    log: Mutex<PartitionLog>,
    image: RwLock<Arc<MetadataImage>>,
}

impl MetadataStore {
    /// Opens (recovering if needed) the metadata log under `data_dir` and replays it.
    pub fn open(data_dir: &Path, now_ms: i64) -> Result<Self, MetadataError> {
        let tp = TopicPartition::new(METADATA_TOPIC, 0);
        // One topic creation is one batch: 10,000 partitions take about 1 MB, more than the
        // 1 MB a data batch may have, so the metadata log allows batches as big as a request.
        let config = LogConfig { retention_ms: -1, max_message_bytes: 128 << 20, ..LogConfig::default() };
        let log = PartitionLog::open(data_dir.join(tp.dir_name()), tp, config, 0, now_ms)?;
        let mut image = MetadataImage::new();
        for (offset, record) in read_all(&log)? {
            image.replay(offset, &record);
        }
        Ok(Self { log: Mutex::new(log), image: RwLock::new(Arc::new(image)) })
    }

    /// The current image. Cheap: a reference count.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Makes `records` durable as one batch, then applies them. Writers are serialised
    /// by the log lock, so decisions taken from `image()` under `decide` see every
    /// earlier write.
    pub fn write<T>(
        &self,
        now_ms: i64,
        decide: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), MetadataError>,
    ) -> Result<T, MetadataError> {
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.image();
        let (records, answer) = decide(&current)?;
        if records.is_empty() {
            return Ok(answer);
        }
        let mut batch = encode_batch(&records, now_ms)?;
        let info = log.append_as_leader(&mut batch, 0, now_ms)?;
        log.update_high_watermark(info.last_offset + 1);
        log.flush()?;
        let mut next = MetadataImage::clone(&current);
        for (i, record) in records.iter().enumerate() {
            next.replay(info.first_offset + i as i64, record);
        }
        *self.image.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        Ok(answer)
    }

    /// Flushes and closes the metadata log.
    pub fn close(&self) -> Result<(), MetadataError> {
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.close()?;
        Ok(())
    }
}

fn encode_batch(records: &[MetadataRecord], now_ms: i64) -> Result<BytesMut, MetadataError> {
    let pairs: Vec<_> = records
        .iter()
        .map(|r| (None, Some(Bytes::from(serde_json::to_vec(r).expect("metadata records always serialise")))))
        .collect();
    Ok(encode_batch_of(&pairs, now_ms)?)
}

/// Every record of the log with its offset, in order.
fn read_all(log: &PartitionLog) -> Result<Vec<(i64, MetadataRecord)>, MetadataError> {
    log.read_all_records()?
        .into_iter()
        .map(|r| {
            let value = r.value.unwrap_or_default();
            let decoded = serde_json::from_slice(&value)
                .map_err(|source| MetadataError::BadRecord { offset: r.offset, source })?;
            Ok((r.offset, decoded))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{create_topic, NewTopic};
    use crate::record::BrokerRegistration;

    #[test]
    fn given_written_records_when_reopened_should_replay_same_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path(), 1).unwrap();
        let broker = BrokerRegistration { node_id: 0, host: "localhost".into(), port: 9092, rack: None };
        store.write(1, |_| Ok((vec![MetadataRecord::RegisterBroker(broker)], ()))).unwrap();
        let topic = NewTopic {
            name: "t".into(),
            num_partitions: 3,
            replication_factor: 1,
            assignments: vec![],
            configs: vec![],
        };
        store.write(2, |image| Ok((create_topic(image, &topic)?, ()))).unwrap();
        let before = store.image();
        store.close().unwrap();
        drop(store);
        let reopened = MetadataStore::open(dir.path(), 3).unwrap();
        assert_eq!(*reopened.image(), *before);
        assert_eq!(reopened.image().topic("t").unwrap().partitions.len(), 3);
        // One change is one batch, so a torn write can never apply half of it.
        let log = reopened.log.lock().unwrap();
        let bytes = log.read(1, 1 << 20, log.log_end_offset()).unwrap().read_bytes().unwrap();
        let batches: Vec<_> =
            gregor_protocol::record_batch::BatchIter::new(&bytes).map(|(_, b)| b.records_count()).collect();
        assert_eq!(batches, vec![4], "topic record and three partition records in one batch");
    }
}
