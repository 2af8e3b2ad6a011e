//! OffsetDelete: removes committed offsets of partitions the group no longer consumes.

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{caller, RequestContext};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetDeleteRequest,
) -> Result<OffsetDeleteResponse, BrokerError> {
    let group = request.group_id.to_string();
    let answer = ctx
        .broker
        .groups
        .request(ctx.broker, &group, caller(ctx), move |shard, meta, now| shard.offset_delete(meta, request, now))
        .await;
    Ok(match answer {
        Ok(GroupResponse::OffsetDelete(response)) => response,
        Ok(_) => error_response(ResponseError::UnknownServerError),
        Err(e) => error_response(e),
    })
}

fn error_response(error: ResponseError) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default().with_error_code(error.code())
}
