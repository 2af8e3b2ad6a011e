//! AddPartitionsToTxn: partitions join the producer's transaction before it writes to
//! them. v0-3 carry one transaction (the client form); v4+ carry many, each either
//! added or, with `verify_only`, checked (the broker form of KIP-890).
//!
//! As in Kafka, a request naming a partition that does not exist changes nothing: those
//! partitions get UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED.
//!
//! Authorization as in Kafka: the client form needs WRITE on the transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED everywhere) and WRITE on each topic (else its
//! partitions get TOPIC_AUTHORIZATION_FAILED and nothing is added); the broker form
//! needs CLUSTER_ACTION on the cluster.

use gregor_protocol::kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use gregor_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName, TransactionalId,
};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, txn_error, RequestContext};
use crate::authz::{Op, Res};
use crate::broker::{now_ms, Broker};
use crate::BrokerError;

const FENCED_SINCE: i16 = 2;

/// One transaction of the request.
struct Add {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: Vec<AddPartitionsToTxnTopic>,
}

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: AddPartitionsToTxnRequest,
) -> Result<AddPartitionsToTxnResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    if version <= 3 {
        if !ctx.allowed(Op::Write, Res::TransactionalId, &request.v3_and_below_transactional_id) {
            let code = ResponseError::TransactionalIdAuthorizationFailed.code();
            let results = topic_results(&request.v3_and_below_topics, |_| code);
            return Ok(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results));
        }
        let denied: Vec<String> = request
            .v3_and_below_topics
            .iter()
            .filter(|t| !ctx.allowed(Op::Write, Res::Topic, &t.name))
            .map(|t| t.name.to_string())
            .collect();
        let add = Add {
            transactional_id: request.v3_and_below_transactional_id.0.to_string(),
            producer_id: request.v3_and_below_producer_id.0,
            producer_epoch: request.v3_and_below_producer_epoch,
            verify_only: false,
            topics: request.v3_and_below_topics,
        };
        let results = blocking(move || add_one(&broker, &add, version, &denied)).await;
        return Ok(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results));
    }
    // Only brokers send the batched form.
    if !ctx.allowed_on_cluster(Op::ClusterAction) {
        return Ok(
            AddPartitionsToTxnResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code())
        );
    }
    let adds: Vec<Add> = request
        .transactions
        .into_iter()
        .map(|t| Add {
            transactional_id: t.transactional_id.0.to_string(),
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            verify_only: t.verify_only,
            topics: t.topics,
        })
        .collect();
    let results = blocking(move || {
        adds.iter()
            .map(|add| {
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(TransactionalId(super::str_bytes(&add.transactional_id)))
                    .with_topic_results(add_one(&broker, add, version, &[]))
            })
            .collect()
    })
    .await;
    Ok(AddPartitionsToTxnResponse::default().with_results_by_transaction(results))
}

/// `denied`: the topics the caller may not WRITE (TOPIC_AUTHORIZATION_FAILED).
fn add_one(broker: &Broker, add: &Add, version: i16, denied: &[String]) -> Vec<AddPartitionsToTxnTopicResult> {
    let image = broker.image();
    let exists = |topic: &str, p: i32| image.topic(topic).is_some_and(|t| t.partitions.contains_key(&p));
    let wanted: Vec<(String, i32)> =
        add.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p))).collect();
    let any_unknown = wanted.iter().any(|(t, p)| denied.contains(t) || !exists(t, *p));
    let id = add.transactional_id.as_str();
    let error_of = |tp: &(String, i32)| -> i16 {
        if any_unknown {
            return if denied.contains(&tp.0) {
                ResponseError::TopicAuthorizationFailed.code()
            } else if exists(&tp.0, tp.1) {
                ResponseError::OperationNotAttempted.code()
            } else {
                ResponseError::UnknownTopicOrPartition.code()
            };
        }
        0
    };
    let shared = if any_unknown || add.verify_only {
        Ok(())
    } else {
        broker.txns.run(broker, id, |shard| {
            match shard.add_partitions(id, add.producer_id, add.producer_epoch, &wanted, now_ms()) {
                Ok(step) => (Ok(()), step),
                Err(e) => (Err(e), Default::default()),
            }
        })
    };
    let partition_error = |tp: &(String, i32)| -> i16 {
        if any_unknown {
            return error_of(tp);
        }
        let outcome = if add.verify_only {
            broker.txns.read(broker, id, |s| s.verify(id, add.producer_id, add.producer_epoch, tp)).and_then(|r| r)
        } else {
            shared
        };
        outcome.err().map_or(0, |e| txn_error(e, version, FENCED_SINCE))
    };
    topic_results(&add.topics, partition_error)
}

/// One result per partition asked for, with its error code.
fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    code: impl Fn(&(String, i32)) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code(&(t.name.to_string(), *p)))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(t.name.0.clone()))
                .with_results_by_partition(results)
        })
        .collect()
}
