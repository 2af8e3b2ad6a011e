//! Kafka's `__consumer_offsets` record formats (big-endian, non-flexible), written and read
//! byte-for-byte as Kafka does so tools that read the partition understand them.
//!
//! ```text
//! key   OffsetCommitKey v0/1 : i16 version, string group, string topic, i32 partition
//!       GroupMetadataKey v2  : i16 version, string group
//!       3, 5-8               : KIP-848 consumer-group records (see `modern::records`)
//!       4, 9+                : record types this coordinator does not serve, skipped
//! value OffsetCommitValue v0-3, GroupMetadataValue v0-3 (see the decoders)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::CoordinatorError;

const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
    /// `ConsumerGroupMetadataKey` (type 3): the group epoch.
    ConsumerGroupMetadata {
        group: String,
    },
    /// `ConsumerGroupMemberMetadataKey` (type 5).
    ConsumerGroupMember {
        group: String,
        member: String,
    },
    /// `ConsumerGroupTargetAssignmentMetadataKey` (type 6): the assignment epoch.
    ConsumerGroupTargetAssignmentMetadata {
        group: String,
    },
    /// `ConsumerGroupTargetAssignmentMemberKey` (type 7).
    ConsumerGroupTargetAssignmentMember {
        group: String,
        member: String,
    },
    /// `ConsumerGroupCurrentMemberAssignmentKey` (type 8).
    ConsumerGroupCurrentAssignment {
        group: String,
        member: String,
    },
    /// A record type this coordinator does not serve this coordinator does not serve; replay skips it.
    Unknown {
        version: i16,
    },
}

/// A committed offset (`OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1 when unknown (and in values before v3).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Only v1 values carry it: the per-commit `retention_time_ms` of old clients.
    pub expire_timestamp_ms: Option<i64>,
}

/// A group's persisted state (`GroupMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 when unknown (and in values before v2).
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberValue>,
}

/// One member inside a [`GroupValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's chosen protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// The key of a committed offset.
pub fn offset_commit_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

/// The key of a group's metadata.
pub fn group_metadata_key(group: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_METADATA_KEY_VERSION);
    put_string(&mut buf, group);
    buf.freeze()
}

/// An offset value: v3 (with leader epoch), or v1 when it carries an expire timestamp,
/// the only version that can (Kafka makes the same choice).
pub fn offset_commit_value(value: &OffsetValue) -> Bytes {
    let mut buf = BytesMut::new();
    if let Some(expire) = value.expire_timestamp_ms {
        buf.put_i16(1);
        buf.put_i64(value.offset);
        put_string(&mut buf, &value.metadata);
        buf.put_i64(value.commit_timestamp_ms);
        buf.put_i64(expire);
    } else {
        buf.put_i16(3);
        buf.put_i64(value.offset);
        buf.put_i32(value.leader_epoch);
        put_string(&mut buf, &value.metadata);
        buf.put_i64(value.commit_timestamp_ms);
    }
    buf.freeze()
}

/// A group value, always v3.
pub fn group_metadata_value(value: &GroupValue) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    put_string(&mut buf, &value.protocol_type);
    buf.put_i32(value.generation);
    put_nullable_string(&mut buf, value.protocol.as_deref());
    put_nullable_string(&mut buf, value.leader.as_deref());
    buf.put_i64(value.current_state_timestamp_ms);
    buf.put_i32(i32::try_from(value.members.len()).unwrap_or(i32::MAX));
    for m in &value.members {
        put_string(&mut buf, &m.member_id);
        put_nullable_string(&mut buf, m.group_instance_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// Decodes a key; types this coordinator does not serve are [`RecordKey::Unknown`],
/// negative ones an error.
pub fn decode_key(key: &[u8]) -> Result<RecordKey, CoordinatorError> {
    let mut r = Reader::new(key, "record key");
    let version = r.i16()?;
    match version {
        0 | 1 => Ok(RecordKey::OffsetCommit { group: r.string()?, topic: r.string()?, partition: r.i32()? }),
        2 => Ok(RecordKey::GroupMetadata { group: r.string()? }),
        3 => Ok(RecordKey::ConsumerGroupMetadata { group: r.string()? }),
        5 => Ok(RecordKey::ConsumerGroupMember { group: r.string()?, member: r.string()? }),
        6 => Ok(RecordKey::ConsumerGroupTargetAssignmentMetadata { group: r.string()? }),
        7 => Ok(RecordKey::ConsumerGroupTargetAssignmentMember { group: r.string()?, member: r.string()? }),
        8 => Ok(RecordKey::ConsumerGroupCurrentAssignment { group: r.string()?, member: r.string()? }),
        v if v >= 3 => Ok(RecordKey::Unknown { version: v }),
        v => Err(CoordinatorError::InvalidKeyVersion { version: v }),
    }
}

/// Decodes an `OffsetCommitValue` of versions 0 to 3.
pub fn decode_offset_value(value: &[u8]) -> Result<OffsetValue, CoordinatorError> {
    let mut r = Reader::new(value, "offset commit value");
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(CoordinatorError::UnsupportedValueVersion { what: "offset commit value", version });
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    let expire_timestamp_ms = if version == 1 { Some(r.i64()?).filter(|t| *t >= 0) } else { None };
    Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp_ms, expire_timestamp_ms })
}

/// Decodes a `GroupMetadataValue` of versions 0 to 3.
pub fn decode_group_value(value: &[u8]) -> Result<GroupValue, CoordinatorError> {
    let mut r = Reader::new(value, "group metadata value");
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(CoordinatorError::UnsupportedValueVersion { what: "group metadata value", version });
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.length()?;
    // Each member takes at least 22 bytes, so a huge count in garbage fails before allocating.
    let mut members = Vec::with_capacity(count.min(r.remaining() / 22));
    for _ in 0..count {
        members.push(decode_member(&mut r, version)?);
    }
    Ok(GroupValue { protocol_type, generation, protocol, leader, current_state_timestamp_ms, members })
}

fn decode_member(r: &mut Reader<'_>, version: i16) -> Result<MemberValue, CoordinatorError> {
    let member_id = r.string()?;
    let group_instance_id = if version >= 3 { r.nullable_string()? } else { None };
    let client_id = r.string()?;
    let client_host = r.string()?;
    let rebalance_timeout = if version >= 1 { Some(r.i32()?) } else { None };
    let session_timeout_ms = r.i32()?;
    Ok(MemberValue {
        member_id,
        group_instance_id,
        client_id,
        client_host,
        // v0 predates the rebalance timeout; Kafka used the session timeout for both.
        rebalance_timeout_ms: rebalance_timeout.unwrap_or(session_timeout_ms),
        session_timeout_ms,
        subscription: r.bytes()?,
        assignment: r.bytes()?,
    })
}

/// Strings longer than an i16 length can say are cut at a character boundary: the broker's
/// request decoding bounds the strings that matter (ids, topics), so this only guards
/// against panicking on pathological client ids.
pub(crate) fn put_string(buf: &mut BytesMut, s: &str) {
    let mut end = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    buf.put_i16(i16::try_from(end).unwrap_or(i16::MAX));
    buf.put_slice(&s.as_bytes()[..end]);
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
    buf.put_slice(b);
}

/// A bounds-checked big-endian cursor: garbage yields errors, never panics.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    position: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, position: 0, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.position
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CoordinatorError> {
        if self.remaining() < n {
            return Err(CoordinatorError::Truncated { what: self.what, position: self.position, needed: n });
        }
        let slice = &self.data[self.position..self.position + n];
        self.position += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CoordinatorError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, CoordinatorError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, CoordinatorError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, CoordinatorError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn length(&mut self) -> Result<usize, CoordinatorError> {
        let position = self.position;
        let length = self.i32()?;
        usize::try_from(length).map_err(|_| CoordinatorError::NegativeLength { what: self.what, position, length })
    }

    fn nullable_string(&mut self) -> Result<Option<String>, CoordinatorError> {
        let position = self.position;
        let length = self.i16()?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| CoordinatorError::NegativeLength {
            what: self.what,
            position,
            length: i32::from(length),
        })?;
        let raw = self.take(length)?;
        let s = std::str::from_utf8(raw).map_err(|_| CoordinatorError::InvalidUtf8 { what: self.what })?;
        Ok(Some(s.to_owned()))
    }

    pub(crate) fn string(&mut self) -> Result<String, CoordinatorError> {
        self.nullable_string()?.ok_or(CoordinatorError::UnexpectedNull { what: self.what })
    }

    fn bytes(&mut self) -> Result<Bytes, CoordinatorError> {
        let length = self.length()?;
        Ok(Bytes::copy_from_slice(self.take(length)?))
    }
}

/// The topics of a consumer-protocol subscription (`i16 version, [string] topics, …`), or
/// `None` if the bytes are not one: used to refuse deleting offsets of subscribed topics.
pub(crate) fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader::new(metadata, "consumer subscription");
    let version = r.i16().ok()?;
    if version < 0 {
        return None;
    }
    let count = r.length().ok()?;
    let mut topics = Vec::with_capacity(count.min(r.remaining() / 2));
    for _ in 0..count {
        topics.push(r.string().ok()?);
    }
    Some(topics)
}
