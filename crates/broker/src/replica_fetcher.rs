//! Followers copy their leaders' logs (Kafka's `ReplicaFetcherManager` and
//! `ReplicaFetcherThread`): one fetcher task per source broker, over every partition this
//! broker follows there, with one long-polling Fetch at a time (`replica.fetch.wait.max.ms`),
//! so an idle follower costs one request per half second per leader, not per partition.
//!
//! A partition in a new leader epoch first truncates to where its log diverges from the
//! leader's (OffsetForLeaderEpoch, `gregor_replication::truncation`), then fetches from
//! its log end offset; every Fetch carries the epoch it follows (KIP-320), so an answer
//! from a deposed leader is refused there, and the broker epoch of this process
//! (KIP-903), so the leader never counts an older incarnation's position. A fetch
//! session per connection (KIP-227) keeps the requests small: after the first, a Fetch
//! names only the partitions whose position moved.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gregor_client::Connection;
use gregor_metadata::MetadataImage;
use gregor_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use gregor_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use gregor_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;
use gregor_replication::fetch_session::{FetchPosition, FetchSessionHandler};
use gregor_replication::truncation::{self, FollowerLog, Truncation};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::broker::now_ms;
use crate::config::BrokerConfig;
use crate::handlers::blocking;
use crate::replica_manager::{Partition, ReplicaManager};
use crate::replication_quota::ReplicationQuotas;

/// The `replica.*` settings a fetcher runs with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetcherSettings {
    node_id: i32,
    wait_max_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    response_max_bytes: i32,
    backoff: Duration,
    socket_timeout: Duration,
}

impl FetcherSettings {
    pub(crate) fn of(config: &BrokerConfig) -> Self {
        let int = |key: &str| i32::try_from(config.broker_i64(key)).unwrap_or(i32::MAX);
        let ms = |key: &str| Duration::from_millis(u64::try_from(config.broker_i64(key)).unwrap_or(0));
        Self {
            node_id: config.node_id(),
            wait_max_ms: int("replica.fetch.wait.max.ms"),
            min_bytes: int("replica.fetch.min.bytes"),
            max_bytes: int("replica.fetch.max.bytes"),
            response_max_bytes: int("replica.fetch.response.max.bytes"),
            backoff: ms("replica.fetch.backoff.ms"),
            socket_timeout: ms("replica.socket.timeout.ms"),
        }
    }
}

/// One followed partition, in the epoch of `partition`.
#[derive(Debug, Clone)]
struct Followed {
    partition: Arc<Partition>,
    /// Set once the log was cut to where it agrees with the leader in this epoch.
    truncated: bool,
    /// After an error: not fetched again before then.
    retry_at: Option<Instant>,
}

/// The fetcher of one source broker.
#[derive(Debug)]
struct Fetcher {
    leader: i32,
    partitions: Mutex<BTreeMap<TopicPartition, Followed>>,
    wake: Notify,
    stopped: AtomicBool,
}

impl Fetcher {
    fn snapshot(&self) -> Vec<(TopicPartition, Followed)> {
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Updates a partition's state unless it moved to another epoch meanwhile.
    fn update(&self, tp: &TopicPartition, epoch_of: &Arc<Partition>, f: impl FnOnce(&mut Followed)) {
        let mut partitions = self.partitions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(followed) = partitions.get_mut(tp).filter(|f| Arc::ptr_eq(&f.partition, epoch_of)) {
            f(followed);
        }
    }
}

/// What every fetcher task shares.
#[derive(Debug)]
struct Shared {
    settings: FetcherSettings,
    image: watch::Receiver<Arc<MetadataImage>>,
    broker_epoch: Arc<AtomicI64>,
    quotas: Arc<ReplicationQuotas>,
}

/// All fetchers of this broker, by source broker.
#[derive(Debug)]
pub(crate) struct ReplicaFetchers {
    shared: Arc<Shared>,
    fetchers: Mutex<HashMap<i32, Arc<Fetcher>>>,
    runtime: Option<tokio::runtime::Handle>,
}

impl ReplicaFetchers {
    pub(crate) fn new(
        settings: FetcherSettings,
        (image, broker_epoch): (watch::Receiver<Arc<MetadataImage>>, Arc<AtomicI64>),
        quotas: Arc<ReplicationQuotas>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared { settings, image, broker_epoch, quotas }),
            fetchers: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Makes the fetchers follow exactly `wanted` (partition, its leader, its current
    /// epoch's state). A partition in a new epoch starts again with truncation.
    pub(crate) fn assign(&self, wanted: Vec<(TopicPartition, i32, Arc<Partition>)>) {
        let mut by_leader: HashMap<i32, Vec<(TopicPartition, Arc<Partition>)>> = HashMap::new();
        for (tp, leader, partition) in wanted {
            by_leader.entry(leader).or_default().push((tp, partition));
        }
        let mut fetchers = self.fetchers.lock().unwrap_or_else(PoisonError::into_inner);
        fetchers.retain(|leader, fetcher| {
            let keep = by_leader.contains_key(leader);
            if !keep {
                fetcher.stopped.store(true, Ordering::Relaxed);
                fetcher.wake.notify_one();
            }
            keep
        });
        for (leader, partitions) in by_leader {
            let fetcher = match fetchers.get(&leader) {
                Some(f) => f.clone(),
                None => match self.spawn(leader) {
                    Some(f) => fetchers.entry(leader).or_insert(f).clone(),
                    None => continue,
                },
            };
            let mut followed = fetcher.partitions.lock().unwrap_or_else(PoisonError::into_inner);
            let mut next = BTreeMap::new();
            for (tp, partition) in partitions {
                let same = followed.remove(&tp).filter(|f| Arc::ptr_eq(&f.partition, &partition));
                let state = same.unwrap_or(Followed { partition, truncated: false, retry_at: None });
                let _ = next.insert(tp, state);
            }
            *followed = next;
            drop(followed);
            fetcher.wake.notify_one();
        }
    }

    fn spawn(&self, leader: i32) -> Option<Arc<Fetcher>> {
        let Some(runtime) = &self.runtime else {
            tracing::error!(leader, "no runtime to run a replica fetcher on");
            return None;
        };
        let fetcher = Arc::new(Fetcher {
            leader,
            partitions: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
        });
        let _task = runtime.spawn(run(fetcher.clone(), self.shared.clone()));
        Some(fetcher)
    }

    /// Stops every fetcher (the broker is shutting down).
    pub(crate) fn shutdown(&self) {
        self.assign(Vec::new());
    }
}

/// A partition of a fetch session: the name and the id (requests carry one or the other).
type SessionKey = (TopicPartition, gregor_metadata::Uuid);

/// One fetcher's loop: connect, truncate what needs it, fetch, append; back off on errors.
async fn run(fetcher: Arc<Fetcher>, shared: Arc<Shared>) {
    let mut connection: Option<Connection> = None;
    let mut session = FetchSessionHandler::<SessionKey>::default();
    while !fetcher.stopped.load(Ordering::Relaxed) {
        let wake = fetcher.wake.notified();
        let now = Instant::now();
        let ready: Vec<_> =
            fetcher.snapshot().into_iter().filter(|(_, f)| f.retry_at.is_none_or(|at| at <= now)).collect();
        if ready.is_empty() {
            let _ = tokio::time::timeout(shared.settings.backoff.min(Duration::from_millis(200)), wake).await;
            continue;
        }
        let conn = match connection.as_mut() {
            Some(c) => c,
            None => match connect(&fetcher, &shared).await {
                Some(c) => {
                    session.reset(); // a session lives on one connection's leader
                    connection.insert(c)
                }
                None => {
                    let _ = tokio::time::timeout(shared.settings.backoff, wake).await;
                    continue;
                }
            },
        };
        if let Err(e) = round(&fetcher, &shared, (conn, &mut session), ready).await {
            tracing::debug!(leader = fetcher.leader, error = %e, "replica fetch failed; reconnecting");
            connection = None;
            tokio::time::sleep(shared.settings.backoff).await;
        }
    }
}

async fn connect(fetcher: &Fetcher, shared: &Shared) -> Option<Connection> {
    let addr = {
        let image = shared.image.borrow();
        let broker = image.brokers.get(&fetcher.leader)?;
        format!("{}:{}", broker.host, broker.port)
    };
    let client_id = format!("gregor-replica-fetcher-{}", shared.settings.node_id);
    match Connection::connect(&addr, &client_id, shared.settings.socket_timeout).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(leader = fetcher.leader, %addr, error = %e, "cannot reach the leader");
            None
        }
    }
}

/// Truncates the partitions that need it, then one Fetch for the rest.
async fn round(
    fetcher: &Fetcher,
    shared: &Shared,
    (conn, session): (&mut Connection, &mut FetchSessionHandler<SessionKey>),
    ready: Vec<(TopicPartition, Followed)>,
) -> Result<(), gregor_client::ClientError> {
    let (fetching, truncating): (Vec<_>, Vec<_>) = ready.into_iter().partition(|(_, f)| f.truncated);
    for (tp, followed) in truncating {
        truncate(fetcher, shared, conn, &tp, &followed).await?;
    }
    let fetching = unthrottled(shared, fetching);
    if fetching.is_empty() {
        return Ok(());
    }
    let version = conn.version_for::<FetchRequest>(None)?;
    let request = fetch_request(shared, &fetching, version, session);
    let response = match conn.send_version(&request, version).await {
        Ok(response) => response,
        Err(e) => {
            session.reset();
            return Err(e);
        }
    };
    if version >= 7 && !session.handle_response(response.error_code, response.session_id) && response.error_code != 0 {
        tracing::debug!(
            leader = fetcher.leader,
            code = response.error_code,
            "fetch session dropped; next fetch is full"
        );
    }
    apply(fetcher, shared, fetching, response, version).await;
    Ok(())
}

/// Leaves out the throttled partitions this broker is not in sync for while the follower
/// throttle is over its rate (Kafka's `shouldFollowerThrottle`); the next round may take
/// them again.
fn unthrottled(shared: &Shared, fetching: Vec<(TopicPartition, Followed)>) -> Vec<(TopicPartition, Followed)> {
    if !shared.quotas.follower_limited() {
        return fetching;
    }
    let now = now_ms();
    let image = shared.image.borrow().clone();
    let node_id = shared.settings.node_id;
    let in_sync = |tp: &TopicPartition| {
        image.topic(&tp.topic).and_then(|t| t.partitions.get(&tp.partition)).is_some_and(|p| p.isr.contains(&node_id))
    };
    fetching
        .into_iter()
        .filter(|(tp, f)| !shared.quotas.follower_holds_back((f.partition.topic_id, tp.partition), now) || in_sync(tp))
        .collect()
}

/// The Fetch for `fetching`: through the session from v7 (only moved, new and forgotten
/// partitions after the first), every partition before.
fn fetch_request(
    shared: &Shared,
    fetching: &[(TopicPartition, Followed)],
    version: i16,
    session: &mut FetchSessionHandler<SessionKey>,
) -> FetchRequest {
    let s = &shared.settings;
    let wanted: BTreeMap<SessionKey, FetchPosition> = fetching
        .iter()
        .map(|(tp, followed)| {
            let log = ReplicaManager::log(&followed.partition);
            let position = FetchPosition {
                fetch_offset: log.log_end_offset(),
                log_start_offset: log.log_start_offset(),
                current_leader_epoch: followed.partition.leader_epoch,
                max_bytes: s.max_bytes,
            };
            ((tp.clone(), followed.partition.topic_id), position)
        })
        .collect();
    let (session_id, epoch, send, forgotten) = if version >= 7 {
        let plan = session.build(wanted);
        (plan.session_id, plan.epoch, plan.send, plan.forgotten)
    } else {
        (0, -1, wanted.into_iter().collect(), Vec::new())
    };
    let request = FetchRequest::default()
        .with_max_wait_ms(s.wait_max_ms)
        .with_min_bytes(s.min_bytes)
        .with_max_bytes(s.response_max_bytes)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(fetch_topics(&send, version))
        .with_forgotten_topics_data(forgotten_topics(&forgotten, version));
    let broker_epoch = shared.broker_epoch.load(Ordering::Relaxed);
    if version >= 15 {
        request.with_replica_state(
            ReplicaState::default().with_replica_id(s.node_id.into()).with_replica_epoch(broker_epoch),
        )
    } else {
        request.with_replica_id(s.node_id.into())
    }
}

/// Names up to v12, ids from v13: the other field stays at its default.
fn topic_key(tp: &TopicPartition, topic_id: gregor_metadata::Uuid, version: i16) -> (TopicName, gregor_metadata::Uuid) {
    if version >= 13 {
        (TopicName::default(), topic_id)
    } else {
        (TopicName(crate::handlers::str_bytes(&tp.topic)), gregor_metadata::Uuid::nil())
    }
}

fn fetch_topics(send: &[(SessionKey, FetchPosition)], version: i16) -> Vec<FetchTopic> {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((tp, topic_id), position) in send {
        let partition = FetchPartition::default()
            .with_partition(tp.partition)
            .with_current_leader_epoch(position.current_leader_epoch)
            .with_fetch_offset(position.fetch_offset)
            .with_log_start_offset(position.log_start_offset)
            .with_partition_max_bytes(position.max_bytes);
        let (name, id) = topic_key(tp, *topic_id, version);
        match topics.last_mut().filter(|t| t.topic == name && t.topic_id == id) {
            Some(t) => t.partitions.push(partition),
            None => {
                topics.push(FetchTopic::default().with_topic(name).with_topic_id(id).with_partitions(vec![partition]))
            }
        }
    }
    topics
}

fn forgotten_topics(forgotten: &[SessionKey], version: i16) -> Vec<ForgottenTopic> {
    let mut topics: Vec<ForgottenTopic> = Vec::new();
    for (tp, topic_id) in forgotten {
        let (name, id) = topic_key(tp, *topic_id, version);
        match topics.last_mut().filter(|t| t.topic == name && t.topic_id == id) {
            Some(t) => t.partitions.push(tp.partition),
            None => topics
                .push(ForgottenTopic::default().with_topic(name).with_topic_id(id).with_partitions(vec![tp.partition])),
        }
    }
    topics
}

/// Appends what the leader sent and handles each partition's error.
async fn apply(
    fetcher: &Fetcher,
    shared: &Shared,
    fetching: Vec<(TopicPartition, Followed)>,
    response: FetchResponse,
    version: i16,
) {
    let image = shared.image.borrow().clone();
    let mut answers = HashMap::new();
    for topic in response.responses {
        let name = if version >= 13 {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.to_string())
        } else {
            Some(topic.topic.0.to_string())
        };
        let Some(name) = name else { continue };
        for p in topic.partitions {
            let _ = answers.insert(TopicPartition::new(name.as_str(), p.partition_index), p);
        }
    }
    let backoff = shared.settings.backoff;
    for (tp, followed) in fetching {
        let Some(answer) = answers.remove(&tp) else { continue };
        let partition = followed.partition.clone();
        let bytes = answer.records.as_ref().map_or(0, bytes::Bytes::len);
        shared.quotas.follower_fetched((partition.topic_id, tp.partition), bytes, now_ms());
        let outcome = blocking(move || {
            let records = answer.records.unwrap_or_default();
            match ResponseError::try_from_code(answer.error_code) {
                None => ReplicaManager::append_as_follower(
                    &partition,
                    &records,
                    (answer.high_watermark, answer.log_start_offset),
                    now_ms(),
                )
                .map(|_| Step::Fetched)
                .unwrap_or_else(|e| Step::Failed(e.to_string())),
                Some(ResponseError::OffsetOutOfRange) => out_of_range(&partition, answer.log_start_offset),
                Some(e) => Step::Failed(format!("{e:?}")),
            }
        })
        .await;
        match outcome {
            Step::Fetched => {}
            Step::Retruncate => fetcher.update(&tp, &followed.partition, |f| f.truncated = false),
            Step::Failed(reason) => {
                tracing::debug!(partition = %tp, leader = fetcher.leader, %reason, "replica fetch error");
                fetcher.update(&tp, &followed.partition, |f| f.retry_at = Some(Instant::now() + backoff));
            }
        }
    }
}

/// A fetch partition's outcome.
enum Step {
    Fetched,
    /// The logs disagree: find the divergence again.
    Retruncate,
    Failed(String),
}

/// OFFSET_OUT_OF_RANGE: below the leader's log start the follower starts over there
/// (the leader deleted what it would fetch); otherwise it truncates again.
fn out_of_range(partition: &Partition, leader_log_start: i64) -> Step {
    let step = ReplicaManager::while_following(partition, |log| {
        if log.log_end_offset() >= leader_log_start {
            return Step::Retruncate;
        }
        match log.truncate_fully_and_start_at(leader_log_start) {
            Ok(()) => Step::Fetched,
            Err(e) => Step::Failed(e.to_string()),
        }
    });
    step.unwrap_or_else(|| Step::Failed("the partition's epoch ended".into()))
}

/// Cuts a partition's log to where it agrees with the leader's (at most a few rounds:
/// each retry asks about an older epoch).
async fn truncate(
    fetcher: &Fetcher,
    shared: &Shared,
    conn: &mut Connection,
    tp: &TopicPartition,
    followed: &Followed,
) -> Result<(), gregor_client::ClientError> {
    for _ in 0..16 {
        let latest = ReplicaManager::log(&followed.partition).latest_epoch();
        let Some(latest) = latest else {
            fetcher.update(tp, &followed.partition, |f| f.truncated = true);
            return Ok(());
        };
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(shared.settings.node_id.into())
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(TopicName(crate::handlers::str_bytes(&tp.topic)))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(tp.partition)
                    .with_current_leader_epoch(followed.partition.leader_epoch)
                    .with_leader_epoch(latest)])]);
        let response = conn.send(&request, None).await?;
        let Some(answer) = response.topics.first().and_then(|t| t.partitions.first()) else { return Ok(()) };
        if answer.error_code != 0 {
            tracing::debug!(partition = %tp, code = answer.error_code, "OffsetForLeaderEpoch refused; retrying later");
            let at = Instant::now() + shared.settings.backoff;
            fetcher.update(tp, &followed.partition, |f| f.retry_at = Some(at));
            return Ok(());
        }
        let (epoch, end) = (answer.leader_epoch, answer.end_offset);
        let partition = followed.partition.clone();
        let step = blocking(move || cut(&partition, (epoch, end))).await;
        match step {
            Some(Truncation::Complete(_)) => {
                fetcher.update(tp, &followed.partition, |f| f.truncated = true);
                return Ok(());
            }
            Some(Truncation::Retry(_)) => {}
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Decides and carries out one truncation step; `None` when the log refused.
fn cut(partition: &Partition, leader_answer: (i32, i64)) -> Option<Truncation> {
    ReplicaManager::while_following(partition, |log| cut_log(log, leader_answer)).flatten()
}

fn cut_log(log: &mut gregor_log::PartitionLog, leader_answer: (i32, i64)) -> Option<Truncation> {
    let follower = FollowerLog {
        log_end_offset: log.log_end_offset(),
        high_watermark: log.high_watermark(),
        end_for_leader_epoch: log.end_offset_for_epoch(leader_answer.0),
    };
    let decision = truncation::decide(leader_answer, follower);
    let (Truncation::Complete(offset) | Truncation::Retry(offset)) = decision;
    if offset < follower.log_end_offset {
        tracing::info!(partition = %log.topic_partition(), from = follower.log_end_offset, to = offset, "truncating to the leader's log");
        if let Err(e) = log.truncate_to(offset) {
            tracing::warn!(error = %e, "truncation failed");
            return None;
        }
    }
    Some(decision)
}
