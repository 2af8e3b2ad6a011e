//! Opening a single-node data dir of a Gregor from before the quorum, without loss: its
//! `__cluster_metadata-0` holds plain metadata records (several per batch, no Raft
//! entries, no `quorum-state`). They become a snapshot (a checkpoint covering every old
//! offset) of a one-voter quorum, and the Raft log continues after them.
//!
//! Crash-safe in this order: checkpoint written, then `quorum-state` (which marks the
//! conversion done and moves the log start past the old records), then the old segments
//! go. A crash before `quorum-state` exists redoes the conversion from the intact log.

use std::collections::BTreeMap;
use std::path::Path;

use gregor_log::{LogConfig, PartitionLog};
use gregor_metadata::{MetadataImage, MetadataRecord};
use gregor_protocol::TopicPartition;

use crate::quorum_state::{LogIdJson, QuorumStateFile};
use crate::{checkpoint, log_id, ControllerNode, Membership, QuorumError, SnapshotMeta, StoredMembership};

/// Converts `dir` if it holds a pre-quorum metadata log; returns whether it did.
pub(crate) fn convert(dir: &Path, node_id: u64, cluster_id: Option<&str>, now_ms: i64) -> Result<bool, QuorumError> {
    if QuorumStateFile::load(dir)?.is_some() || !dir.exists() {
        return Ok(false);
    }
    let tp = TopicPartition::new(gregor_metadata::METADATA_TOPIC, 0);
    let config = LogConfig { retention_ms: -1, max_message_bytes: 128 << 20, ..LogConfig::default() };
    let mut log = PartitionLog::open(dir.to_owned(), tp, config, 0, now_ms)?;
    let end = log.log_end_offset();
    if end == 0 {
        return Ok(false);
    }
    log.update_high_watermark(end);
    let mut image = MetadataImage::new();
    if let Some(id) = cluster_id {
        image.replay(-1, &MetadataRecord::ClusterId { cluster_id: id.to_owned() });
    }
    for record in log.read_all_records()? {
        let value = record.value.unwrap_or_default();
        let decoded: MetadataRecord = serde_json::from_slice(&value)
            .map_err(|e| QuorumError::BadEntry { offset: record.offset, reason: e.to_string() })?;
        image.replay(record.offset, &decoded);
    }
    let last = log_id(0, (end - 1) as u64);
    let voters = Membership::new(vec![[node_id].into()], BTreeMap::from([(node_id, ControllerNode::default())]))
        .map_err(|e| QuorumError::Config(e.to_string()))?;
    let meta = SnapshotMeta { last_log_id: Some(last), last_membership: StoredMembership::new(Some(last), voters) };
    let _ = checkpoint::store(dir, Some(&last), &checkpoint::encode(&meta, &image)?)?;
    let state = QuorumStateFile {
        voted_id: -1,
        purged: Some(LogIdJson::of(&last)),
        committed: Some(LogIdJson::of(&last)),
        ..Default::default()
    };
    state.store(dir)?;
    log.truncate_fully_and_start_at(end)?;
    log.close()?;
    tracing::info!(
        records_up_to = end,
        "metadata log of a single-node Gregor converted to a one-voter quorum snapshot"
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn given_a_pre_quorum_log_when_converted_should_keep_every_record_in_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new(gregor_metadata::METADATA_TOPIC, 0);
        let mut log = PartitionLog::open(dir.path().to_owned(), tp, LogConfig::default(), 0, 1).unwrap();
        let records: Vec<_> = (0..3)
            .map(|i| MetadataRecord::Config {
                resource: gregor_metadata::ConfigResource::Broker(None),
                name: format!("k{i}"),
                value: Some("v".into()),
            })
            .map(|r| (None, Some(Bytes::from(serde_json::to_vec(&r).unwrap()))))
            .collect();
        let mut batch = gregor_protocol::records::encode_batch(&records, 1).unwrap();
        let _ = log.append_as_leader(&mut batch, 0, 1).unwrap();
        log.close().unwrap();
        drop(log);

        assert!(convert(dir.path(), 0, Some("abc"), 2).unwrap());
        assert!(!convert(dir.path(), 0, Some("abc"), 3).unwrap(), "converted once");
        let path = checkpoint::latest(dir.path()).unwrap().unwrap();
        let back = checkpoint::decode(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(back.image.cluster_id.as_deref(), Some("abc"));
        assert_eq!(back.image.broker_configs[&None].len(), 3);
        assert_eq!(back.meta.last_log_id, Some(log_id(0, 2)));
        let state = QuorumStateFile::load(dir.path()).unwrap().unwrap();
        assert_eq!(state.purged, Some(LogIdJson { epoch: 0, offset: 2 }));
    }
}
