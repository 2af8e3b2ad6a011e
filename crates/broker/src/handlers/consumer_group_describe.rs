//! ConsumerGroupDescribe (KIP-848): epochs, assignor, and each member's current and
//! target assignment. As in Kafka, each group needs DESCRIBE on it (else
//! GROUP_AUTHORIZATION_FAILED), and with an authorizer a group whose assignments name a
//! topic the caller may not DESCRIBE is answered TOPIC_AUTHORIZATION_FAILED instead.

use gregor_protocol::kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use gregor_protocol::kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;

use super::authorized_operations::{GROUP, NOT_REQUESTED};
use super::describe_groups::group_operations;
use super::{blocking, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: ConsumerGroupDescribeRequest,
) -> Result<ConsumerGroupDescribeResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    let include_operations = request.include_authorized_operations;
    let groups: Vec<_> =
        request.group_ids.into_iter().map(|g| (ctx.allowed(Op::Describe, Res::Group, &g), g)).collect();
    let mut groups: Vec<DescribedGroup> = blocking(move || {
        let topics = broker.topics_view();
        groups
            .iter()
            .map(|(allowed, g)| {
                if !allowed {
                    return DescribedGroup::default()
                        .with_group_id(g.clone())
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                        .with_error_message(Some(StrBytes::from_static_str("Group authorization failed.")));
                }
                broker
                    .groups
                    .read_shard(&broker, g, |shard, _| shard.consumer_group_describe(g, &topics, version))
                    .map(|group| {
                        let operations = if include_operations { GROUP } else { NOT_REQUESTED };
                        group.with_authorized_operations(operations)
                    })
                    .unwrap_or_else(|e| DescribedGroup::default().with_group_id(g.clone()).with_error_code(e.code()))
            })
            .collect()
    })
    .await;
    if ctx.broker.authz.is_enabled() {
        for group in &mut groups {
            if group.error_code != 0 {
                continue;
            }
            if include_operations {
                group.authorized_operations = group_operations(ctx, &group.group_id);
            }
            let hidden = group
                .members
                .iter()
                .flat_map(|m| m.assignment.topic_partitions.iter().chain(&m.target_assignment.topic_partitions))
                .any(|tp| !ctx.allowed(Op::Describe, Res::Topic, &tp.topic_name));
            if hidden {
                *group = DescribedGroup::default()
                    .with_group_id(group.group_id.clone())
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "The group has described topic(s) that the client is not authorized to describe.",
                    )));
            }
        }
    }
    Ok(ConsumerGroupDescribeResponse::default().with_groups(groups))
}
