//! AddOffsetsToTxn: the `__consumer_offsets` partition of the group joins the
//! transaction, so TxnOffsetCommit may write there and the markers reach it. As in
//! Kafka, it needs WRITE on the transactional id and READ on the group.

use gregor_protocol::kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, txn_error, RequestContext};
use crate::authz::{Op, Res};
use crate::broker::now_ms;
use crate::group_coordinator::OFFSETS_TOPIC;
use crate::BrokerError;

const FENCED_SINCE: i16 = 2;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: AddOffsetsToTxnRequest,
) -> Result<AddOffsetsToTxnResponse, BrokerError> {
    let refused = if !ctx.allowed(Op::Write, Res::TransactionalId, &request.transactional_id) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.allowed(Op::Read, Res::Group, &request.group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(error) = refused {
        return Ok(AddOffsetsToTxnResponse::default().with_error_code(error.code()));
    }
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    let id = request.transactional_id.0.to_string();
    let partitions = [(OFFSETS_TOPIC.to_owned(), broker.groups.partition_for(&request.group_id))];
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let outcome = blocking(move || {
        broker.txns.run(&broker, &id, |shard| {
            match shard.add_partitions(&id, producer_id, epoch, &partitions, now_ms()) {
                Ok(step) => (Ok(()), step),
                Err(e) => (Err(e), Default::default()),
            }
        })
    })
    .await;
    let code = outcome.err().map_or(0, |e| txn_error(e, version, FENCED_SINCE));
    Ok(AddOffsetsToTxnResponse::default().with_error_code(code))
}
