//! InitProducerId for idempotent producers: a producer id that was never handed out
//! before (ids come from blocks reserved in the metadata log) and epoch 0.

use gregor_protocol::kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, RequestContext};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: InitProducerIdRequest,
) -> Result<InitProducerIdResponse, BrokerError> {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        // Transactional producers need the transaction coordinator, which is not served
        // yet; FindCoordinator is not advertised, so clients fail before getting here.
        return Ok(response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()));
    }
    let broker = ctx.broker.clone();
    match blocking(move || broker.next_producer_id()).await {
        Ok(id) => Ok(response.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
        Err(e) => {
            tracing::warn!(error = %e, "allocating a producer id failed");
            Ok(response.with_error_code(e.code()))
        }
    }
}
