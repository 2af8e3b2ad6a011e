//! EndTxn: commits or aborts the producer's transaction. The decision is durable in
//! `__transaction_state` and every marker is written before the answer (see
//! `txn_coordinator`). As in Kafka, it needs WRITE on the transactional id.

use gregor_protocol::kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, txn_error, RequestContext};
use crate::authz::{Op, Res};
use crate::broker::now_ms;
use crate::BrokerError;

/// First version answering PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

pub(crate) async fn handle(ctx: &RequestContext<'_>, request: EndTxnRequest) -> Result<EndTxnResponse, BrokerError> {
    if !ctx.allowed(Op::Write, Res::TransactionalId, &request.transactional_id) {
        return Ok(EndTxnResponse::default().with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()));
    }
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    let id = request.transactional_id.0.to_string();
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let outcome = blocking(move || {
        broker.txns.run(&broker, &id, |shard| {
            match shard.end_txn(&id, producer_id, epoch, request.committed, now_ms()) {
                Ok(step) => (Ok(()), step),
                Err(e) => (Err(e), Default::default()),
            }
        })
    })
    .await;
    let response = EndTxnResponse::default().with_producer_id(ProducerId(producer_id)).with_producer_epoch(epoch);
    Ok(match outcome {
        Ok(()) => response,
        Err(e) => response.with_error_code(txn_error(e, version, FENCED_SINCE)),
    })
}
