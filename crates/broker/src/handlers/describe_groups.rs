//! DescribeGroups: state, protocol, and members with their metadata and assignments.

use gregor_protocol::kafka_protocol::messages::describe_groups_response::DescribedGroup;
use gregor_protocol::kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;

use super::{authorized_operations, blocking, RequestContext};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeGroupsRequest,
) -> Result<DescribeGroupsResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    let include_operations = request.include_authorized_operations;
    let groups = blocking(move || {
        request
            .groups
            .iter()
            .map(|g| {
                // v6 answers an unknown group with GROUP_ID_NOT_FOUND; older versions with "Dead".
                let described = broker.groups.read_shard(&broker, g, |shard, _| {
                    (version < 6 || shard.has_group(g))
                        .then(|| shard.describe_group(g))
                        .ok_or(ResponseError::GroupIdNotFound)
                });
                let group = described.and_then(|r| r).unwrap_or_else(|e| {
                    DescribedGroup::default()
                        .with_group_id(g.clone())
                        .with_group_state(StrBytes::from_static_str("Dead"))
                        .with_error_code(e.code())
                        .with_error_message(Some(StrBytes::from_string(e.to_string())))
                });
                for_version(group, version, include_operations)
            })
            .collect()
    })
    .await;
    Ok(DescribeGroupsResponse::default().with_groups(groups))
}

/// Drops what the client's version cannot carry.
fn for_version(mut group: DescribedGroup, version: i16, include_operations: bool) -> DescribedGroup {
    if version < 6 {
        group.error_message = None;
    }
    group.authorized_operations = if version >= 3 && include_operations {
        authorized_operations::GROUP
    } else {
        authorized_operations::NOT_REQUESTED
    };
    group
}
