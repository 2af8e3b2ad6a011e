//! DescribeGroups: state, protocol, and members with their metadata and assignments.
//! As in Kafka, each group needs DESCRIBE on it (else GROUP_AUTHORIZATION_FAILED in its
//! entry), and its authorized operations are the caller's on it.

use gregor_protocol::kafka_protocol::messages::describe_groups_response::DescribedGroup;
use gregor_protocol::kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;

use super::{authorized_operations, blocking, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeGroupsRequest,
) -> Result<DescribeGroupsResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    let include_operations = request.include_authorized_operations;
    let groups: Vec<_> = request.groups.into_iter().map(|g| (ctx.allowed(Op::Describe, Res::Group, &g), g)).collect();
    let mut groups: Vec<DescribedGroup> = blocking(move || {
        groups
            .iter()
            .map(|(allowed, g)| {
                if !allowed {
                    let group = DescribedGroup::default()
                        .with_group_id(g.clone())
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                        .with_error_message(Some(StrBytes::from_static_str("Group authorization failed.")));
                    return for_version(group, version, false);
                }
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
    // With an authorizer, Kafka reports the caller's operations on each group found.
    if version >= 3 && include_operations && ctx.broker.authz.is_enabled() {
        for group in &mut groups {
            group.authorized_operations = if group.error_code == 0 {
                group_operations(ctx, &group.group_id)
            } else {
                authorized_operations::NOT_REQUESTED
            };
        }
    }
    Ok(DescribeGroupsResponse::default().with_groups(groups))
}

/// The caller's operations on a group, as Kafka's authorized-operations bit field.
pub(crate) fn group_operations(ctx: &RequestContext<'_>, group: &str) -> i32 {
    Res::Group
        .supported_operations()
        .iter()
        .filter(|&&op| ctx.allowed(op, Res::Group, group))
        .fold(0, |bits, op| bits | (1 << op.code()))
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
