//! Requests one broker sends another on behalf of its clients: transaction markers to
//! partition leaders (WriteTxnMarkers) and KIP-890's verification of a transactional
//! produce with the transaction coordinator (AddPartitionsToTxn, verify only). Sent from
//! synchronous code, over a connection opened for the request (these are rare next to
//! the data path: one per transaction end or per transactional produce elsewhere).

use std::time::Duration;

use gregor_protocol::kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use gregor_protocol::kafka_protocol::messages::{AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId};
use gregor_protocol::kafka_protocol::protocol::Request;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;

use crate::broker::Broker;
use crate::handlers::str_bytes;
use crate::BrokerError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `request` to broker `node` (its client listener, as registered) and waits for
/// the answer. A broker that cannot be reached is COORDINATOR_NOT_AVAILABLE to the
/// caller, which retries.
pub(crate) fn send<R: Request + Send + 'static>(
    broker: &Broker,
    node: i32,
    request: R,
) -> Result<R::Response, BrokerError>
where
    R::Response: Send,
{
    let addr = broker.image().brokers.get(&node).map(|b| format!("{}:{}", b.host, b.port));
    let unreachable = |why: String| BrokerError::Remote {
        code: ResponseError::CoordinatorNotAvailable.code(),
        message: format!("broker {node}: {why}"),
    };
    let addr = addr.ok_or_else(|| unreachable("not registered".into()))?;
    let client_id = format!("gregor-broker-{}", broker.node_id);
    crate::metadata_quorum::block_on(async move {
        let mut conn = gregor_client::Connection::connect(&addr, &client_id, TIMEOUT).await?;
        conn.send(&request, None).await
    })
    .map_err(|e| unreachable(e.to_string()))
}

/// KIP-890's check that the producer's open transaction has added `tp` (a partition it
/// produces to, or the group's `__consumer_offsets` partition of a TxnOffsetCommit):
/// asked of the local transaction coordinator, or of the broker that coordinates the
/// transactional id (AddPartitionsToTxn, verify only).
pub(crate) fn verify_in_transaction(
    broker: &Broker,
    transactional_id: &str,
    (producer_id, producer_epoch): (i64, i16),
    tp: &TopicPartition,
) -> Result<(), ResponseError> {
    let partition = (tp.topic.to_string(), tp.partition);
    let local = broker
        .txns
        .read(broker, transactional_id, |s| s.verify(transactional_id, producer_id, producer_epoch, &partition));
    match local {
        Err(ResponseError::NotCoordinator) => {
            verify_remotely(broker, transactional_id, (producer_id, producer_epoch), tp)
        }
        other => other.and_then(|r| r),
    }
}

/// KIP-890 when the transaction's coordinator is another broker: asks it whether the
/// producer's open transaction has added `tp`.
fn verify_remotely(
    broker: &Broker,
    transactional_id: &str,
    (producer_id, producer_epoch): (i64, i16),
    tp: &TopicPartition,
) -> Result<(), ResponseError> {
    let coordinator = broker.txns.coordinator_of(broker, transactional_id).ok_or(ResponseError::NotCoordinator)?;
    let request =
        AddPartitionsToTxnRequest::default().with_transactions(vec![AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(str_bytes(transactional_id)))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(true)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(str_bytes(&tp.topic)))
                .with_partitions(vec![tp.partition])])]);
    let response = send(broker, coordinator, request).map_err(|e| e.response_error())?;
    let code = match ResponseError::try_from_code(response.error_code) {
        Some(e) => return Err(e),
        None => response
            .results_by_transaction
            .iter()
            .flat_map(|t| t.topic_results.iter())
            .flat_map(|t| t.results_by_partition.iter())
            .map(|p| p.partition_error_code)
            .find(|c| *c != 0),
    };
    match code.and_then(ResponseError::try_from_code) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
