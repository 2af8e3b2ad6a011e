//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{caller, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: HeartbeatRequest,
) -> Result<HeartbeatResponse, BrokerError> {
    let group = request.group_id.to_string();
    // As in Kafka: READ on the group.
    if !ctx.allowed(Op::Read, Res::Group, &group) {
        return Ok(error_response(ResponseError::GroupAuthorizationFailed));
    }
    let answer = ctx
        .broker
        .groups
        .request(ctx.broker, &group, caller(ctx), move |shard, meta, now| shard.heartbeat(meta, request, now))
        .await;
    Ok(match answer {
        Ok(GroupResponse::Heartbeat(response)) => response,
        Ok(_) => error_response(ResponseError::UnknownServerError),
        Err(e) => error_response(e),
    })
}

fn error_response(error: ResponseError) -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(error.code())
}
