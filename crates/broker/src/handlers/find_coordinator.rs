//! FindCoordinator: which broker coordinates a consumer group or a transactional id.
//! With one node the answer is always this broker; batched keys (v4+) get one entry each.

use gregor_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator;
use gregor_protocol::kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;

use super::{str_bytes, RequestContext};
use crate::BrokerError;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, BrokerError> {
    if ctx.api_version >= 4 {
        let coordinators = request.coordinator_keys.iter().map(|key| coordinator(ctx, key, request.key_type)).collect();
        return Ok(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    let found = coordinator(ctx, &request.key, request.key_type);
    let response = FindCoordinatorResponse::default()
        .with_error_code(found.error_code)
        .with_node_id(found.node_id)
        .with_host(found.host)
        .with_port(found.port);
    Ok(if ctx.api_version >= 1 { response.with_error_message(found.error_message) } else { response })
}

fn coordinator(ctx: &RequestContext<'_>, key: &StrBytes, key_type: i8) -> Coordinator {
    let answer = Coordinator::default().with_key(key.clone());
    let refuse = |error: ResponseError, message: &str| {
        answer
            .clone()
            .with_node_id(BrokerId(-1))
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message)))
    };
    match key_type {
        KEY_TYPE_GROUP if key.is_empty() => refuse(ResponseError::InvalidGroupId, "the group id is empty"),
        KEY_TYPE_TRANSACTION if key.is_empty() => {
            refuse(ResponseError::InvalidRequest, "the transactional id is empty")
        }
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => answer
            .with_node_id(BrokerId(ctx.broker.node_id))
            .with_host(str_bytes(&ctx.broker.advertised_host))
            .with_port(ctx.broker.advertised_port),
        _ => refuse(ResponseError::InvalidRequest, "unsupported coordinator key type"),
    }
}
