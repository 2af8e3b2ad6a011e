//! Fetch: whole record batches from the log, as stored, up to the high watermark
//! (read_uncommitted) or the last stable offset (read_committed, with the aborted
//! transactions overlapping the returned batches, so the client drops their records).
//!
//! Long polling: when fewer than `min_bytes` are available the request waits up to
//! `max_wait_ms`, woken by appends to any of its partitions (no timer polling). The
//! wake-up is registered before the log is read, so an append between the read and the
//! wait is never missed.
//!
//! Fetch sessions (KIP-227, from v7): see `fetch_session`. A full fetch with epoch 0 opens
//! a session; incremental fetches name only changed partitions and get only partitions
//! with news back.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::select_all;
use gregor_protocol::kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use gregor_protocol::kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;
use tokio::time::Instant;

use super::{data_path, RequestContext, READ_COMMITTED};
use crate::authz::{Op, Res};
use crate::broker::Broker;
use crate::fetch_session::{FetchPosition, PartitionKey, PartitionNews, SessionMode, SessionRequest};
use crate::replica_manager::{Partition, ReplicaManager};
use crate::BrokerError;
use gregor_replication::selector::{ReplicaSelector, ReplicaView};

/// One partition of the request, resolved against the hosted partitions.
struct Wanted {
    index: i32,
    partition: Result<Arc<Partition>, ResponseError>,
    fetch_offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
}

/// How the request reads: its isolation, the follower fetching (if one is), and the
/// consumer's rack when a replica closer to it may serve it (KIP-392).
#[derive(Debug, Clone)]
struct ReadSpec {
    read_committed: bool,
    replica: Option<(i32, i64)>,
    client_rack: Option<Arc<str>>,
}

struct WantedTopic {
    name: TopicName,
    topic_id: gregor_metadata::Uuid,
    partitions: Vec<Wanted>,
}

pub(crate) async fn handle(ctx: &RequestContext<'_>, request: FetchRequest) -> Result<FetchResponse, BrokerError> {
    let (mode, wanted) = match sessions(ctx, &request) {
        Ok(begun) => begun,
        Err(e) => return Ok(FetchResponse::default().with_error_code(e.code())),
    };
    // Consumers from v11 on may read from a follower (KIP-392); followers only from the leader.
    let follower_ok = ctx.api_version >= 11 && replica_of(ctx, &request).is_none();
    let topics = Arc::new(resolve(ctx, &wanted, follower_ok, replica_of(ctx, &request).is_some()));
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    // The broker's fetch.max.bytes caps what one response may hold, whatever the client
    // asks: a client cannot make the broker buffer more than that per request.
    let cap = ctx.broker.config.max_fetch_response_bytes();
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(usize::MAX).min(cap);
    let replica = replica_of(ctx, &request);
    let spec = ReadSpec {
        read_committed: request.isolation_level == READ_COMMITTED,
        replica,
        client_rack: client_rack(ctx, &request, replica),
    };
    let waitable: Vec<Arc<Partition>> =
        topics.iter().flat_map(|t| t.partitions.iter()).filter_map(|p| p.partition.as_ref().ok().cloned()).collect();
    loop {
        let mut wakeups: Vec<_> = waitable.iter().map(|p| Box::pin(p.appended.notified())).collect();
        for w in &mut wakeups {
            w.as_mut().enable();
        }
        let (broker, t, s) = (ctx.broker.clone(), topics.clone(), spec.clone());
        let (responses, bytes, failed) = data_path(move || read_all(&broker, &t, max_bytes, &s)).await;
        let now = Instant::now();
        if bytes >= min_bytes || failed || now >= deadline || wakeups.is_empty() {
            return Ok(respond(ctx, mode, &wanted, responses));
        }
        let woken = select_all(wakeups.iter_mut().map(Pin::as_mut));
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            let (broker, t, s) = (ctx.broker.clone(), topics.clone(), spec.clone());
            let (responses, _, _) = data_path(move || read_all(&broker, &t, max_bytes, &s)).await;
            return Ok(respond(ctx, mode, &wanted, responses));
        }
    }
}

/// A follower's fetch: its broker id and broker epoch (`ReplicaState` from v15, the
/// replica id before, without an epoch). Consumers send -1.
fn replica_of(ctx: &RequestContext<'_>, request: &FetchRequest) -> Option<(i32, i64)> {
    let (id, epoch) = if ctx.api_version >= 15 {
        (request.replica_state.replica_id.0, request.replica_state.replica_epoch)
    } else {
        (request.replica_id.0, -1)
    };
    (id >= 0).then_some((id, epoch))
}

/// The consumer's `client.rack` (v11+), when this broker's `replica.selector.class`
/// may send it to a replica in its rack.
fn client_rack(ctx: &RequestContext<'_>, request: &FetchRequest, replica: Option<(i32, i64)>) -> Option<Arc<str>> {
    if replica.is_some() || ctx.api_version < 11 || request.rack_id.is_empty() {
        return None;
    }
    let class = ctx.broker.config.broker_value("replica.selector.class").value;
    let selector = ReplicaSelector::from_class(class.as_deref()).unwrap_or_default();
    (selector == ReplicaSelector::RackAware).then(|| Arc::from(request.rack_id.as_str()))
}

/// The partitions to read, in order, and how the request's session serves them. Before
/// v7 there are no sessions.
fn sessions(
    ctx: &RequestContext<'_>,
    request: &FetchRequest,
) -> Result<(SessionMode, Vec<(PartitionKey, FetchPosition)>), ResponseError> {
    let partitions = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let key = PartitionKey { topic: t.topic.0.to_string(), topic_id: t.topic_id, partition: p.partition };
                let position = FetchPosition {
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    current_leader_epoch: p.current_leader_epoch,
                };
                (key, position)
            })
        })
        .collect();
    if ctx.api_version < 7 {
        return Ok((SessionMode::Sessionless, partitions));
    }
    let forgotten = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| PartitionKey {
                topic: t.topic.0.to_string(),
                topic_id: t.topic_id,
                partition: *p,
            })
        })
        .collect();
    let session = SessionRequest {
        session_id: request.session_id,
        epoch: request.session_epoch,
        privileged: replica_of(ctx, request).is_some(),
        partitions,
        forgotten,
    };
    ctx.broker.fetch_sessions.begin(session, crate::broker::now_ms())
}

/// The answer: with a session, only the partitions it says to answer, and its id.
fn respond(
    ctx: &RequestContext<'_>,
    mode: SessionMode,
    wanted: &[(PartitionKey, FetchPosition)],
    mut responses: Vec<FetchableTopicResponse>,
) -> FetchResponse {
    if mode != SessionMode::Sessionless {
        let news: Vec<(PartitionKey, PartitionNews)> = responses
            .iter()
            .flat_map(|t| t.partitions.iter())
            .zip(wanted)
            .map(|(p, (key, _))| {
                let news = PartitionNews {
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                    has_records: p.records.as_ref().is_some_and(|r| !r.is_empty()),
                    error: p.error_code != 0,
                };
                (key.clone(), news)
            })
            .collect();
        let mut keep = ctx.broker.fetch_sessions.finish(mode, &news).into_iter();
        for topic in &mut responses {
            topic.partitions.retain(|_| keep.next().unwrap_or(true));
        }
        responses.retain(|t| !t.partitions.is_empty());
    }
    let response = FetchResponse::default().with_responses(responses);
    if ctx.api_version >= 7 {
        response.with_session_id(mode.session_id())
    } else {
        response
    }
}

/// Groups the partitions by topic (consecutive ones of the same topic share an entry, as
/// the request had them) and resolves each against the hosted partitions.
///
/// Authorization as Kafka's: a follower needs CLUSTER_ACTION on the cluster, a consumer
/// READ on each topic; a partition refused is TOPIC_AUTHORIZATION_FAILED (checked after
/// the topic id is resolved, before the topic's existence).
fn resolve(
    ctx: &RequestContext<'_>,
    wanted: &[(PartitionKey, FetchPosition)],
    follower_ok: bool,
    from_follower: bool,
) -> Vec<WantedTopic> {
    let image = ctx.broker.image();
    let authz = ctx.broker.authz.is_enabled();
    let cluster_action = !authz || !from_follower || ctx.allowed_on_cluster(Op::ClusterAction);
    // The last topic's decision: a request names a topic's partitions one after another.
    let mut last: Option<(Arc<str>, bool)> = None;
    let mut may_read = |topic: &Arc<str>| {
        if !authz {
            return true;
        }
        if from_follower {
            return cluster_action;
        }
        match &last {
            Some((t, allowed)) if t == topic => *allowed,
            _ => {
                let allowed = ctx.allowed(Op::Read, Res::Topic, topic);
                last = Some((topic.clone(), allowed));
                allowed
            }
        }
    };
    let mut topics: Vec<WantedTopic> = Vec::new();
    for (key, position) in wanted {
        let same = topics.last().is_some_and(|t| t.name.0.as_str() == key.topic && t.topic_id == key.topic_id);
        if !same {
            let name = TopicName(super::str_bytes(&key.topic));
            topics.push(WantedTopic { name, topic_id: key.topic_id, partitions: vec![] });
        }
        let name: Result<Arc<str>, ResponseError> = if ctx.api_version >= 13 {
            image.topic_by_id(&key.topic_id).map(|i| i.name.clone()).ok_or(ResponseError::UnknownTopicId)
        } else {
            Ok(key.topic.as_str().into())
        };
        let name = name.and_then(|n| if may_read(&n) { Ok(n) } else { Err(ResponseError::TopicAuthorizationFailed) });
        let partition = name.and_then(|n| {
            let tp = TopicPartition::new(n, key.partition);
            if follower_ok {
                ctx.broker.hosted_replica(&image, &tp)
            } else {
                ctx.broker.leader_partition(&image, &tp)
            }
        });
        let topic = topics.last_mut().expect("pushed above");
        topic.partitions.push(Wanted {
            index: key.partition,
            partition,
            fetch_offset: position.fetch_offset,
            max_bytes: usize::try_from(position.max_bytes).unwrap_or(0),
            current_leader_epoch: position.current_leader_epoch,
        });
    }
    topics
}

/// Reads every partition within the response budget. Returns the responses, the record
/// bytes found, and whether any partition failed (errors are answered without waiting).
fn read_all(
    broker: &Broker,
    topics: &[WantedTopic],
    max_bytes: usize,
    spec: &ReadSpec,
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
                    let data = read_one(broker, w, (&mut budget, total == 0), spec);
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

fn read_one(broker: &Broker, w: &Wanted, (budget, first_data): (&mut usize, bool), spec: &ReadSpec) -> PartitionData {
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
    let now = crate::broker::now_ms();
    let quotas = &broker.replication_quotas;
    let key = (partition.topic_id, w.index);
    // A follower's fetch offset is its log end offset: the leader learns its position
    // (and may advance the high watermark) before reading for it, up to its own end.
    let mut throttled = false;
    if let Some(follower) = spec.replica {
        match broker.replicas.follower_fetched(partition, follower, w.fetch_offset, now) {
            Ok(in_sync) => throttled = !in_sync && quotas.leader_limited(),
            Err(e) => return base.with_error_code(e.code()),
        }
    }
    // A follower outside the ISR over the leader throttle gets nothing this time.
    if throttled && quotas.leader_holds_back(key, now) {
        return with_offsets(broker, partition, base).with_records(Some(bytes::Bytes::new()));
    }
    if let Some(other) = spec.client_rack.as_deref().and_then(|r| preferred_read_replica(broker, partition, w, r)) {
        let base = base.with_preferred_read_replica(BrokerId(other));
        return with_offsets(broker, partition, base).with_records(Some(bytes::Bytes::new()));
    }
    let limit = w.max_bytes.min(*budget);
    match broker.replicas.read(partition, w.fetch_offset, limit, (spec.read_committed, spec.replica.is_some())) {
        Ok(read) => {
            // Past the first partition with data, limits are strict: a batch that does
            // not fit waits for the next request.
            let records = if !first_data && read.records.len() > limit { bytes::Bytes::new() } else { read.records };
            *budget = budget.saturating_sub(records.len());
            partition.traffic.fetched(records.len(), spec.replica.is_some());
            if throttled {
                quotas.leader_sent(key, records.len(), now);
            }
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
        Err(e) => with_offsets(broker, partition, base.with_error_code(e.code())),
    }
}

/// The partition's log start offset, high watermark and last stable offset, for an
/// answer without records.
fn with_offsets(broker: &Broker, partition: &Partition, base: PartitionData) -> PartitionData {
    let (start, hw, lso) = broker.replicas.offsets(partition);
    base.with_high_watermark(hw).with_last_stable_offset(lso).with_log_start_offset(start)
}

/// KIP-392 on the leader: the in-sync replica in the consumer's rack it should read from
/// instead, as `RackAwareReplicaSelector` picks it; `None` to read here.
fn preferred_read_replica(broker: &Broker, partition: &Partition, w: &Wanted, client_rack: &str) -> Option<i32> {
    let candidates = ReplicaManager::read_replica_candidates(partition, w.fetch_offset)?;
    let image = broker.image();
    let rack_of = |b: i32| image.brokers.get(&b).filter(|r| !r.fenced).map(|r| r.rack.as_deref());
    let leader = ReplicaView {
        broker_id: broker.node_id,
        rack: rack_of(broker.node_id).flatten(),
        log_end_offset: i64::MAX,
        last_caught_up_ms: i64::MAX,
    };
    let views: Vec<ReplicaView<'_>> = candidates
        .iter()
        .filter_map(|&(broker_id, log_end_offset, last_caught_up_ms)| {
            Some(ReplicaView { broker_id, rack: rack_of(broker_id)?, log_end_offset, last_caught_up_ms })
        })
        .collect();
    let chosen = ReplicaSelector::RackAware.select(client_rack, &leader, &views);
    (chosen != broker.node_id).then_some(chosen)
}
