//! SaslHandshake and SaslAuthenticate that reach the dispatcher: on a listener without
//! SASL (a SASL listener's connection answers them itself, see `crate::sasl`), where Kafka
//! answers ILLEGAL_SASL_STATE.

use gregor_protocol::kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{str_bytes, RequestContext};
use crate::BrokerError;

pub(crate) async fn handshake(
    _ctx: &RequestContext<'_>,
    _request: SaslHandshakeRequest,
) -> Result<SaslHandshakeResponse, BrokerError> {
    Ok(SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code()))
}

pub(crate) async fn authenticate(
    ctx: &RequestContext<'_>,
    _request: SaslAuthenticateRequest,
) -> Result<SaslAuthenticateResponse, BrokerError> {
    let message = format!("listener {} does not use SASL", ctx.listener);
    Ok(SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(str_bytes(&message))))
}
