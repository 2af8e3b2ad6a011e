//! DescribeLogDirs: the data directory and the size of every partition in it.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use gregor_protocol::kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;

use super::{blocking, str_bytes, RequestContext};
use crate::authz::Op;
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeLogDirsRequest,
) -> Result<DescribeLogDirsResponse, BrokerError> {
    // DESCRIBE on the cluster, else no directories (and the error from v3, as Kafka).
    if !ctx.allowed_on_cluster(Op::Describe) {
        let response = DescribeLogDirsResponse::default();
        return Ok(if ctx.api_version >= 3 {
            response.with_error_code(ResponseError::ClusterAuthorizationFailed.code())
        } else {
            response
        });
    }
    let broker = ctx.broker.clone();
    let topics = blocking(move || {
        let wanted: Vec<TopicPartition> = match &request.topics {
            None => broker.replicas.hosted(),
            Some(topics) => topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| TopicPartition::new(t.topic.as_str(), *p)))
                .collect(),
        };
        let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
        for tp in wanted {
            if let Some(partition) = broker.replicas.get(&tp) {
                let size = broker.replicas.size_bytes(&partition);
                let entry = DescribeLogDirsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX));
                by_topic.entry(tp.topic.to_string()).or_default().push(entry);
            }
        }
        by_topic
            .into_iter()
            .map(|(name, mut partitions)| {
                partitions.sort_by_key(|p| p.partition_index);
                DescribeLogDirsTopic::default().with_name(TopicName(str_bytes(&name))).with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let dir = std::path::absolute(ctx.broker.config.data_dir()).unwrap_or_else(|_| ctx.broker.config.data_dir());
    // Disk totals would need statvfs (unsafe libc); -1 is the protocol's "unknown".
    let result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(&dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(-1)
        .with_usable_bytes(-1);
    Ok(DescribeLogDirsResponse::default().with_results(vec![result]))
}
