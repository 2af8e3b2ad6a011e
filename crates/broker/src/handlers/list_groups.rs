//! ListGroups: every group of every coordinator shard, filtered by state (v4+) and type (v5+).

use gregor_protocol::kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use super::{blocking, RequestContext};
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
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    Ok(ListGroupsResponse::default().with_groups(groups))
}
