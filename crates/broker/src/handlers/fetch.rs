//! Fetch: whole record batches from the log, as stored, up to the high watermark
//! (read_uncommitted) or the last stable offset (read_committed, with the aborted
//! transactions overlapping the returned batches, so the client drops their records).
//!
//! Long polling: when fewer than `min_bytes` are available the request waits up to
//! `max_wait_ms`, woken by appends to any of its partitions (no timer polling). The
//! wake-up is registered before the log is read, so an append between the read and the
//! wait is never missed.
//!
//! Fetch sessions (KIP-227) are not kept: every response has session id 0, which tells
//! the client no session was created and the next request must be a full fetch.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::select_all;
use gregor_protocol::kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use gregor_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;
use tokio::time::Instant;

use super::{data_path, RequestContext, READ_COMMITTED};
use crate::broker::Broker;
use crate::replica_manager::Partition;
use crate::BrokerError;

/// One partition of the request, resolved against the hosted partitions.
struct Wanted {
    index: i32,
    partition: Result<Arc<Partition>, ResponseError>,
    fetch_offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
}

struct WantedTopic {
    name: TopicName,
    topic_id: gregor_metadata::Uuid,
    partitions: Vec<Wanted>,
}

pub(crate) async fn handle(ctx: &RequestContext<'_>, request: FetchRequest) -> Result<FetchResponse, BrokerError> {
    if request.session_id != 0 && request.session_epoch > 0 {
        return Ok(FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code()));
    }
    let topics = Arc::new(resolve(ctx, &request));
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    // The broker's fetch.max.bytes caps what one response may hold, whatever the client
    // asks: a client cannot make the broker buffer more than that per request.
    let cap = ctx.broker.config.max_fetch_response_bytes();
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(usize::MAX).min(cap);
    let read_committed = request.isolation_level == READ_COMMITTED;
    let waitable: Vec<Arc<Partition>> =
        topics.iter().flat_map(|t| t.partitions.iter()).filter_map(|p| p.partition.as_ref().ok().cloned()).collect();
    loop {
        let mut wakeups: Vec<_> = waitable.iter().map(|p| Box::pin(p.appended.notified())).collect();
        for w in &mut wakeups {
            w.as_mut().enable();
        }
        let (broker, t) = (ctx.broker.clone(), topics.clone());
        let (responses, bytes, failed) = data_path(move || read_all(&broker, &t, max_bytes, read_committed)).await;
        let now = Instant::now();
        if bytes >= min_bytes || failed || now >= deadline || wakeups.is_empty() {
            return Ok(FetchResponse::default().with_responses(responses));
        }
        let woken = select_all(wakeups.iter_mut().map(Pin::as_mut));
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            let (broker, t) = (ctx.broker.clone(), topics.clone());
            let (responses, _, _) = data_path(move || read_all(&broker, &t, max_bytes, read_committed)).await;
            return Ok(FetchResponse::default().with_responses(responses));
        }
    }
}

fn resolve(ctx: &RequestContext<'_>, request: &FetchRequest) -> Vec<WantedTopic> {
    let image = ctx.broker.image();
    request
        .topics
        .iter()
        .map(|t| {
            let name = if ctx.api_version >= 13 {
                image.topic_by_id(&t.topic_id).map(|i| i.name.clone()).ok_or(ResponseError::UnknownTopicId)
            } else {
                Ok(t.topic.0.as_str().into())
            };
            let partitions = t
                .partitions
                .iter()
                .map(|p| Wanted {
                    index: p.partition,
                    partition: name
                        .clone()
                        .and_then(|n| ctx.broker.leader_partition(&image, &TopicPartition::new(n, p.partition))),
                    fetch_offset: p.fetch_offset,
                    max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                    current_leader_epoch: p.current_leader_epoch,
                })
                .collect();
            WantedTopic { name: t.topic.clone(), topic_id: t.topic_id, partitions }
        })
        .collect()
}

/// Reads every partition within the response budget. Returns the responses, the record
/// bytes found, and whether any partition failed (errors are answered without waiting).
fn read_all(
    broker: &Broker,
    topics: &[WantedTopic],
    max_bytes: usize,
    read_committed: bool,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut budget = max_bytes;
    let mut total = 0;
    let mut failed = false;
    let responses = topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|w| {
                    let data = read_one(broker, w, &mut budget, total == 0, read_committed);
                    let n = data.records.as_ref().map_or(0, |r| r.len());
                    total += n;
                    failed |= data.error_code != 0;
                    data
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    (responses, total, failed)
}

fn read_one(broker: &Broker, w: &Wanted, budget: &mut usize, first_data: bool, read_committed: bool) -> PartitionData {
    let base =
        PartitionData::default().with_partition_index(w.index).with_high_watermark(-1).with_last_stable_offset(-1);
    let partition = match &w.partition {
        Ok(p) => p,
        Err(e) => return base.with_error_code(e.code()),
    };
    if w.current_leader_epoch >= 0 && w.current_leader_epoch != partition.leader_epoch {
        let e = if w.current_leader_epoch > partition.leader_epoch {
            ResponseError::UnknownLeaderEpoch
        } else {
            ResponseError::FencedLeaderEpoch
        };
        return base.with_error_code(e.code());
    }
    let limit = w.max_bytes.min(*budget);
    match broker.replicas.read(partition, w.fetch_offset, limit, read_committed) {
        Ok(read) => {
            // Past the first partition with data, limits are strict: a batch that does
            // not fit waits for the next request.
            let records = if !first_data && read.records.len() > limit { bytes::Bytes::new() } else { read.records };
            *budget = budget.saturating_sub(records.len());
            let aborted = read.aborted.map(|list| {
                list.iter()
                    .map(|a| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(a.producer_id))
                            .with_first_offset(a.first_offset)
                    })
                    .collect()
            });
            base.with_high_watermark(read.high_watermark)
                .with_last_stable_offset(read.last_stable_offset)
                .with_log_start_offset(read.log_start_offset)
                .with_aborted_transactions(aborted)
                .with_records(Some(records))
        }
        Err(e) => {
            let (start, hw, lso) = broker.replicas.offsets(partition);
            base.with_error_code(e.code())
                .with_high_watermark(hw)
                .with_last_stable_offset(lso)
                .with_log_start_offset(start)
        }
    }
}
