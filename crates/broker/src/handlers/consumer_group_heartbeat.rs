//! ConsumerGroupHeartbeat (KIP-848): the new consumer group protocol, where the
//! coordinator computes assignments and each member reconciles towards its target
//! through heartbeats.

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{caller, RequestContext};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse, BrokerError> {
    let group = request.group_id.to_string();
    let topics = ctx.broker.topics_view();
    let answer = ctx
        .broker
        .groups
        .request(ctx.broker, &group, caller(ctx), move |shard, meta, now| {
            shard.consumer_group_heartbeat(meta, request, &topics, now)
        })
        .await;
    Ok(match answer {
        Ok(GroupResponse::ConsumerGroupHeartbeat(response)) => response,
        Ok(_) => error_response(ResponseError::UnknownServerError),
        Err(e) => error_response(e),
    })
}

fn error_response(error: ResponseError) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default().with_error_code(error.code())
}
