//! DescribeCluster: the cluster id, the controller and the registered brokers.
//!
//! As Kafka's brokers in KRaft mode, the controller id given to clients is an alive
//! broker (this one), not the active controller: clients cannot reach the controllers,
//! and every broker forwards controller requests to the active one. The active
//! controller is what DescribeQuorum reports (`gregor cluster quorum`).

use gregor_protocol::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use gregor_protocol::kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use gregor_protocol::kafka_protocol::ResponseError;

use super::metadata::cluster_authorized_ops;
use super::{str_bytes, RequestContext};
use crate::BrokerError;

/// Kafka's `EndpointType.BROKER`; controllers are not reachable on this listener.
const ENDPOINT_BROKER: i8 = 1;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeClusterRequest,
) -> Result<DescribeClusterResponse, BrokerError> {
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&ctx.broker.cluster_id))
        .with_controller_id(BrokerId(ctx.broker.node_id));
    if ctx.api_version >= 1 && request.endpoint_type != ENDPOINT_BROKER {
        return Ok(response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(str_bytes("only broker endpoints are served"))));
    }
    response.brokers = ctx
        .broker
        .image()
        .brokers
        .values()
        // v2 (KIP-1073) may ask for fenced brokers too, marked as such.
        .filter(|b| !b.fenced || (ctx.api_version >= 2 && request.include_fenced_brokers))
        .filter_map(|b| Some((b, b.endpoint(ctx.listener)?)))
        .map(|(b, (host, port))| {
            let mut broker = DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(str_bytes(host))
                .with_port(port)
                .with_rack(b.rack.as_deref().map(str_bytes));
            let epoch = bytes::Bytes::copy_from_slice(&b.epoch.to_be_bytes());
            let _ = broker.unknown_tagged_fields.insert(gregor_protocol::BROKER_EPOCH_TAG, epoch);
            if ctx.api_version >= 2 {
                broker.with_is_fenced(b.fenced)
            } else {
                broker
            }
        })
        .collect();
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = cluster_authorized_ops(ctx);
    }
    Ok(response)
}
