//! FindCoordinator: which broker coordinates a consumer group or a transactional id.
//! The coordinator is the leader of the key's partition of `__consumer_offsets` or
//! `__transaction_state`, as in Kafka; batched keys (v4+) get one entry each. As in
//! Kafka, finding a group's coordinator needs DESCRIBE on the group and a transactional
//! id's DESCRIBE on the id.

use gregor_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator;
use gregor_protocol::kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;

use super::{str_bytes, RequestContext};
use crate::authz::{Op, Res};
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
        KEY_TYPE_GROUP if !ctx.allowed(Op::Describe, Res::Group, key) => {
            refuse(ResponseError::GroupAuthorizationFailed, "Group authorization failed.")
        }
        KEY_TYPE_TRANSACTION if !ctx.allowed(Op::Describe, Res::TransactionalId, key) => {
            refuse(ResponseError::TransactionalIdAuthorizationFailed, "Transactional Id authorization failed.")
        }
        KEY_TYPE_GROUP if key.is_empty() => refuse(ResponseError::InvalidGroupId, "the group id is empty"),
        KEY_TYPE_TRANSACTION if key.is_empty() => {
            refuse(ResponseError::InvalidRequest, "the transactional id is empty")
        }
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => {
            // The leader of the key's partition of the internal topic; this broker until
            // the topic exists (its coordinator creates it on first use).
            let (topic, partition) = if key_type == KEY_TYPE_GROUP {
                ("__consumer_offsets", ctx.broker.groups.partition_for(key.as_str()))
            } else {
                ("__transaction_state", ctx.broker.txns.partition_for(key.as_str()))
            };
            match ctx.broker.leader_of(topic, partition, ctx.listener) {
                Some(Some((id, host, port))) => {
                    answer.with_node_id(BrokerId(id)).with_host(str_bytes(&host)).with_port(port)
                }
                // The coordinator has no listener of this name: Kafka answers the same.
                Some(None) => refuse(ResponseError::CoordinatorNotAvailable, "the coordinator has no such listener"),
                None => match ctx.broker.endpoints.iter().find(|e| e.name == ctx.listener) {
                    Some(me) => answer
                        .with_node_id(BrokerId(ctx.broker.node_id))
                        .with_host(str_bytes(&me.host))
                        .with_port(me.port),
                    None => refuse(ResponseError::CoordinatorNotAvailable, "no endpoint for this listener"),
                },
            }
        }
        _ => refuse(ResponseError::InvalidRequest, "unsupported coordinator key type"),
    }
}
