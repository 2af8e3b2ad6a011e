//! The api-key dispatch table. One list names every API the broker serves, its request
//! type and its handler; the ApiVersions answer is derived from the same list, so the
//! broker never advertises a version it cannot decode and answer.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_body, decode_request_header, encode_response, RequestPrefix};
use gregor_protocol::kafka_protocol::messages::{self as m, ApiKey};
use gregor_protocol::kafka_protocol::protocol::Message;

use crate::broker::Broker;
use crate::handlers::{self, RequestContext};
use crate::BrokerError;

/// One advertised API and its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub api_key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

impl ApiRange {
    /// Decodes a request body of this API at `version` the way `handle_frame` does before
    /// calling the handler (the legacy Produce path and the acks peek included), so the
    /// fuzz targets (crates/fuzz-targets) reach every served API's decoder.
    pub fn decode_request(&self, version: i16, body: &mut Bytes) -> Result<(), BrokerError> {
        if self.api_key == ApiKey::Produce && version < m::ProduceRequest::VERSIONS.min {
            let header = m::RequestHeader::default().with_request_api_version(version);
            return handlers::produce::refuse_legacy(&header, body).map(drop).map_err(Into::into);
        }
        if self.api_key == ApiKey::Produce {
            let _ = handlers::produce::acks_of(body, version);
        }
        decode_body_of(self.api_key, version, body)
    }
}

macro_rules! api_table {
    (@max $req:ty) => { <$req as Message>::VERSIONS.max };
    (@max $req:ty, $max:expr) => { $max };
    ($( $key:ident => $req:ty, $handler:path, min $min:expr $(, max $max:expr)?; )*) => {
        /// Every API this broker serves, with the versions it advertises in ApiVersions.
        pub fn supported_apis() -> &'static [ApiRange] {
            const APIS: &[ApiRange] = &[
                $( ApiRange { api_key: ApiKey::$key, min_version: $min, max_version: api_table!(@max $req $(, $max)?) }, )*
            ];
            APIS
        }

        async fn route(ctx: &RequestContext<'_>, api_key: ApiKey, body: &mut Bytes) -> Result<BytesMut, BrokerError> {
            let version = ctx.api_version;
            match api_key {
                $( ApiKey::$key => {
                    let request: $req = decode_body(body, version)?;
                    let response = $handler(ctx, request).await?;
                    Ok(encode_response(api_key, version, ctx.header.correlation_id, &response)?)
                } )*
                _ => Err(BrokerError::InvalidRequest(format!("api key {api_key:?} is not served"))),
            }
        }

        /// Decodes a body into the type `route` gives the handler, and drops it.
        fn decode_body_of(api_key: ApiKey, version: i16, body: &mut Bytes) -> Result<(), BrokerError> {
            match api_key {
                $( ApiKey::$key => decode_body::<$req>(body, version).map(drop).map_err(Into::into), )*
                _ => Err(BrokerError::InvalidRequest(format!("api key {api_key:?} is not served"))),
            }
        }
    };
}

// Produce is advertised from v0 although v0-2 are refused (see `handlers::produce`):
// librdkafka disables compression when a broker's minimum Produce version is above 0.
// `max` caps an API below the crate's newest version: EndTxn v5, AddPartitionsToTxn v5
// and TxnOffsetCommit v5 belong to transaction protocol v2 (KIP-890 part 2: an epoch
// bump per transaction, partitions added implicitly), which Gregor does not offer.
api_table! {
    Produce => m::ProduceRequest, handlers::produce::handle, min 0;
    Fetch => m::FetchRequest, handlers::fetch::handle, min 4;
    ListOffsets => m::ListOffsetsRequest, handlers::list_offsets::handle, min 1;
    Metadata => m::MetadataRequest, handlers::metadata::handle, min 0;
    OffsetCommit => m::OffsetCommitRequest, handlers::offset_commit::handle, min 2;
    OffsetFetch => m::OffsetFetchRequest, handlers::offset_fetch::handle, min 1;
    FindCoordinator => m::FindCoordinatorRequest, handlers::find_coordinator::handle, min 0;
    JoinGroup => m::JoinGroupRequest, handlers::join_group::handle, min 0;
    Heartbeat => m::HeartbeatRequest, handlers::heartbeat::handle, min 0;
    LeaveGroup => m::LeaveGroupRequest, handlers::leave_group::handle, min 0;
    SyncGroup => m::SyncGroupRequest, handlers::sync_group::handle, min 0;
    DescribeGroups => m::DescribeGroupsRequest, handlers::describe_groups::handle, min 0;
    ListGroups => m::ListGroupsRequest, handlers::list_groups::handle, min 0;
    ApiVersions => m::ApiVersionsRequest, handlers::api_versions::handle, min 0;
    SaslHandshake => m::SaslHandshakeRequest, handlers::sasl::handshake, min 0;
    SaslAuthenticate => m::SaslAuthenticateRequest, handlers::sasl::authenticate, min 0;
    CreateTopics => m::CreateTopicsRequest, handlers::create_topics::handle, min 2;
    DeleteTopics => m::DeleteTopicsRequest, handlers::delete_topics::handle, min 1;
    DeleteRecords => m::DeleteRecordsRequest, handlers::delete_records::handle, min 0;
    InitProducerId => m::InitProducerIdRequest, handlers::init_producer_id::handle, min 0;
    OffsetForLeaderEpoch => m::OffsetForLeaderEpochRequest, handlers::offset_for_leader_epoch::handle, min 2;
    AddPartitionsToTxn => m::AddPartitionsToTxnRequest, handlers::add_partitions_to_txn::handle, min 0, max 4;
    AddOffsetsToTxn => m::AddOffsetsToTxnRequest, handlers::add_offsets_to_txn::handle, min 0;
    EndTxn => m::EndTxnRequest, handlers::end_txn::handle, min 0, max 4;
    WriteTxnMarkers => m::WriteTxnMarkersRequest, handlers::write_txn_markers::handle, min 1;
    TxnOffsetCommit => m::TxnOffsetCommitRequest, handlers::txn_offset_commit::handle, min 0, max 4;
    DescribeAcls => m::DescribeAclsRequest, handlers::acls::describe, min 1;
    CreateAcls => m::CreateAclsRequest, handlers::acls::create, min 1;
    DeleteAcls => m::DeleteAclsRequest, handlers::acls::delete, min 1;
    DescribeConfigs => m::DescribeConfigsRequest, handlers::describe_configs::handle, min 1;
    AlterConfigs => m::AlterConfigsRequest, handlers::alter_configs::handle, min 0;
    DescribeLogDirs => m::DescribeLogDirsRequest, handlers::describe_log_dirs::handle, min 1;
    CreatePartitions => m::CreatePartitionsRequest, handlers::create_partitions::handle, min 0;
    DeleteGroups => m::DeleteGroupsRequest, handlers::delete_groups::handle, min 0;
    ElectLeaders => m::ElectLeadersRequest, handlers::elect_leaders::handle, min 0;
    OffsetDelete => m::OffsetDeleteRequest, handlers::offset_delete::handle, min 0;
    IncrementalAlterConfigs => m::IncrementalAlterConfigsRequest, handlers::incremental_alter_configs::handle, min 0;
    AlterPartitionReassignments => m::AlterPartitionReassignmentsRequest, handlers::alter_partition_reassignments::handle, min 0;
    ListPartitionReassignments => m::ListPartitionReassignmentsRequest, handlers::list_partition_reassignments::handle, min 0;
    DescribeUserScramCredentials => m::DescribeUserScramCredentialsRequest, handlers::scram_credentials::describe, min 0;
    AlterUserScramCredentials => m::AlterUserScramCredentialsRequest, handlers::scram_credentials::alter, min 0;
    DescribeCluster => m::DescribeClusterRequest, handlers::describe_cluster::handle, min 0;
    DescribeQuorum => m::DescribeQuorumRequest, handlers::describe_quorum::handle, min 0;
    DescribeProducers => m::DescribeProducersRequest, handlers::describe_producers::handle, min 0;
    DescribeTransactions => m::DescribeTransactionsRequest, handlers::describe_transactions::handle, min 0;
    ListTransactions => m::ListTransactionsRequest, handlers::list_transactions::handle, min 0;
    ConsumerGroupHeartbeat => m::ConsumerGroupHeartbeatRequest, handlers::consumer_group_heartbeat::handle, min 0;
    ConsumerGroupDescribe => m::ConsumerGroupDescribeRequest, handlers::consumer_group_describe::handle, min 0;
    DescribeTopicPartitions => m::DescribeTopicPartitionsRequest, handlers::describe_topic_partitions::handle, min 0;
    AddRaftVoter => m::AddRaftVoterRequest, handlers::raft_voters::add, min 0;
    RemoveRaftVoter => m::RemoveRaftVoterRequest, handlers::raft_voters::remove, min 0;
}

pub(crate) fn version_range(api_key: ApiKey) -> Option<ApiRange> {
    supported_apis().iter().copied().find(|a| a.api_key == api_key)
}

/// Handles one request frame. `Ok(None)` means no response is due (Produce with acks=0);
/// `Err` means the connection must be closed.
pub(crate) async fn handle_frame(
    broker: &Arc<Broker>,
    mut frame: Bytes,
    session: &crate::connection::ClientSession,
) -> Result<Option<BytesMut>, BrokerError> {
    let prefix = RequestPrefix::peek(&frame).ok_or_else(|| {
        BrokerError::InvalidRequest(format!("frame of {} bytes is shorter than a request header", frame.len()))
    })?;
    let Ok(api_key) = ApiKey::try_from(prefix.api_key) else {
        return Err(BrokerError::InvalidRequest(format!("unknown api key {}", prefix.api_key)));
    };
    let range = version_range(api_key)
        .ok_or_else(|| BrokerError::InvalidRequest(format!("api key {api_key:?} is not served")))?;
    if prefix.api_version < range.min_version || prefix.api_version > range.max_version {
        return unsupported_version(api_key, prefix, range);
    }
    if api_key == ApiKey::Produce && prefix.api_version < m::ProduceRequest::VERSIONS.min {
        let (_, header) = decode_request_header(&mut frame)?;
        return handlers::produce::refuse_legacy(&header, &mut frame).map_err(Into::into);
    }
    let (_, header) = decode_request_header(&mut frame)?;
    let ctx = RequestContext {
        broker,
        header: &header,
        api_version: header.request_api_version,
        peer: session.peer,
        listener: &session.listener.name,
        principal: session.principal(),
        host: &session.host,
    };
    tracing::trace!(api = ?api_key, version = ctx.api_version, principal = ctx.principal, listener = ctx.listener, "request");
    if api_key == ApiKey::Produce && handlers::produce::acks_of(&frame, header.request_api_version) == Some(0) {
        // acks=0: the client expects no response; errors are only logged.
        let _ = route(&ctx, api_key, &mut frame).await?;
        return Ok(None);
    }
    route(&ctx, api_key, &mut frame).await.map(Some)
}

/// SaslHandshake or SaslAuthenticate on a SASL listener: the connection's authenticator
/// answers. Returns the encoded response and, after a failed authentication, how long to
/// wait before closing.
pub(crate) async fn handle_sasl_frame(
    broker: &Arc<Broker>,
    auth: &mut crate::sasl::Authenticator,
    mut frame: Bytes,
) -> Result<(BytesMut, Option<std::time::Duration>), BrokerError> {
    let prefix = RequestPrefix::peek(&frame)
        .ok_or_else(|| BrokerError::InvalidRequest("a SASL frame shorter than a request header".into()))?;
    let api_key = ApiKey::try_from(prefix.api_key)
        .map_err(|_| BrokerError::InvalidRequest(format!("unknown api key {}", prefix.api_key)))?;
    let range = version_range(api_key)
        .ok_or_else(|| BrokerError::InvalidRequest(format!("api key {api_key:?} is not served")))?;
    if prefix.api_version < range.min_version || prefix.api_version > range.max_version {
        return Err(BrokerError::UnsupportedVersion { api: format!("{api_key:?}"), version: prefix.api_version });
    }
    let (_, header) = decode_request_header(&mut frame)?;
    let version = header.request_api_version;
    let correlation_id = header.correlation_id;
    if api_key == ApiKey::SaslHandshake {
        let request: m::SaslHandshakeRequest = decode_body(&mut frame, version)?;
        let answer = auth.handshake(&request, version);
        return Ok((encode_response(api_key, version, correlation_id, &answer.response)?, answer.close_after));
    }
    let request: m::SaslAuthenticateRequest = decode_body(&mut frame, version)?;
    let credentials = crate::sasl::image_credentials(broker);
    let answer = auth.authenticate(&credentials, &request, version, std::time::Instant::now());
    Ok((encode_response(api_key, version, correlation_id, &answer.response)?, answer.close_after))
}

/// KIP-511: an ApiVersions request of a version the broker lacks gets a v0 answer with
/// UNSUPPORTED_VERSION and the full table, so the client can retry with a version both
/// know. Other APIs outside their range close the connection, as Kafka does.
fn unsupported_version(
    api_key: ApiKey,
    prefix: RequestPrefix,
    range: ApiRange,
) -> Result<Option<BytesMut>, BrokerError> {
    if api_key == ApiKey::ApiVersions && prefix.api_version > range.max_version {
        let response =
            handlers::api_versions::response(gregor_protocol::kafka_protocol::ResponseError::UnsupportedVersion.code());
        return Ok(Some(encode_response(api_key, 0, prefix.correlation_id, &response)?));
    }
    Err(BrokerError::UnsupportedVersion { api: format!("{api_key:?}"), version: prefix.api_version })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/compatibility.md lists every API with the versions served; keep them equal.
    #[test]
    fn documented_versions_match_the_dispatch_table() {
        let doc = include_str!("../../../docs/compatibility.md");
        let start = doc.find("<!-- api-table:start -->").expect("table start marker");
        let end = doc.find("<!-- api-table:end -->").expect("table end marker");
        let mut documented = Vec::new();
        for row in doc[start..end].lines().filter(|l| l.starts_with("| ") && !l.starts_with("| key")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let key: i16 = cells[1].parse().expect("api key number");
            let (min, max) = cells[3].split_once('-').expect("min-max");
            documented.push((key, min.parse::<i16>().unwrap(), max.parse::<i16>().unwrap()));
        }
        let served: Vec<(i16, i16, i16)> =
            supported_apis().iter().map(|a| (a.api_key as i16, a.min_version, a.max_version)).collect();
        let mut sorted = served.clone();
        sorted.sort_unstable();
        assert_eq!(documented, sorted);
    }

    #[test]
    fn produce_is_advertised_from_version_zero() {
        let produce = version_range(ApiKey::Produce).expect("produce served");
        assert_eq!(produce.min_version, 0);
    }
}
