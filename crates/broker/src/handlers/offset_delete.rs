//! OffsetDelete: removes committed offsets of partitions the group no longer consumes.
//! As in Kafka, it needs DELETE on the group and READ on each topic.

use gregor_coordinator::GroupResponse;
use gregor_protocol::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{caller, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    mut request: OffsetDeleteRequest,
) -> Result<OffsetDeleteResponse, BrokerError> {
    let group = request.group_id.to_string();
    if !ctx.allowed(Op::Delete, Res::Group, &group) {
        return Ok(error_response(ResponseError::GroupAuthorizationFailed));
    }
    // Topics the caller may not READ are answered TOPIC_AUTHORIZATION_FAILED; the group's
    // answer for the others follows (a group-level error replaces both, as in Kafka).
    let (allowed, denied): (Vec<_>, Vec<_>) =
        std::mem::take(&mut request.topics).into_iter().partition(|t| ctx.allowed(Op::Read, Res::Topic, &t.name));
    request.topics = allowed;
    let denied: Vec<_> = denied
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    let answer = ctx
        .broker
        .groups
        .request(ctx.broker, &group, caller(ctx), move |shard, meta, now| shard.offset_delete(meta, request, now))
        .await;
    Ok(match answer {
        Ok(GroupResponse::OffsetDelete(mut response)) => {
            if response.error_code == 0 {
                response.topics.splice(0..0, denied);
            }
            response
        }
        Ok(_) => error_response(ResponseError::UnknownServerError),
        Err(e) => error_response(e),
    })
}

fn error_response(error: ResponseError) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default().with_error_code(error.code())
}
