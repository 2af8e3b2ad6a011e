//! AlterConfigs (the legacy, non-incremental form): the given configs replace all dynamic
//! configs of the resource; keys not named return to their defaults.

use gregor_protocol::kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use gregor_protocol::kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::describe_configs::refusal;
use super::{blocking, error_parts, RequestContext};
use crate::authz::Op;
use crate::config::change::ConfigOp;
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterConfigsRequest,
) -> Result<AlterConfigsResponse, BrokerError> {
    // ALTER_CONFIGS on each resource, as Kafka checks it (the error without a message).
    let refused: Vec<Option<i16>> = request
        .resources
        .iter()
        .map(|r| refusal(ctx, Op::AlterConfigs, r.resource_type, &r.resource_name).map(|(e, _)| e.code()))
        .collect();
    let broker = ctx.broker.clone();
    let responses = blocking(move || {
        request
            .resources
            .iter()
            .zip(refused)
            .map(|(r, refused)| {
                if let Some(code) = refused {
                    return AlterConfigsResourceResponse::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name.clone())
                        .with_error_code(code);
                }
                let changes: Vec<_> = r
                    .configs
                    .iter()
                    .map(|c| {
                        let op = c.value.as_ref().map_or(ConfigOp::Delete, |v| ConfigOp::Set(v.to_string()));
                        (c.name.to_string(), op)
                    })
                    .collect();
                let outcome = broker.alter_configs(
                    (r.resource_type, r.resource_name.as_str()),
                    &changes,
                    true,
                    request.validate_only,
                );
                let (code, message) = error_parts(&outcome);
                AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect()
    })
    .await;
    Ok(AlterConfigsResponse::default().with_responses(responses))
}
