//! JoinGroup: joins a member to a classic group; the answer waits for the rebalance to complete.

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{caller, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: JoinGroupRequest,
) -> Result<JoinGroupResponse, BrokerError> {
    let group = request.group_id.to_string();
    // As in Kafka: READ on the group.
    if !ctx.allowed(Op::Read, Res::Group, &group) {
        return Ok(error_response(ResponseError::GroupAuthorizationFailed));
    }
    let answer = ctx
        .broker
        .groups
        .request(ctx.broker, &group, caller(ctx), move |shard, meta, now| shard.join_group(meta, request, now))
        .await;
    Ok(match answer {
        Ok(GroupResponse::Join(response)) => response,
        Ok(_) => error_response(ResponseError::UnknownServerError),
        Err(e) => error_response(e),
    })
}

fn error_response(error: ResponseError) -> JoinGroupResponse {
    JoinGroupResponse::default().with_error_code(error.code())
}
