//! Kafka's KIP-848 consumer-group records in `__consumer_offsets`, byte for byte.
//!
//! Keys are non-flexible: `i16 type, string group[, string member]`. Values are flexible
//! (compact strings and arrays, a tagged-field section at the end) at version 0:
//!
//! ```text
//! type 3 ConsumerGroupMetadataValue            Epoch i32, tag 0: MetadataHash i64 (4.1+)
//! type 5 ConsumerGroupMemberMetadataValue      InstanceId?, RackId?, ClientId, ClientHost,
//!                                              SubscribedTopicNames [string], SubscribedTopicRegex?,
//!                                              RebalanceTimeoutMs i32, ServerAssignor?
//! type 6 ConsumerGroupTargetAssignmentMetadataValue  AssignmentEpoch i32
//! type 7 ConsumerGroupTargetAssignmentMemberValue    TopicPartitions [{TopicId uuid, Partitions [i32]}]
//! type 8 ConsumerGroupCurrentMemberAssignmentValue   MemberEpoch i32, PreviousMemberEpoch i32,
//!                                              State i8, AssignedPartitions [..], PartitionsPendingRevocation [..]
//! ```
//!
//! Type 4 (`ConsumerGroupPartitionMetadata`, dropped by Kafka 4.1) and 16
//! (`ConsumerGroupRegularExpression`) are not written: subscriptions are resolved against
//! the broker's topics on every heartbeat, so nothing needs them to rebuild a group.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::Partitions;
use crate::records::{put_string, Reader};
use crate::CoordinatorError;

const GROUP_METADATA: i16 = 3;
const MEMBER_METADATA: i16 = 5;
const TARGET_ASSIGNMENT_METADATA: i16 = 6;
const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
const CURRENT_MEMBER_ASSIGNMENT: i16 = 8;

/// The tag of `MetadataHash` in `ConsumerGroupMetadataValue` (KIP-1101).
const METADATA_HASH_TAG: u32 = 0;

/// `ConsumerGroupMemberMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct MemberValue {
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) server_assignor: Option<String>,
}

/// `ConsumerGroupCurrentMemberAssignmentValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct CurrentAssignmentValue {
    pub(crate) member_epoch: i32,
    pub(crate) previous_member_epoch: i32,
    pub(crate) state: i8,
    pub(crate) assigned: Partitions,
    pub(crate) pending_revocation: Partitions,
}

fn group_key(kind: i16, group: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(kind);
    put_string(&mut buf, group);
    buf.freeze()
}

fn member_key(kind: i16, group: &str, member: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(kind);
    put_string(&mut buf, group);
    put_string(&mut buf, member);
    buf.freeze()
}

pub(crate) fn group_metadata_key(group: &str) -> Bytes {
    group_key(GROUP_METADATA, group)
}

pub(crate) fn target_metadata_key(group: &str) -> Bytes {
    group_key(TARGET_ASSIGNMENT_METADATA, group)
}

pub(crate) fn member_metadata_key(group: &str, member: &str) -> Bytes {
    member_key(MEMBER_METADATA, group, member)
}

pub(crate) fn target_member_key(group: &str, member: &str) -> Bytes {
    member_key(TARGET_ASSIGNMENT_MEMBER, group, member)
}

pub(crate) fn current_assignment_key(group: &str, member: &str) -> Bytes {
    member_key(CURRENT_MEMBER_ASSIGNMENT, group, member)
}

/// Kafka's generated writers leave out tagged fields at their defaults (hash 0).
pub(crate) fn group_metadata_value(epoch: i32, metadata_hash: i64) -> Bytes {
    let mut buf = value_buf();
    buf.put_i32(epoch);
    if metadata_hash == 0 {
        put_uvarint(&mut buf, 0);
    } else {
        put_uvarint(&mut buf, 1);
        put_uvarint(&mut buf, METADATA_HASH_TAG);
        put_uvarint(&mut buf, 8);
        buf.put_i64(metadata_hash);
    }
    buf.freeze()
}

pub(crate) fn target_metadata_value(assignment_epoch: i32) -> Bytes {
    let mut buf = value_buf();
    buf.put_i32(assignment_epoch);
    put_uvarint(&mut buf, 0);
    buf.freeze()
}

pub(crate) fn member_value(v: &MemberValue) -> Bytes {
    let mut buf = value_buf();
    put_compact_nullable_string(&mut buf, v.instance_id.as_deref());
    put_compact_nullable_string(&mut buf, v.rack_id.as_deref());
    put_compact_string(&mut buf, &v.client_id);
    put_compact_string(&mut buf, &v.client_host);
    put_compact_len(&mut buf, v.subscribed_topic_names.len());
    for name in &v.subscribed_topic_names {
        put_compact_string(&mut buf, name);
    }
    put_compact_nullable_string(&mut buf, v.subscribed_topic_regex.as_deref());
    buf.put_i32(v.rebalance_timeout_ms);
    put_compact_nullable_string(&mut buf, v.server_assignor.as_deref());
    put_uvarint(&mut buf, 0);
    buf.freeze()
}

pub(crate) fn target_member_value(partitions: &Partitions) -> Bytes {
    let mut buf = value_buf();
    put_partitions(&mut buf, partitions);
    put_uvarint(&mut buf, 0);
    buf.freeze()
}

pub(crate) fn current_assignment_value(v: &CurrentAssignmentValue) -> Bytes {
    let mut buf = value_buf();
    buf.put_i32(v.member_epoch);
    buf.put_i32(v.previous_member_epoch);
    buf.put_i8(v.state);
    put_partitions(&mut buf, &v.assigned);
    put_partitions(&mut buf, &v.pending_revocation);
    put_uvarint(&mut buf, 0);
    buf.freeze()
}

/// Every value starts with its version, 0 for all of these.
fn value_buf() -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_compact_len(buf: &mut BytesMut, len: usize) {
    put_uvarint(buf, u32::try_from(len).unwrap_or(u32::MAX - 1).saturating_add(1));
}

fn put_compact_string(buf: &mut BytesMut, s: &str) {
    put_compact_len(buf, s.len());
    buf.put_slice(s.as_bytes());
}

fn put_compact_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_compact_string(buf, s),
        None => put_uvarint(buf, 0),
    }
}

/// `[]TopicPartitions`, each struct ending with its own (empty) tagged fields.
fn put_partitions(buf: &mut BytesMut, partitions: &Partitions) {
    put_compact_len(buf, partitions.len());
    for (topic_id, set) in partitions {
        buf.put_slice(topic_id.as_bytes());
        put_compact_len(buf, set.len());
        for p in set {
            buf.put_i32(*p);
        }
        put_uvarint(buf, 0);
    }
}

/// Reads the version of a value and refuses those this coordinator cannot read.
fn value_reader<'a>(value: &'a [u8], what: &'static str) -> Result<Reader<'a>, CoordinatorError> {
    let mut r = Reader::new(value, what);
    let version = r.i16()?;
    if version != 0 {
        return Err(CoordinatorError::UnsupportedValueVersion { what, version });
    }
    Ok(r)
}

pub(crate) fn decode_group_metadata(value: &[u8]) -> Result<(i32, i64), CoordinatorError> {
    let mut r = value_reader(value, "consumer group metadata value")?;
    let epoch = r.i32()?;
    let mut hash = 0;
    for (tag, data) in tagged_fields(&mut r)? {
        if tag == METADATA_HASH_TAG {
            let bytes: [u8; 8] = data.try_into().map_err(|_| CoordinatorError::Truncated {
                what: "consumer group metadata hash",
                position: 0,
                needed: 8,
            })?;
            hash = i64::from_be_bytes(bytes);
        }
    }
    Ok((epoch, hash))
}

pub(crate) fn decode_target_metadata(value: &[u8]) -> Result<i32, CoordinatorError> {
    let mut r = value_reader(value, "consumer group target assignment metadata value")?;
    let epoch = r.i32()?;
    let _ = tagged_fields(&mut r)?;
    Ok(epoch)
}

pub(crate) fn decode_member(value: &[u8]) -> Result<MemberValue, CoordinatorError> {
    let mut r = value_reader(value, "consumer group member metadata value")?;
    let instance_id = compact_nullable_string(&mut r)?;
    let rack_id = compact_nullable_string(&mut r)?;
    let client_id = compact_string(&mut r)?;
    let client_host = compact_string(&mut r)?;
    let count = compact_len(&mut r)?.unwrap_or(0);
    let mut subscribed_topic_names = Vec::with_capacity(count.min(r.remaining()));
    for _ in 0..count {
        subscribed_topic_names.push(compact_string(&mut r)?);
    }
    let subscribed_topic_regex = compact_nullable_string(&mut r)?;
    let rebalance_timeout_ms = r.i32()?;
    let server_assignor = compact_nullable_string(&mut r)?;
    // Tag 0 is ClassicMemberMetadata: members of the classic protocol, not served here.
    let _ = tagged_fields(&mut r)?;
    Ok(MemberValue {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
    })
}

pub(crate) fn decode_target_member(value: &[u8]) -> Result<Partitions, CoordinatorError> {
    let mut r = value_reader(value, "consumer group target assignment member value")?;
    let partitions = partitions(&mut r)?;
    let _ = tagged_fields(&mut r)?;
    Ok(partitions)
}

pub(crate) fn decode_current_assignment(value: &[u8]) -> Result<CurrentAssignmentValue, CoordinatorError> {
    let mut r = value_reader(value, "consumer group current member assignment value")?;
    let member_epoch = r.i32()?;
    let previous_member_epoch = r.i32()?;
    let state = i8::from_be_bytes(r.take(1)?.try_into().unwrap_or([127]));
    let assigned = partitions(&mut r)?;
    let pending_revocation = partitions(&mut r)?;
    let _ = tagged_fields(&mut r)?;
    Ok(CurrentAssignmentValue { member_epoch, previous_member_epoch, state, assigned, pending_revocation })
}

fn uvarint(r: &mut Reader<'_>) -> Result<u32, CoordinatorError> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = r.take(1)?[0];
        value |= u32::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(CoordinatorError::InvalidVarint { what: "compact length" })
}

/// A compact length: `None` for null (0 on the wire).
fn compact_len(r: &mut Reader<'_>) -> Result<Option<usize>, CoordinatorError> {
    let raw = uvarint(r)?;
    Ok(raw.checked_sub(1).map(|n| n as usize))
}

fn compact_nullable_string(r: &mut Reader<'_>) -> Result<Option<String>, CoordinatorError> {
    let Some(len) = compact_len(r)? else { return Ok(None) };
    let raw = r.take(len)?;
    let s = std::str::from_utf8(raw).map_err(|_| CoordinatorError::InvalidUtf8 { what: "compact string" })?;
    Ok(Some(s.to_owned()))
}

fn compact_string(r: &mut Reader<'_>) -> Result<String, CoordinatorError> {
    compact_nullable_string(r)?.ok_or(CoordinatorError::UnexpectedNull { what: "compact string" })
}

fn partitions(r: &mut Reader<'_>) -> Result<Partitions, CoordinatorError> {
    let mut out = Partitions::new();
    for _ in 0..compact_len(r)?.unwrap_or(0) {
        let id: [u8; 16] = r.take(16)?.try_into().unwrap_or([0; 16]);
        let set = out.entry(Uuid::from_bytes(id)).or_default();
        for _ in 0..compact_len(r)?.unwrap_or(0) {
            let _ = set.insert(r.i32()?);
        }
        let _ = tagged_fields(r)?;
    }
    Ok(out)
}

/// The tagged-field section: (tag, data) pairs.
fn tagged_fields<'a>(r: &mut Reader<'a>) -> Result<Vec<(u32, &'a [u8])>, CoordinatorError> {
    let count = uvarint(r)?;
    let mut fields = Vec::new();
    for _ in 0..count {
        let tag = uvarint(r)?;
        let size = uvarint(r)? as usize;
        fields.push((tag, r.take(size)?));
    }
    Ok(fields)
}
