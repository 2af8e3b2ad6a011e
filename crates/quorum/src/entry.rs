//! How a Raft entry is stored in `__cluster_metadata-0`: one RecordBatch holding one
//! record, at base offset = the entry's index and `partitionLeaderEpoch` = its term. The
//! record's value is Gregor's own JSON of the payload (never openraft's serde form, which
//! openraft does not promise to keep stable), so the files outlive an openraft upgrade.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use gregor_metadata::MetadataRecord;
use openraft::EntryPayload;
use serde::{Deserialize, Serialize};

use crate::{log_id, ControllerNode, Entry, Membership, MetadataChange, QuorumError};

/// Record key of each kind, so `gregor dump-log` shows what an entry is at a glance.
const KEY_BLANK: &[u8] = b"leader";
const KEY_CHANGE: &[u8] = b"change";
const KEY_MEMBERSHIP: &[u8] = b"voters";

/// A membership (voter sets, more than one while a change is joint, and every node's
/// controller address) in Gregor's encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredMembershipConfig {
    pub(crate) configs: Vec<BTreeSet<u64>>,
    /// (id, address) pairs: a list, since JSON map keys are strings and the tagged payload
    /// enum cannot read them back as ids.
    pub(crate) nodes: Vec<(u64, ControllerNode)>,
}

impl StoredMembershipConfig {
    pub(crate) fn of(membership: &Membership) -> Self {
        Self {
            configs: membership.get_joint_config().clone(),
            nodes: membership.nodes().map(|(id, node)| (*id, node.clone())).collect(),
        }
    }

    pub(crate) fn to_membership(&self) -> Result<Membership, String> {
        let nodes: BTreeMap<u64, ControllerNode> = self.nodes.iter().cloned().collect();
        Membership::new(self.configs.clone(), nodes).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredPayload {
    /// The entry a new leader appends to commit its term (KRaft's LeaderChangeMessage).
    Blank,
    Change {
        records: Vec<MetadataRecord>,
    },
    Membership(StoredMembershipConfig),
}

/// The batch for one entry; the log writes its base offset and epoch.
pub(crate) fn encode(entry: &Entry, timestamp_ms: i64) -> Result<BytesMut, QuorumError> {
    let (key, payload) = match &entry.payload {
        EntryPayload::Blank => (KEY_BLANK, StoredPayload::Blank),
        EntryPayload::Normal(change) => (KEY_CHANGE, StoredPayload::Change { records: change.records.clone() }),
        EntryPayload::Membership(m) => (KEY_MEMBERSHIP, StoredPayload::Membership(StoredMembershipConfig::of(m))),
    };
    let value = serde_json::to_vec(&payload).map_err(|e| bad(entry.log_id.index, e))?;
    let pairs = [(Some(Bytes::from_static(key)), Some(Bytes::from(value)))];
    gregor_protocol::records::encode_batch(&pairs, timestamp_ms).map_err(|e| bad(entry.log_id.index, e))
}

/// The entry stored at `index` in a batch of epoch `term` with this record value.
pub(crate) fn decode(index: u64, term: u64, value: &[u8]) -> Result<Entry, QuorumError> {
    let stored: StoredPayload = serde_json::from_slice(value).map_err(|e| bad(index, e))?;
    let payload = match stored {
        StoredPayload::Blank => EntryPayload::Blank,
        StoredPayload::Change { records } => EntryPayload::Normal(MetadataChange { records }),
        StoredPayload::Membership(m) => EntryPayload::Membership(m.to_membership().map_err(|e| bad(index, e))?),
    };
    Ok(Entry { log_id: log_id(term, index), payload })
}

fn bad(index: u64, e: impl std::fmt::Display) -> QuorumError {
    QuorumError::BadEntry { offset: i64::try_from(index).unwrap_or(i64::MAX), reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::record_batch::BatchIter;

    #[test]
    fn given_each_payload_when_encoded_and_decoded_should_round_trip() {
        let voters = StoredMembershipConfig {
            configs: vec![[1, 2].into(), [2, 3].into()],
            nodes: vec![
                (1, ControllerNode::new("a", 1)),
                (2, ControllerNode::new("b", 2)),
                (3, ControllerNode::new("c", 3)),
            ],
        };
        let change = MetadataChange { records: vec![MetadataRecord::ClusterId { cluster_id: "c".into() }] };
        for payload in [
            EntryPayload::Blank,
            EntryPayload::Normal(change),
            EntryPayload::Membership(voters.to_membership().unwrap()),
        ] {
            let entry = Entry { log_id: log_id(7, 42), payload };
            let batch = encode(&entry, 1).unwrap().freeze();
            let records = gregor_protocol::records::decode_records(batch.clone()).unwrap();
            assert_eq!(BatchIter::new(&batch).count(), 1);
            let decoded = decode(42, 7, records[0].value.as_deref().unwrap()).unwrap();
            assert_eq!(decoded, entry);
        }
        assert!(matches!(decode(3, 1, b"{\"kind\":\"nope\"}"), Err(QuorumError::BadEntry { offset: 3, .. })));
    }
}
