//! InitProducerId: for idempotent producers, a producer id never handed out before (ids
//! come from blocks reserved in the metadata log) and epoch 0; for transactional ones,
//! the transaction coordinator's id and a bumped epoch that fences older instances.
//! As in Kafka, a transactional id needs WRITE on it; an idempotent producer needs
//! IDEMPOTENT_WRITE on the cluster or WRITE on some topic.

use gregor_coordinator::txn::ProducerIdAndEpoch;
use gregor_protocol::kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, txn_error, RequestContext};
use crate::authz::{Op, Res};
use crate::broker::now_ms;
use crate::BrokerError;

/// First version answering PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 4;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: InitProducerIdRequest,
) -> Result<InitProducerIdResponse, BrokerError> {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    let refused = match request.transactional_id.as_ref() {
        Some(id) => (!ctx.allowed(Op::Write, Res::TransactionalId, id))
            .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        None => (!ctx.allowed_on_cluster(Op::IdempotentWrite) && !may_write_any_topic(ctx))
            .then_some(ResponseError::ClusterAuthorizationFailed),
    };
    if let Some(error) = refused {
        return Ok(response.with_error_code(error.code()));
    }
    let broker = ctx.broker.clone();
    let Some(transactional_id) = request.transactional_id.as_ref().map(|t| t.0.to_string()) else {
        return match blocking(move || broker.next_producer_id()).await {
            Ok(id) => Ok(response.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
            Err(e) => {
                tracing::warn!(error = %e, "allocating a producer id failed");
                Ok(response.with_error_code(e.code()))
            }
        };
    };
    let expected = ProducerIdAndEpoch { producer_id: request.producer_id.0, producer_epoch: request.producer_epoch };
    let timeout_ms = request.transaction_timeout_ms;
    let outcome = blocking(move || {
        let id = transactional_id.as_str();
        broker.txns.run(&broker, id, |shard| {
            let mut allocate = || broker.next_producer_id().map_err(|e| e.response_error());
            shard.init_producer_id(id, timeout_ms, expected, &mut allocate, now_ms())
        })
    })
    .await;
    Ok(match outcome {
        Ok(id) => response.with_producer_id(ProducerId(id.producer_id)).with_producer_epoch(id.producer_epoch),
        Err(e) => response.with_error_code(txn_error(e, ctx.api_version, FENCED_SINCE)),
    })
}

/// Kafka's `authorizeByResourceType(WRITE, TOPIC)`: whether some topic, named or by
/// pattern, may be written by the caller (always, without an authorizer).
fn may_write_any_topic(ctx: &RequestContext<'_>) -> bool {
    !ctx.broker.authz.is_enabled()
        || ctx.broker.authz.authorizer(&ctx.broker.image()).authorize_any(
            ctx.principal,
            ctx.host,
            Op::Write,
            Res::Topic,
        )
}
