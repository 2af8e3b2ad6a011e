//! ListTransactions: transactional ids known to the coordinator, filtered by state,
//! producer id, (v1+) minimum open duration and (v2+) an id pattern (RE2 syntax, as
//! Kafka's RE2/J). As in Kafka, only the ids the caller may DESCRIBE are listed.

use gregor_protocol::kafka_protocol::messages::list_transactions_response::TransactionState;
use gregor_protocol::kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::authz::{Op, Res};
use crate::broker::now_ms;
use crate::BrokerError;

const STATES: [&str; 8] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: ListTransactionsRequest,
) -> Result<ListTransactionsResponse, BrokerError> {
    let states: Vec<String> = request.state_filters.iter().map(ToString::to_string).collect();
    let unknown: Vec<_> = request.state_filters.iter().filter(|s| !STATES.contains(&s.as_str())).cloned().collect();
    let producers: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let pattern = match request.transactional_id_pattern.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => match full_match_regex(p) {
            Some(re) => Some(re),
            None => {
                return Ok(
                    ListTransactionsResponse::default().with_error_code(ResponseError::InvalidRegularExpression.code())
                )
            }
        },
        None => None,
    };
    let duration = request.duration_filter;
    let broker = ctx.broker.clone();
    let mut listed: Vec<TransactionState> = blocking(move || {
        let now = now_ms();
        broker.txns.each_shard(|shard| {
            shard
                .transactions()
                .filter(|m| states.is_empty() || states.iter().any(|s| s == m.state.name()))
                .filter(|m| producers.is_empty() || producers.contains(&m.producer_id))
                .filter(|m| duration < 0 || (m.start_ms >= 0 && now - m.start_ms >= duration))
                .filter(|m| pattern.as_ref().is_none_or(|re| re.is_match(&m.transactional_id)))
                .map(|m| {
                    TransactionState::default()
                        .with_transactional_id(TransactionalId(str_bytes(&m.transactional_id)))
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_transaction_state(str_bytes(m.state.name()))
                })
                .collect()
        })
    })
    .await;
    listed.retain(|t| ctx.allowed(Op::Describe, Res::TransactionalId, &t.transactional_id));
    Ok(ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(listed))
}

/// A pattern that must match the whole id, as Java's `Matcher.matches`.
fn full_match_regex(pattern: &str) -> Option<regex_automata::meta::Regex> {
    regex_automata::meta::Regex::new(&format!("^(?:{pattern})$")).ok()
}
