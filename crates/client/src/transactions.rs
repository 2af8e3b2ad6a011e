//! kafka-transactions.sh's requests: ListTransactions (every broker), DescribeTransactions
//! (the transaction coordinator), DescribeProducers (a partition's leader or a chosen
//! replica) and WriteTxnMarkers (an abort marker for a hanging transaction, to the leader).

use gregor_protocol::kafka_protocol::messages::describe_producers_request::TopicRequest;
use gregor_protocol::kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use gregor_protocol::kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest, ListTransactionsRequest, ProducerId,
    TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;

use crate::client::Client;
use crate::error::{check, ClientError, Result};

/// FindCoordinator's key type of a transactional id.
const TRANSACTION_KEY: i8 = 1;

/// One transaction as ListTransactions reports it, with the broker that coordinates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub coordinator: i32,
    pub producer_id: i64,
    pub state: String,
}

/// DescribeTransactions' answer for one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub coordinator: i32,
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub state: String,
    pub start_time_ms: i64,
    pub timeout_ms: i32,
    pub partitions: Vec<(String, i32)>,
}

/// A producer a partition remembers (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDescription {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction there, -1 when none.
    pub current_txn_start_offset: i64,
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

impl Client {
    /// The broker that coordinates `transactional_id`.
    pub async fn transaction_coordinator(&mut self, transactional_id: &str) -> Result<i32> {
        let version = self.any().version_for::<FindCoordinatorRequest>(None)?;
        let request = FindCoordinatorRequest::default().with_key_type(TRANSACTION_KEY);
        let request = if version >= 4 {
            request.with_coordinator_keys(vec![s(transactional_id)])
        } else {
            request.with_key(s(transactional_id))
        };
        let r = self.any().send_version(&request, version).await?;
        let (code, message, node) = match r.coordinators.first() {
            Some(c) if version >= 4 => (c.error_code, c.error_message.as_ref().map(ToString::to_string), c.node_id.0),
            _ => (r.error_code, r.error_message.as_ref().map(ToString::to_string), r.node_id.0),
        };
        check(code, message.as_deref(), || format!("cannot find the coordinator of '{transactional_id}'"))?;
        Ok(node)
    }

    /// Every transaction every broker coordinates, sorted by id.
    pub async fn list_transactions(&mut self) -> Result<Vec<TransactionListing>> {
        let brokers: Vec<i32> = self.metadata(Some(&[])).await?.brokers.iter().map(|b| b.node_id).collect();
        let mut out = Vec::new();
        for id in brokers {
            let r = self.node(id).await?.send(&ListTransactionsRequest::default(), None).await?;
            check(r.error_code, None, || format!("broker {id} cannot list transactions"))?;
            out.extend(r.transaction_states.into_iter().map(|t| TransactionListing {
                transactional_id: t.transactional_id.0.to_string(),
                coordinator: id,
                producer_id: t.producer_id.0,
                state: t.transaction_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    pub async fn describe_transaction(&mut self, transactional_id: &str) -> Result<TransactionDescription> {
        let coordinator = self.transaction_coordinator(transactional_id).await?;
        let request =
            DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(s(transactional_id))]);
        let r = self.node(coordinator).await?.send(&request, None).await?;
        let t = r.transaction_states.into_iter().next().ok_or_else(|| ClientError::Other("no answer".into()))?;
        check(t.error_code, None, || format!("cannot describe transactional id '{transactional_id}'"))?;
        let partitions = t
            .topics
            .iter()
            .flat_map(|topic| topic.partitions.iter().map(move |p| (topic.topic.0.to_string(), *p)))
            .collect();
        Ok(TransactionDescription {
            coordinator,
            transactional_id: transactional_id.to_owned(),
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            state: t.transaction_state.to_string(),
            start_time_ms: t.transaction_start_time_ms,
            timeout_ms: t.transaction_timeout_ms,
            partitions,
        })
    }

    /// The producers of `topic`-`partition`, asked of its leader or of `broker`.
    pub async fn describe_producers(
        &mut self,
        topic: &str,
        partition: i32,
        broker: Option<i32>,
    ) -> Result<Vec<ProducerDescription>> {
        let node = match broker {
            Some(b) => b,
            None => self.leader(topic, partition).await?,
        };
        let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(vec![partition])]);
        let r = self.node(node).await?.send(&request, None).await?;
        let p = r
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .next()
            .ok_or_else(|| ClientError::Other("DescribeProducers answered no partition".into()))?;
        check(p.error_code, p.error_message.as_deref(), || {
            format!("cannot describe the producers of {topic}-{partition}")
        })?;
        Ok(p.active_producers
            .into_iter()
            .map(|a| ProducerDescription {
                producer_id: a.producer_id.0,
                producer_epoch: a.producer_epoch,
                last_sequence: a.last_sequence,
                last_timestamp: a.last_timestamp,
                coordinator_epoch: a.coordinator_epoch,
                current_txn_start_offset: a.current_txn_start_offset,
            })
            .collect())
    }

    /// Writes an abort marker for the producer's open transaction in `topic`-`partition`
    /// (WriteTxnMarkers to the leader), as `kafka-transactions.sh abort` does for a
    /// hanging transaction whose coordinator lost track of it.
    pub async fn abort_transaction(
        &mut self,
        (topic, partition): (&str, i32),
        (producer_id, producer_epoch, coordinator_epoch): (i64, i16, i32),
    ) -> Result<()> {
        let leader = self.leader(topic, partition).await?;
        let marker = WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(coordinator_epoch)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partition_indexes(vec![partition])]);
        let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
        let r = self.node(leader).await?.send(&request, None).await?;
        let code = r
            .markers
            .iter()
            .flat_map(|m| m.topics.iter())
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.error_code)
            .find(|c| *c != 0)
            .unwrap_or(0);
        check(code, None, || format!("cannot abort producer {producer_id}'s transaction in {topic}-{partition}"))
    }
}
