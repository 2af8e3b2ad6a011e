//! Partition reassignment (kafka-reassign-partitions.sh's requests): AlterPartitionReassignments
//! and ListPartitionReassignments, sent to the controller.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use gregor_protocol::kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use gregor_protocol::kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;

use crate::client::Client;
use crate::error::{check, Result};

const TIMEOUT_MS: i32 = 30_000;

/// A partition's reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// One partition's answer: `(topic, partition, error code, message)`.
pub type PartitionAnswer = (String, i32, i16, Option<String>);

fn by_topic<T: Clone>(items: &[(String, i32, T)]) -> BTreeMap<&str, Vec<(i32, T)>> {
    let mut out: BTreeMap<&str, Vec<(i32, T)>> = BTreeMap::new();
    for (topic, partition, value) in items {
        out.entry(topic.as_str()).or_default().push((*partition, value.clone()));
    }
    out
}

impl Client {
    /// AlterPartitionReassignments: per partition its target replicas, or `None` to cancel
    /// the reassignment in progress. `allow_rf_change: false` makes the controller refuse
    /// a target of another size (KIP-860).
    pub async fn alter_partition_reassignments(
        &mut self,
        targets: &[(String, i32, Option<Vec<i32>>)],
        allow_rf_change: bool,
    ) -> Result<Vec<PartitionAnswer>> {
        let topics = by_topic(targets)
            .into_iter()
            .map(|(topic, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(p, replicas)| {
                        let replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
                        ReassignablePartition::default().with_partition_index(p).with_replicas(replicas)
                    })
                    .collect();
                ReassignableTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(partitions)
            })
            .collect();
        let request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(TIMEOUT_MS)
            .with_allow_replication_factor_change(allow_rf_change)
            .with_topics(topics);
        let response = self.controller().await?.send(&request, None).await?;
        let message = response.error_message.as_ref().map(ToString::to_string);
        check(response.error_code, message.as_deref(), || "cannot reassign partitions".to_owned())?;
        Ok(response
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let message = p.error_message.as_ref().map(ToString::to_string);
                    (t.name.0.to_string(), p.partition_index, p.error_code, message)
                })
            })
            .collect())
    }

    /// ListPartitionReassignments of `partitions` (`None`: every partition).
    pub async fn list_partition_reassignments(
        &mut self,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<OngoingReassignment>> {
        let topics = partitions.map(|list| {
            let named: Vec<(String, i32, ())> = list.iter().map(|(t, p)| (t.clone(), *p, ())).collect();
            by_topic(&named)
                .into_iter()
                .map(|(topic, partitions)| {
                    ListPartitionReassignmentsTopics::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                        .with_partition_indexes(partitions.into_iter().map(|(p, ())| p).collect())
                })
                .collect()
        });
        let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(TIMEOUT_MS).with_topics(topics);
        let response = self.controller().await?.send(&request, None).await?;
        let message = response.error_message.as_ref().map(ToString::to_string);
        check(response.error_code, message.as_deref(), || "cannot list reassignments".to_owned())?;
        let ids = |b: &[BrokerId]| b.iter().map(|b| b.0).collect::<Vec<_>>();
        Ok(response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| OngoingReassignment {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    replicas: ids(&p.replicas),
                    adding: ids(&p.adding_replicas),
                    removing: ids(&p.removing_replicas),
                })
            })
            .collect())
    }
}
