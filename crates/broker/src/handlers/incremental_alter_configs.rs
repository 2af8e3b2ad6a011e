//! IncrementalAlterConfigs: SET, DELETE, APPEND, SUBTRACT on topic configs and on dynamic
//! broker configs, validated, stored in the metadata log and applied to the logs at once.

use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use gregor_protocol::kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::describe_configs::refusal;
use super::{blocking, error_parts, RequestContext};
use crate::authz::Op;
use crate::config::change::ConfigOp;
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: IncrementalAlterConfigsRequest,
) -> Result<IncrementalAlterConfigsResponse, BrokerError> {
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
                let changes: Result<Vec<_>, _> = r
                    .configs
                    .iter()
                    .map(|c| {
                        Ok((
                            c.name.to_string(),
                            ConfigOp::from_code(c.config_operation, c.value.as_ref().map(ToString::to_string))?,
                        ))
                    })
                    .collect();
                let outcome = changes.and_then(|changes| {
                    broker.alter_configs(
                        (r.resource_type, r.resource_name.as_str()),
                        &changes,
                        false,
                        request.validate_only,
                    )
                });
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
    Ok(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
