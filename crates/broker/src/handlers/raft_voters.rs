//! AddRaftVoter (API 80) and RemoveRaftVoter (API 81), KIP-853: change the metadata
//! quorum's voters at run time, so a failed controller machine can be replaced without
//! downtime. Any broker answers (it asks the active controller). A voter is added after
//! it caught up as an observer, through a joint configuration; the answer comes once the
//! new voter set is committed.
//!
//! Gregor's quorum has no directory ids yet: `VoterDirectoryId` is accepted and ignored.

use gregor_protocol::kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};
use gregor_protocol::kafka_protocol::ResponseError;

use gregor_protocol::kafka_protocol::protocol::StrBytes;

use super::{blocking, error_parts, str_bytes, RequestContext};
use crate::authz::Op;
use crate::controller::ControllerCommand;
use crate::BrokerError;

pub(crate) async fn add(
    ctx: &RequestContext<'_>,
    request: AddRaftVoterRequest,
) -> Result<AddRaftVoterResponse, BrokerError> {
    if let Some(failure) = unauthorized(ctx).or_else(|| wrong_cluster(ctx, request.cluster_id.as_deref())) {
        return Ok(AddRaftVoterResponse::default().with_error_code(failure.0).with_error_message(Some(failure.1)));
    }
    // Kafka's voters name their listeners: the one named in this node's
    // `controller.listener.names` (CONTROLLER by default), else the first.
    let names = ctx.broker.config.broker_str("controller.listener.names").to_ascii_uppercase();
    let named = |name: &str| names.split(',').map(str::trim).any(|n| n == name.to_ascii_uppercase() || n.is_empty());
    let listener = request.listeners.iter().find(|l| named(l.name.as_str())).or_else(|| request.listeners.first());
    let Some(listener) = listener else {
        let message = str_bytes("AddRaftVoter needs the new voter's controller listener");
        return Ok(AddRaftVoterResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(message)));
    };
    let command =
        ControllerCommand::AddVoter { node_id: request.voter_id, host: listener.host.to_string(), port: listener.port };
    let broker = ctx.broker.clone();
    let (code, message) = error_parts(&blocking(move || broker.metadata.execute(command)).await.map(drop));
    Ok(AddRaftVoterResponse::default().with_error_code(code).with_error_message(message))
}

pub(crate) async fn remove(
    ctx: &RequestContext<'_>,
    request: RemoveRaftVoterRequest,
) -> Result<RemoveRaftVoterResponse, BrokerError> {
    if let Some(failure) = unauthorized(ctx).or_else(|| wrong_cluster(ctx, request.cluster_id.as_deref())) {
        return Ok(RemoveRaftVoterResponse::default().with_error_code(failure.0).with_error_message(Some(failure.1)));
    }
    let command = ControllerCommand::RemoveVoter { node_id: request.voter_id };
    let broker = ctx.broker.clone();
    let (code, message) = error_parts(&blocking(move || broker.metadata.execute(command)).await.map(drop));
    Ok(RemoveRaftVoterResponse::default().with_error_code(code).with_error_message(message))
}

type Failure = (i16, StrBytes);

/// CLUSTER_AUTHORIZATION_FAILED without ALTER on the cluster, checked first as Kafka does.
fn unauthorized(ctx: &RequestContext<'_>) -> Option<Failure> {
    (!ctx.allowed_on_cluster(Op::Alter))
        .then(|| (ResponseError::ClusterAuthorizationFailed.code(), str_bytes("Cluster authorization failed.")))
}

/// INCONSISTENT_CLUSTER_ID when the request names another cluster (Kafka checks it).
fn wrong_cluster(ctx: &RequestContext<'_>, cluster_id: Option<&str>) -> Option<Failure> {
    let id = cluster_id.filter(|id| !id.is_empty() && *id != ctx.broker.cluster_id)?;
    let message = format!("this is cluster {}, not cluster {id}", ctx.broker.cluster_id);
    Some((ResponseError::InconsistentClusterId.code(), str_bytes(&message)))
}
