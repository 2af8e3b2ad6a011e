//! ConsumerGroupDescribe (KIP-848): epochs, assignor, and each member's current and
//! target assignment.

use gregor_protocol::kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use gregor_protocol::kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

use super::authorized_operations::{GROUP, NOT_REQUESTED};
use super::{blocking, RequestContext};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: ConsumerGroupDescribeRequest,
) -> Result<ConsumerGroupDescribeResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    let include_operations = request.include_authorized_operations;
    let groups = blocking(move || {
        let topics = broker.topics_view();
        request
            .group_ids
            .iter()
            .map(|g| {
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
    Ok(ConsumerGroupDescribeResponse::default().with_groups(groups))
}
