//! DeleteTopics: by name (all versions) or by topic id (v6+). The log directories are
//! renamed with a `-delete` suffix at once and removed after.

use gregor_protocol::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use gregor_protocol::kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::broker::Broker;
use crate::controller::ControllerCommand;
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse, BrokerError> {
    let wanted: Vec<(Option<String>, gregor_metadata::Uuid)> = if ctx.api_version >= 6 {
        request.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.0.to_string()), gregor_metadata::Uuid::nil())).collect()
    };
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    let responses =
        blocking(move || wanted.into_iter().map(|(name, id)| delete_one(&broker, name, id, version)).collect()).await;
    Ok(DeleteTopicsResponse::default().with_responses(responses))
}

fn delete_one(
    broker: &Broker,
    name: Option<String>,
    topic_id: gregor_metadata::Uuid,
    version: i16,
) -> DeletableTopicResult {
    let image = broker.image();
    let topic = match &name {
        Some(n) => image.topic(n),
        None => image.topic_by_id(&topic_id),
    };
    let result = DeletableTopicResult::default()
        .with_name(name.clone().map(|n| TopicName(str_bytes(&n))))
        .with_topic_id(topic_id);
    let Some(topic) = topic else {
        let e = if name.is_none() { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
        return result.with_error_code(e.code());
    };
    let result = result.with_name(Some(TopicName(str_bytes(&topic.name)))).with_topic_id(topic.topic_id);
    if !broker.config.broker_bool("delete.topic.enable") {
        return result.with_error_code(ResponseError::TopicDeletionDisabled.code());
    }
    let name = topic.name.to_string();
    let outcome = broker.metadata.execute(ControllerCommand::DeleteTopic { name }).and_then(|_| broker.reconcile());
    match outcome {
        Ok(()) => result,
        Err(e) if version >= 5 => result.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.to_string()))),
        Err(e) => result.with_error_code(e.code()),
    }
}
