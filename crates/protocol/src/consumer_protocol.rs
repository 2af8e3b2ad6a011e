//! The consumer protocol's embedded bytes (a member's assignment), decoded for the
//! client's `groups describe` and the broker's admin API alike.

use bytes::Bytes;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;

use crate::ProtocolError;

/// Decodes a consumer protocol assignment (version, [(topic, [partition])], user data).
/// Empty bytes (a member not yet synced) decode to no partitions.
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<(String, Vec<i32>)>, ProtocolError> {
    if bytes.len() < 2 {
        return Ok(Vec::new());
    }
    let mut buf = bytes.clone();
    let version = i16::from_be_bytes([buf[0], buf[1]]).clamp(0, 3);
    let _ = bytes::Buf::get_i16(&mut buf);
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|source| ProtocolError::Malformed { what: "member assignment", source })?;
    Ok(assignment.assigned_partitions.into_iter().map(|tp| (tp.topic.0.to_string(), tp.partitions)).collect())
}
