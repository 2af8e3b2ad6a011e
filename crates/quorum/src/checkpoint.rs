//! Metadata snapshots as Kafka keeps them: `<end offset, 20 digits>-<epoch, 10 digits>.checkpoint`
//! files in `__cluster_metadata-0/`, record batches whose first record describes the
//! snapshot (the last log id it covers and the voters) and whose others are the metadata
//! records that rebuild the image. A snapshot travels to a lagging follower as these bytes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use gregor_metadata::{MetadataImage, MetadataRecord};
use gregor_protocol::record_batch::{set_base_offset, BatchIter};
use serde::{Deserialize, Serialize};

use crate::entry::StoredMembershipConfig;
use crate::quorum_state::LogIdJson;
use crate::{LogId, QuorumError, SnapshotMeta, StoredMembership};

const SUFFIX: &str = ".checkpoint";
const KEY_HEADER: &[u8] = b"snapshot";
const KEY_RECORD: &[u8] = b"record";
/// Records per batch of a checkpoint file.
const RECORDS_PER_BATCH: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    last_log_id: Option<LogIdJson>,
    membership_log_id: Option<LogIdJson>,
    membership: StoredMembershipConfig,
}

/// A snapshot read back: what it covers and the image it rebuilds.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    pub(crate) meta: SnapshotMeta,
    pub(crate) image: MetadataImage,
}

/// Kafka's snapshot id: the offset after the last entry it covers, and that entry's epoch.
pub(crate) fn file_name(last: Option<&LogId>) -> String {
    let (end, epoch) = last.map_or((0, 0), |l| (l.index + 1, l.leader_id.term));
    format!("{end:020}-{epoch:010}{SUFFIX}")
}

/// The bytes of the checkpoint of `image` as of `meta`.
pub(crate) fn encode(meta: &SnapshotMeta, image: &MetadataImage) -> Result<Vec<u8>, QuorumError> {
    let header = Header {
        last_log_id: meta.last_log_id.as_ref().map(LogIdJson::of),
        membership_log_id: meta.last_membership.log_id().as_ref().map(LogIdJson::of),
        membership: StoredMembershipConfig::of(meta.last_membership.membership()),
    };
    let mut pairs = vec![(Some(Bytes::from_static(KEY_HEADER)), Some(Bytes::from(to_json(&header)?)))];
    for record in image.to_records() {
        pairs.push((Some(Bytes::from_static(KEY_RECORD)), Some(Bytes::from(to_json(&record)?))));
    }
    let mut out = Vec::new();
    let mut offset = 0i64;
    for chunk in pairs.chunks(RECORDS_PER_BATCH) {
        let mut batch: BytesMut = gregor_protocol::records::encode_batch(chunk, 0)
            .map_err(|e| QuorumError::Config(format!("snapshot encoding: {e}")))?;
        set_base_offset(&mut batch, offset);
        offset += chunk.len() as i64;
        out.extend_from_slice(&batch);
    }
    Ok(out)
}

/// Parses checkpoint bytes (from a file or from the leader), checking every batch.
pub(crate) fn decode(bytes: &[u8]) -> Result<Checkpoint, QuorumError> {
    let bad = |reason: String| QuorumError::BadEntry { offset: -1, reason: format!("snapshot: {reason}") };
    let mut header: Option<Header> = None;
    let mut image = MetadataImage::new();
    let mut consumed = 0;
    for (position, batch) in BatchIter::new(bytes) {
        if !batch.is_crc_valid() {
            return Err(bad(format!("batch at byte {position} fails its CRC")));
        }
        consumed = position + batch.size();
        let records = gregor_protocol::records::decode_records(Bytes::copy_from_slice(batch.bytes()))
            .map_err(|e| bad(e.to_string()))?;
        for record in records {
            let value = record.value.unwrap_or_default();
            match (&header, record.key.as_deref()) {
                (None, Some(KEY_HEADER)) => {
                    header = Some(serde_json::from_slice(&value).map_err(|e| bad(e.to_string()))?)
                }
                (Some(_), Some(KEY_RECORD)) => {
                    let record: MetadataRecord = serde_json::from_slice(&value).map_err(|e| bad(e.to_string()))?;
                    image.replay(record_offset(&header), &record);
                }
                _ => return Err(bad("unexpected record".into())),
            }
        }
    }
    if consumed != bytes.len() {
        return Err(bad(format!("{} trailing bytes", bytes.len() - consumed)));
    }
    let header = header.ok_or_else(|| bad("no header".into()))?;
    let membership = header.membership.to_membership().map_err(bad)?;
    let meta = SnapshotMeta {
        last_log_id: header.last_log_id.map(LogIdJson::log_id),
        last_membership: StoredMembership::new(header.membership_log_id.map(LogIdJson::log_id), membership),
    };
    Ok(Checkpoint { meta, image })
}

fn record_offset(header: &Option<Header>) -> i64 {
    header.as_ref().and_then(|h| h.last_log_id).map_or(-1, |l| i64::try_from(l.offset).unwrap_or(i64::MAX))
}

/// Writes `bytes` as the checkpoint for `last` (temporary file, fsync, rename, fsync of the
/// directory) and removes the older checkpoints, which it supersedes.
pub(crate) fn store(dir: &Path, last: Option<&LogId>, bytes: &[u8]) -> Result<PathBuf, QuorumError> {
    let name = file_name(last);
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.part"));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| QuorumError::io(&path, e))?;
    // Only older ones: a slow build may finish after a newer snapshot was installed.
    for old in list(dir)?.into_iter().filter(|p| *p < path) {
        let _ = fs::remove_file(old);
    }
    Ok(path)
}

/// The newest checkpoint file of `dir`, if any (names sort by end offset).
pub(crate) fn latest(dir: &Path) -> Result<Option<PathBuf>, QuorumError> {
    Ok(list(dir)?.into_iter().max())
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, QuorumError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(QuorumError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| QuorumError::io(dir, e))?.path();
        let is_checkpoint = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX));
        if is_checkpoint {
            out.push(path);
        }
    }
    Ok(out)
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, QuorumError> {
    serde_json::to_vec(value).map_err(|e| QuorumError::Config(format!("snapshot encoding: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{log_id, ControllerNode, Membership};

    fn meta(index: u64) -> SnapshotMeta {
        let membership = Membership::new(
            vec![[1, 2, 3].into()],
            (1..=3)
                .map(|i| (i, ControllerNode::new("h", 9000 + i as u16)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .unwrap();
        SnapshotMeta {
            last_log_id: Some(log_id(3, index)),
            last_membership: StoredMembership::new(Some(log_id(1, 0)), membership),
        }
    }

    #[test]
    fn given_an_image_when_checkpointed_should_read_back_the_same_image_and_meta() {
        let dir = tempfile::tempdir().unwrap();
        let mut image = MetadataImage::new();
        for i in 0..2500 {
            image.replay(
                i,
                &MetadataRecord::Config {
                    resource: gregor_metadata::ConfigResource::Broker(Some(i as i32)),
                    name: "k".into(),
                    value: Some("v".into()),
                },
            );
        }
        let bytes = encode(&meta(10), &image).unwrap();
        let path = store(dir.path(), meta(10).last_log_id.as_ref(), &bytes).unwrap();
        assert!(path.ends_with("00000000000000000011-0000000003.checkpoint"), "{path:?}");
        let back = decode(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(back.meta, meta(10));
        assert_eq!(back.image.broker_configs, image.broker_configs);
        let newer = store(dir.path(), meta(20).last_log_id.as_ref(), &encode(&meta(20), &image).unwrap()).unwrap();
        assert_eq!(latest(dir.path()).unwrap(), Some(newer));
        assert!(!path.exists(), "the older checkpoint is removed");
        let mut damaged = bytes.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(decode(&damaged).is_err());
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
    }
}
