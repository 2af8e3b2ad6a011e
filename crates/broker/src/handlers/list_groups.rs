//! ListGroups: every group of every coordinator shard, filtered by state (v4+) and type (v5+).
//! As in Kafka, DESCRIBE on the cluster lists every group; otherwise only the groups the
//! caller may DESCRIBE.

use gregor_protocol::kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use super::{blocking, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: ListGroupsRequest,
) -> Result<ListGroupsResponse, BrokerError> {
    let states: Vec<String> = request.states_filter.iter().map(ToString::to_string).collect();
    let types: Vec<String> = request.types_filter.iter().map(ToString::to_string).collect();
    let broker = ctx.broker.clone();
    let mut groups =
        blocking(move || broker.groups.each_shard(&broker, |shard| shard.list_groups(&states, &types))).await;
    if !ctx.allowed_on_cluster(Op::Describe) {
        groups.retain(|g| ctx.allowed(Op::Describe, Res::Group, &g.group_id));
    }
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    Ok(ListGroupsResponse::default().with_groups(groups))
}
