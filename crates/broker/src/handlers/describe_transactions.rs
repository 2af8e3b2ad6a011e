//! DescribeTransactions: the coordinator's state of each transactional id. As in Kafka,
//! each id needs DESCRIBE on it (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and only
//! the topics the caller may DESCRIBE are listed.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use gregor_protocol::kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::authz::{Op, Res};
use crate::BrokerError;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeTransactionsRequest,
) -> Result<DescribeTransactionsResponse, BrokerError> {
    let broker = ctx.broker.clone();
    let ids: Vec<_> = request
        .transactional_ids
        .into_iter()
        .map(|id| (ctx.allowed(Op::Describe, Res::TransactionalId, &id), id))
        .collect();
    let mut states: Vec<TransactionState> = blocking(move || {
        ids.into_iter()
            .map(|(allowed, id)| {
                let name = id.0.to_string();
                let base = TransactionState::default().with_transactional_id(id).with_producer_id(ProducerId(-1));
                if !allowed {
                    return base.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
                }
                let found = broker.txns.read(&broker, &name, |s| s.get(&name).cloned());
                match found {
                    Ok(Some(m)) => {
                        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                        for (topic, p) in &m.partitions {
                            topics.entry(topic.clone()).or_default().push(*p);
                        }
                        let topics = topics
                            .into_iter()
                            .map(|(t, ps)| {
                                TopicData::default().with_topic(TopicName(str_bytes(&t))).with_partitions(ps)
                            })
                            .collect();
                        base.with_transaction_state(str_bytes(m.state.name()))
                            .with_transaction_timeout_ms(m.timeout_ms)
                            .with_transaction_start_time_ms(m.start_ms)
                            .with_producer_id(ProducerId(m.producer_id))
                            .with_producer_epoch(m.producer_epoch)
                            .with_topics(topics)
                    }
                    Ok(None) => base.with_error_code(ResponseError::TransactionalIdNotFound.code()),
                    Err(e) => base.with_error_code(e.code()),
                }
            })
            .collect()
    })
    .await;
    for state in &mut states {
        state.topics.retain(|t| ctx.allowed(Op::Describe, Res::Topic, &t.topic));
    }
    Ok(DescribeTransactionsResponse::default().with_transaction_states(states))
}
