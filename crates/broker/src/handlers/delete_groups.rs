//! DeleteGroups: removes empty groups and their committed offsets (tombstones). As in
//! Kafka, each group needs DELETE on it (else GROUP_AUTHORIZATION_FAILED).

use gregor_protocol::kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use gregor_protocol::kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, RequestContext};
use crate::authz::{Op, Res};
use crate::broker::now_ms;
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteGroupsRequest,
) -> Result<DeleteGroupsResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let groups: Vec<_> =
        request.groups_names.into_iter().map(|g| (ctx.allowed(Op::Delete, Res::Group, &g), g)).collect();
    let results = blocking(move || {
        groups
            .iter()
            .map(|(allowed, g)| {
                if !allowed {
                    return DeletableGroupResult::default()
                        .with_group_id(g.clone())
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code());
                }
                let code = broker
                    .groups
                    .read_shard(&broker, g, |shard, index| {
                        let (code, outputs) = shard.delete_group(g, now_ms());
                        broker.groups.apply(&broker, index, shard, outputs);
                        code
                    })
                    .unwrap_or_else(|e| e.code());
                DeletableGroupResult::default().with_group_id(g.clone()).with_error_code(code)
            })
            .collect()
    })
    .await;
    Ok(DeleteGroupsResponse::default().with_results(results))
}
