//! DescribeTopicPartitions (KIP-966): topic layout with paging by a cursor, for topics
//! with many partitions.

use gregor_metadata::TopicImage;
use gregor_protocol::kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{authorized_operations, str_bytes, RequestContext};
use crate::authz::{Op, Res};
use crate::handlers::metadata::{authorized_ops, is_internal};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeTopicPartitionsRequest,
) -> Result<DescribeTopicPartitionsResponse, BrokerError> {
    let image = ctx.broker.image();
    let mut names: Vec<String> = if request.topics.is_empty() {
        image.topic_names_sorted().iter().map(ToString::to_string).collect()
    } else {
        request.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    let (cursor_topic, cursor_partition) =
        request.cursor.as_ref().map_or((String::new(), 0), |c| (c.topic_name.to_string(), c.partition_index));
    let mut budget = usize::try_from(request.response_partition_limit.max(1)).unwrap_or(2000);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    // As Kafka: topics the caller may not describe are left out of an all-topics
    // answer, and answered TOPIC_AUTHORIZATION_FAILED (after the others, outside the
    // partition limit) when named; their existence is not looked at.
    let listing_all = request.topics.is_empty();
    let mut unauthorized = Vec::new();
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| *n >= cursor_topic)
        .filter(|n| {
            let allowed = ctx.allowed(Op::Describe, Res::Topic, n);
            if !allowed && !listing_all {
                unauthorized.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(TopicName(str_bytes(n))))
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                );
            }
            allowed
        })
        .collect();
    for name in names {
        let Some(topic) = image.topic(&name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(TopicName(str_bytes(&name))))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            );
            continue;
        };
        let first = if name == cursor_topic { cursor_partition } else { 0 };
        let partitions: Vec<_> = topic.partitions.range(first..).map(|(_, p)| p).collect();
        if partitions.len() > budget {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(str_bytes(&name)))
                    .with_partition_index(partitions[budget].partition),
            );
        }
        let taken = partitions.len().min(budget);
        let operations = authorized_ops(ctx, Res::Topic, &name, authorized_operations::TOPIC);
        topics.push(topic_entry(topic, &partitions[..taken], operations));
        budget -= taken;
        if next_cursor.is_some() || budget == 0 {
            break;
        }
    }
    topics.extend(unauthorized);
    Ok(DescribeTopicPartitionsResponse::default().with_topics(topics).with_next_cursor(next_cursor))
}

fn topic_entry(
    topic: &TopicImage,
    partitions: &[&gregor_metadata::PartitionRegistration],
    authorized_operations: i32,
) -> DescribeTopicPartitionsResponseTopic {
    let partitions = partitions
        .iter()
        .map(|p| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
                .with_eligible_leader_replicas(Some(vec![]))
                .with_last_known_elr(Some(vec![]))
        })
        .collect();
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(is_internal(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(authorized_operations)
}
