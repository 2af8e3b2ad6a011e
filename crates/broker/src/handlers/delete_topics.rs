//! DeleteTopics: by name (all versions) or by topic id (v6+). The log directories are
//! renamed with a `-delete` suffix at once and removed after.

use gregor_protocol::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use gregor_protocol::kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::authz::{Op, Res};
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
    // DESCRIBE and DELETE on each topic, by the name the id resolves to.
    let image = ctx.broker.image();
    let authorized: Vec<(bool, bool)> = wanted
        .iter()
        .map(|(name, id)| {
            let resolved = match name {
                Some(n) => Some(n.clone()),
                None => image.topic_by_id(id).map(|t| t.name.to_string()),
            };
            resolved.map_or((true, true), |n| {
                (ctx.allowed(Op::Describe, Res::Topic, &n), ctx.allowed(Op::Delete, Res::Topic, &n))
            })
        })
        .collect();
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    let responses = blocking(move || {
        wanted
            .into_iter()
            .zip(authorized)
            .map(|((name, id), auth)| delete_one(&broker, name, id, version, auth))
            .collect()
    })
    .await;
    Ok(DeleteTopicsResponse::default().with_responses(responses))
}

/// As Kafka's controller: by name, a topic the caller may not describe is
/// TOPIC_AUTHORIZATION_FAILED before its existence is looked at; by id, an unknown id is
/// UNKNOWN_TOPIC_ID and a topic the caller may not describe is refused without its name.
/// Either way deleting needs DELETE on the topic.
fn delete_one(
    broker: &Broker,
    name: Option<String>,
    topic_id: gregor_metadata::Uuid,
    version: i16,
    (describe, delete): (bool, bool),
) -> DeletableTopicResult {
    let refused = ResponseError::TopicAuthorizationFailed.code();
    let image = broker.image();
    let topic = match &name {
        Some(n) => image.topic(n),
        None => image.topic_by_id(&topic_id),
    };
    let result = DeletableTopicResult::default()
        .with_name(name.clone().map(|n| TopicName(str_bytes(&n))))
        .with_topic_id(topic_id);
    if name.is_some() && !describe {
        return result.with_error_code(refused);
    }
    let Some(topic) = topic else {
        let e = if name.is_none() { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
        return result.with_error_code(e.code());
    };
    if !describe {
        return result.with_error_code(refused);
    }
    if !delete {
        return result.with_name(Some(TopicName(str_bytes(&topic.name)))).with_error_code(refused);
    }
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
