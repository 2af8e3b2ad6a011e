//! Target `request_frame`: the input is one request frame as a client writes it (length
//! prefix, request header, body), the same bytes the captured seed corpus holds. It goes
//! through what `dispatch::handle_frame` does before a handler runs: the length check, the
//! header for the api key's header version, the served version range, then the body
//! decoder the dispatch table names (the broker's own `ApiRange::decode_request`, so a
//! newly served API is fuzzed without touching this file).
//!
//! Invariant checked: a body the broker decodes re-encodes, and decoding that encoding
//! gives the same bytes again (a lossy decoder would make the broker answer, or store, a
//! request other than the one sent).

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_request_header, frame_length, RequestPrefix, LENGTH_PREFIX};
use gregor_protocol::kafka_protocol::messages::{self as m, ApiKey, RequestHeader};
use gregor_protocol::kafka_protocol::protocol::{Decodable, Encodable};

/// Kafka's default `socket.request.max.bytes`, the broker's frame cap.
const MAX_FRAME_BYTES: usize = 104_857_600;

/// Decodes one request frame the way the broker does; panics only on a broken invariant.
pub fn request_frame(data: &[u8]) {
    let Ok(Some(len)) = frame_length(data, MAX_FRAME_BYTES) else { return };
    // A prefix longer than the input still decodes what is there: mutations rarely keep
    // the prefix in step with the body, and a cut frame is the decoders' hardest case.
    let frame = &data[LENGTH_PREFIX..(LENGTH_PREFIX + len).min(data.len())];
    for header_version in 0..=2 {
        let _ = RequestHeader::decode(&mut Bytes::copy_from_slice(frame), header_version);
    }
    let Some(prefix) = RequestPrefix::peek(frame) else { return };
    let Some(api) = gregor_broker::supported_apis().iter().find(|a| a.api_key as i16 == prefix.api_key) else {
        return;
    };
    if prefix.api_version < api.min_version || prefix.api_version > api.max_version {
        return;
    }
    let mut frame = Bytes::copy_from_slice(frame);
    let Ok((api_key, header)) = decode_request_header(&mut frame) else { return };
    let body = frame.clone();
    if api.decode_request(header.request_api_version, &mut frame).is_ok() {
        round_trip(api_key, header.request_api_version, &body);
    }
}

/// Decode, encode, decode, encode: both encodings must be equal.
fn check<T: Decodable + Encodable>(mut body: Bytes, version: i16) {
    let Ok(first) = T::decode(&mut body, version) else { return };
    let mut once = BytesMut::new();
    first.encode(&mut once, version).expect("a decoded request encodes at its version");
    let second = T::decode(&mut once.clone().freeze(), version).expect("a re-encoded request decodes");
    let mut twice = BytesMut::new();
    second.encode(&mut twice, version).expect("a decoded request encodes at its version");
    assert_eq!(once, twice, "{} v{version} does not survive a round trip", std::any::type_name::<T>());
}

macro_rules! served_types {
    ($( $key:ident => $ty:ty, )*) => {
        fn round_trip(api_key: ApiKey, version: i16, body: &Bytes) {
            match api_key {
                $( ApiKey::$key => check::<$ty>(body.clone(), version), )*
                _ => {}
            }
        }

        /// The keys `round_trip` knows; a test keeps it equal to the dispatch table.
        #[cfg(test)]
        pub(crate) const ROUND_TRIP_KEYS: &[ApiKey] = &[$( ApiKey::$key, )*];
    };
}

served_types! {
    Produce => m::ProduceRequest,
    Fetch => m::FetchRequest,
    ListOffsets => m::ListOffsetsRequest,
    Metadata => m::MetadataRequest,
    OffsetCommit => m::OffsetCommitRequest,
    OffsetFetch => m::OffsetFetchRequest,
    FindCoordinator => m::FindCoordinatorRequest,
    JoinGroup => m::JoinGroupRequest,
    Heartbeat => m::HeartbeatRequest,
    LeaveGroup => m::LeaveGroupRequest,
    SyncGroup => m::SyncGroupRequest,
    DescribeGroups => m::DescribeGroupsRequest,
    ListGroups => m::ListGroupsRequest,
    ApiVersions => m::ApiVersionsRequest,
    CreateTopics => m::CreateTopicsRequest,
    DeleteTopics => m::DeleteTopicsRequest,
    DeleteRecords => m::DeleteRecordsRequest,
    InitProducerId => m::InitProducerIdRequest,
    OffsetForLeaderEpoch => m::OffsetForLeaderEpochRequest,
    AddPartitionsToTxn => m::AddPartitionsToTxnRequest,
    AddOffsetsToTxn => m::AddOffsetsToTxnRequest,
    EndTxn => m::EndTxnRequest,
    WriteTxnMarkers => m::WriteTxnMarkersRequest,
    TxnOffsetCommit => m::TxnOffsetCommitRequest,
    DescribeConfigs => m::DescribeConfigsRequest,
    AlterConfigs => m::AlterConfigsRequest,
    DescribeLogDirs => m::DescribeLogDirsRequest,
    CreatePartitions => m::CreatePartitionsRequest,
    DeleteGroups => m::DeleteGroupsRequest,
    ElectLeaders => m::ElectLeadersRequest,
    AlterPartitionReassignments => m::AlterPartitionReassignmentsRequest,
    ListPartitionReassignments => m::ListPartitionReassignmentsRequest,
    OffsetDelete => m::OffsetDeleteRequest,
    IncrementalAlterConfigs => m::IncrementalAlterConfigsRequest,
    DescribeAcls => m::DescribeAclsRequest,
    CreateAcls => m::CreateAclsRequest,
    DeleteAcls => m::DeleteAclsRequest,
    SaslHandshake => m::SaslHandshakeRequest,
    SaslAuthenticate => m::SaslAuthenticateRequest,
    DescribeUserScramCredentials => m::DescribeUserScramCredentialsRequest,
    AlterUserScramCredentials => m::AlterUserScramCredentialsRequest,
    DescribeCluster => m::DescribeClusterRequest,
    DescribeQuorum => m::DescribeQuorumRequest,
    DescribeProducers => m::DescribeProducersRequest,
    DescribeTransactions => m::DescribeTransactionsRequest,
    ListTransactions => m::ListTransactionsRequest,
    ConsumerGroupHeartbeat => m::ConsumerGroupHeartbeatRequest,
    ConsumerGroupDescribe => m::ConsumerGroupDescribeRequest,
    DescribeTopicPartitions => m::DescribeTopicPartitionsRequest,
    AddRaftVoter => m::AddRaftVoterRequest,
    RemoveRaftVoter => m::RemoveRaftVoterRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_covers_every_served_api() {
        for api in gregor_broker::supported_apis() {
            assert!(ROUND_TRIP_KEYS.contains(&api.api_key), "{:?} missing from served_types!", api.api_key);
        }
    }

    /// Every served API and version gets at least a valid empty-ish frame through.
    #[test]
    fn default_requests_of_every_served_version_decode() {
        for api in gregor_broker::supported_apis() {
            for version in api.min_version.max(0)..=api.max_version {
                let header =
                    RequestHeader::default().with_request_api_key(api.api_key as i16).with_request_api_version(version);
                let mut buf = BytesMut::new();
                buf.extend_from_slice(&[0; 4]);
                header.encode(&mut buf, api.api_key.request_header_version(version)).unwrap();
                buf.extend_from_slice(&[0; 64]);
                let len = (buf.len() - 4) as i32;
                buf[..4].copy_from_slice(&len.to_be_bytes());
                request_frame(&buf);
            }
        }
    }
}
