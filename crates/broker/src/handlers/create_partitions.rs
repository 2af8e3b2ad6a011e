//! CreatePartitions: grows a topic; partitions can never be removed.

use gregor_metadata::control;
use gregor_protocol::kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use gregor_protocol::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use gregor_protocol::kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::authz::{Op, Res};
use crate::broker::Broker;
use crate::controller::ControllerCommand;
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: CreatePartitionsRequest,
) -> Result<CreatePartitionsResponse, BrokerError> {
    // ALTER on each topic, else TOPIC_AUTHORIZATION_FAILED (as Kafka, without a message).
    let alterable: Vec<bool> = request.topics.iter().map(|t| ctx.allowed(Op::Alter, Res::Topic, &t.name)).collect();
    let broker = ctx.broker.clone();
    let results = blocking(move || {
        request
            .topics
            .iter()
            .zip(alterable)
            .map(|(t, alterable)| {
                if alterable {
                    grow(&broker, t, request.validate_only)
                } else {
                    CreatePartitionsTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                }
            })
            .collect()
    })
    .await;
    Ok(CreatePartitionsResponse::default().with_results(results))
}

fn grow(broker: &Broker, t: &CreatePartitionsTopic, validate_only: bool) -> CreatePartitionsTopicResult {
    let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
    let assignments: Vec<Vec<i32>> =
        t.assignments.iter().flatten().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect();
    let name = t.name.to_string();
    let outcome = if validate_only {
        control::create_partitions(&broker.image(), &name, t.count, &assignments).map(|_| ()).map_err(BrokerError::from)
    } else {
        let command = ControllerCommand::CreatePartitions { name: name.clone(), total: t.count, assignments };
        broker.metadata.execute(command).and_then(|_| broker.reconcile())
    };
    match outcome {
        Ok(()) => result,
        Err(e) => result.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.to_string()))),
    }
}
