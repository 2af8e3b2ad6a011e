//! The broker's shared state and the steps that keep the hosted logs in line with the
//! metadata image.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use gregor_metadata::control::{self, NewTopic};
use gregor_metadata::{BrokerRegistration, MetadataImage};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::TopicPartition;

use crate::config::change::ConfigOp;
use crate::config::BrokerConfig;
use crate::controller::{ControllerAnswer, ControllerCommand, TopicSpec};
use crate::group_coordinator::{group_config, GroupCoordinator};
use crate::metadata_quorum::MetadataQuorum;
use crate::replica_manager::ReplicaManager;
use crate::txn_coordinator::{txn_config, TransactionCoordinator};
use crate::BrokerError;

/// Milliseconds since the Unix epoch: the one clock the broker reads.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long a coordinator's write waits for the ISR (Kafka's `offsets.commit.timeout.ms`).
pub(crate) const COORDINATOR_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) node_id: i32,
    pub(crate) cluster_id: String,
    /// The inter-broker listener's advertised address (replication, forwarding).
    pub(crate) advertised_host: String,
    pub(crate) advertised_port: i32,
    /// Every client listener's advertised endpoint, as registered.
    pub(crate) endpoints: Vec<gregor_metadata::BrokerEndpoint>,
    pub(crate) metadata: MetadataQuorum,
    pub(crate) replicas: ReplicaManager,
    pub(crate) groups: Arc<GroupCoordinator>,
    pub(crate) txns: TransactionCoordinator,
    /// KIP-227 fetch sessions of this broker's fetchers.
    pub(crate) fetch_sessions: crate::fetch_session::FetchSessionCache,
    /// ACLs and who may do what (`authorizer.class.name`).
    pub(crate) authz: crate::authz::Authz,
    producer_ids: Mutex<Range<i64>>,
    /// One reconciliation at a time: after a local change and after an image from the
    /// quorum may both ask for one.
    reconcile_lock: Mutex<()>,
    /// This process's registration (KIP-631): a new incarnation id per start.
    incarnation_id: uuid::Uuid,
    broker_epoch: Arc<std::sync::atomic::AtomicI64>,
    /// The followers' fetchers, one per leader this broker follows partitions of.
    pub(crate) fetchers: crate::replica_fetcher::ReplicaFetchers,
    /// The replication throttles of reassignments, as leader and as follower.
    pub(crate) replication_quotas: Arc<crate::replication_quota::ReplicationQuotas>,
    /// Set by a controlled shutdown: no more heartbeats (they would unfence it again).
    stopping: std::sync::atomic::AtomicBool,
    /// Held by a heartbeat while it is sent, so that a controlled shutdown waits for the
    /// one in flight (decided after the fence, it would unfence the broker).
    heartbeat_lock: Mutex<()>,
}

impl Broker {
    pub(crate) fn new(
        config: BrokerConfig,
        cluster_id: String,
        advertised: ((String, i32), Vec<gregor_metadata::BrokerEndpoint>),
        metadata: MetadataQuorum,
        replicas: ReplicaManager,
    ) -> Result<Self, BrokerError> {
        let ((advertised_host, advertised_port), endpoints) = advertised;
        let authz = crate::authz::Authz::of(&config)?;
        let node_id = config.node_id();
        let groups =
            GroupCoordinator::new(group_config(&config), config.broker_i64("offsets.topic.num.partitions") as i32);
        let txns = TransactionCoordinator::new(
            txn_config(&config),
            config.broker_i64("transaction.state.log.num.partitions") as i32,
            config.broker_i64("transaction.state.log.segment.bytes"),
        );
        let fetch_sessions = crate::fetch_session::FetchSessionCache::new(
            usize::try_from(config.broker_i64("max.incremental.fetch.session.cache.slots")).unwrap_or(0),
            config.broker_i64("min.incremental.fetch.session.eviction.ms"),
        );
        let broker_epoch = Arc::new(std::sync::atomic::AtomicI64::new(-1));
        let replication_quotas = Arc::new(crate::replication_quota::ReplicationQuotas::new(&config));
        let fetchers = crate::replica_fetcher::ReplicaFetchers::new(
            crate::replica_fetcher::FetcherSettings::of(&config),
            (metadata.subscribe(), broker_epoch.clone()),
            replication_quotas.clone(),
        );
        Ok(Self {
            authz,
            replication_quotas,
            txns,
            fetch_sessions,
            fetchers,
            config,
            node_id,
            cluster_id,
            advertised_host,
            advertised_port,
            endpoints,
            metadata,
            replicas,
            groups: Arc::new(groups),
            producer_ids: Mutex::new(0..0),
            reconcile_lock: Mutex::new(()),
            incarnation_id: uuid::Uuid::new_v4(),
            broker_epoch,
            stopping: std::sync::atomic::AtomicBool::new(false),
            heartbeat_lock: Mutex::new(()),
        })
    }

    /// Registers this broker (host and port may change between runs) and opens the
    /// logs of every partition the image assigns to it.
    pub(crate) fn register_and_load(&self) -> Result<(), BrokerError> {
        self.register()?;
        self.reconcile()?;
        self.groups.load(self)?;
        // After the groups: completing a decided transaction may write markers to
        // `__consumer_offsets`, which the group shards apply.
        self.txns.load(self)
    }

    /// Registers this process with the active controller (a new incarnation, so a new
    /// broker epoch) and remembers the epoch it got.
    pub(crate) fn register(&self) -> Result<(), BrokerError> {
        let me = BrokerRegistration {
            node_id: self.node_id,
            host: self.advertised_host.clone(),
            port: self.advertised_port,
            rack: self.config.broker_value("broker.rack").value.filter(|r| !r.is_empty()),
            incarnation_id: Some(self.incarnation_id),
            listeners: self.endpoints.clone(),
            ..BrokerRegistration::default()
        };
        let _ = self.metadata.execute(ControllerCommand::RegisterBroker(me))?;
        let epoch = self.image().brokers.get(&self.node_id).map_or(-1, |b| b.epoch);
        self.broker_epoch.store(epoch, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(epoch, "registered with the controller");
        Ok(())
    }

    /// One KIP-631 heartbeat: re-registers when the controller no longer knows this
    /// broker's epoch (STALE_BROKER_EPOCH).
    pub(crate) fn heartbeat(&self) -> Result<(), BrokerError> {
        let _one = self.heartbeat_lock.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let command = ControllerCommand::BrokerHeartbeat {
            node_id: self.node_id,
            epoch: self.broker_epoch.load(std::sync::atomic::Ordering::Relaxed),
            metadata_offset: self.image().last_offset,
        };
        match self.metadata.execute(command) {
            Err(e) if e.response_error() == gregor_protocol::kafka_protocol::ResponseError::StaleBrokerEpoch => {
                tracing::info!("the controller does not know this broker's epoch: registering again");
                self.register()
            }
            other => other.map(drop),
        }
    }

    /// Kafka's controlled shutdown, in a cluster with `controlled.shutdown.enable`: the
    /// controller fences this broker (clients stop being sent here while it still serves
    /// them), and the quorum's leadership moves off this node if it holds it. Failures are
    /// logged, not fatal: the session timeout fences a broker that just stops.
    pub(crate) fn controlled_shutdown(&self) {
        if !self.metadata.has_peers() || !self.config.broker_bool("controlled.shutdown.enable") {
            return;
        }
        self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(self.heartbeat_lock.lock().unwrap_or_else(PoisonError::into_inner));
        let epoch = self.broker_epoch.load(std::sync::atomic::Ordering::Relaxed);
        match self.metadata.execute(ControllerCommand::ControlledShutdown { node_id: self.node_id, epoch }) {
            Ok(_) => tracing::info!(epoch, "controlled shutdown: fenced by the controller"),
            Err(e) => tracing::warn!(error = %e, "controlled shutdown: the controller did not fence this broker"),
        }
        self.metadata.resign();
    }

    /// The static config overlaid with the dynamic broker configs of the current image.
    pub(crate) fn effective_config(&self) -> BrokerConfig {
        self.config.with_dynamic(self.node_id, &self.metadata.image().broker_configs)
    }

    /// Makes the hosted partitions match the image: leads the partitions the image says
    /// this broker leads, follows the others it is a replica of (their fetchers follow
    /// the new leaders), applies changed topic configs, and deletes removed partitions.
    pub(crate) fn reconcile(&self) -> Result<(), BrokerError> {
        let _one_at_a_time = self.reconcile_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let image = self.metadata.image();
        let config = self.config.with_dynamic(self.node_id, &image.broker_configs);
        self.replication_quotas.refresh(&config, &image, self.node_id);
        let lag_max_ms = config.broker_i64("replica.lag.time.max.ms");
        let mut wanted = HashSet::new();
        let mut followed = Vec::new();
        for topic in image.topics() {
            let log_config = config.log_config(&topic.configs);
            let min_isr = config.topic_i64("min.insync.replicas", &topic.configs).unwrap_or(1).max(1) as usize;
            let limits = crate::replica_manager::Limits { min_isr, lag_max_ms };
            for p in topic.partitions.values().filter(|p| p.replicas.contains(&self.node_id)) {
                let tp = TopicPartition::new(topic.name.clone(), p.partition);
                let opened = (log_config.clone(), topic.topic_id);
                if p.leader == self.node_id {
                    self.replicas.become_leader(&tp, opened, p, (self.node_id, limits), now_ms())?;
                } else {
                    let _ = self.replicas.become_follower(&tp, opened, p, now_ms())?;
                    if p.leader >= 0 {
                        if let Some(partition) = self.replicas.get(&tp) {
                            followed.push((tp.clone(), p.leader, partition));
                        }
                    }
                }
                let _ = wanted.insert(tp);
            }
        }
        self.fetchers.assign(followed);
        for tp in self.replicas.hosted() {
            if !wanted.contains(&tp) {
                self.replicas.delete(&tp)?;
                if image.topic(&tp.topic).is_none() {
                    self.replicas.metrics.forget_topic(&tp.topic); // deleted, not moved away
                }
            }
        }
        Ok(())
    }

    /// This process's broker epoch (KIP-903), -1 before it registered.
    pub(crate) fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Proposes the ISR changes the partitions this broker leads want (KIP-497's
    /// AlterPartition, sent to the active controller); the new ISR takes effect when the
    /// image carries it back.
    pub(crate) fn maintain_isr(&self) {
        let retry_ms = self.config.broker_i64("replica.lag.time.max.ms").min(5_000);
        let image = self.image();
        let eligible =
            |broker: i32, epoch: i64| image.brokers.get(&broker).is_some_and(|b| !b.fenced && b.epoch == epoch);
        for (tp, partition, change) in self.replicas.isr_changes((now_ms(), retry_ms), &eligible) {
            let me = self.broker_epoch();
            let request = gregor_metadata::replication_control::AlterPartition {
                topic_id: partition.topic_id,
                partition: tp.partition,
                leader_id: self.node_id,
                leader_epoch: change.leader_epoch,
                partition_epoch: change.partition_epoch,
                new_isr: change
                    .new_isr
                    .iter()
                    .map(|&(broker_id, epoch)| gregor_metadata::replication_control::IsrMember {
                        broker_id,
                        broker_epoch: if broker_id == self.node_id { me } else { epoch },
                    })
                    .collect(),
            };
            let isr: Vec<i32> = change.new_isr.iter().map(|m| m.0).collect();
            match self.metadata.execute(ControllerCommand::AlterPartition(request)) {
                Ok(_) => tracing::info!(partition = %tp, ?isr, "ISR changed"),
                Err(e) => {
                    tracing::info!(partition = %tp, ?isr, error = %e, "ISR change not confirmed");
                    // Only a refusal that says nothing was applied ends the proposal; after
                    // a timeout the controller may have applied it (the metadata will say),
                    // so its members stay in the maximal ISR and it is sent again.
                    let not_applied = [ResponseError::IneligibleReplica, ResponseError::OperationNotAttempted]
                        .iter()
                        .any(|r| r.code() == e.code());
                    if not_applied {
                        crate::replica_manager::ReplicaManager::isr_change_failed(&partition);
                    }
                }
            }
        }
    }

    /// Creates a topic through the metadata log and opens its logs.
    pub(crate) fn create_topic(&self, topic: &NewTopic) -> Result<(), BrokerError> {
        let _ = self.metadata.execute(ControllerCommand::CreateTopic(TopicSpec::of(topic)))?;
        self.reconcile()
    }

    /// Creates a coordinator's internal topic (compacted, one replica on one node) unless
    /// it exists; losing a race with another creator is fine.
    pub(crate) fn ensure_internal_topic(
        &self,
        name: &str,
        num_partitions: i32,
        configs: Vec<(String, String)>,
    ) -> Result<(), BrokerError> {
        if self.image().topic(name).is_some() {
            return Ok(());
        }
        let mut all = vec![("cleanup.policy".to_owned(), "compact".to_owned())];
        all.extend(configs);
        // Kafka's keys; a single node (one voter, no peers) places the one replica it can,
        // a cluster waits until enough brokers registered (the coordinator stays
        // unavailable, retriably) rather than create an under-replicated internal topic.
        let key = if name == "__transaction_state" {
            "transaction.state.log.replication.factor"
        } else {
            "offsets.topic.replication.factor"
        };
        let configured = self.config.broker_i64(key).max(1) as i32;
        let replication_factor = if self.metadata.has_peers() {
            configured
        } else {
            configured.min(self.image().brokers.len().max(1) as i32)
        };
        let topic =
            NewTopic { name: name.to_owned(), num_partitions, replication_factor, assignments: vec![], configs: all };
        match self.create_topic(&topic) {
            Err(e) if e.is_topic_exists() => Ok(()),
            other => other,
        }
    }

    /// Creates a topic with the broker defaults, as `auto.create.topics.enable` does.
    /// Losing a race with another creator is fine.
    pub(crate) fn auto_create_topic(&self, name: &str) -> Result<(), BrokerError> {
        let topic = NewTopic {
            name: name.to_owned(),
            num_partitions: self.config.broker_i64("num.partitions") as i32,
            replication_factor: (self.config.broker_i64("default.replication.factor") as i32)
                .min(self.metadata.image().brokers.len().max(1) as i32),
            assignments: vec![],
            configs: vec![],
        };
        match self.create_topic(&topic) {
            Err(e) if e.is_topic_exists() => Ok(()),
            other => other,
        }
    }

    /// Validates and stores config changes for one resource, then applies them to the logs.
    pub(crate) fn alter_configs(
        &self,
        resource: (i8, &str),
        changes: &[(String, ConfigOp)],
        replace_all: bool,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let _ = self.metadata.execute(ControllerCommand::AlterConfigs {
            resource_type: resource.0,
            resource_name: resource.1.to_owned(),
            changes: changes.to_vec(),
            replace_all,
            validate_only,
        })?;
        self.reconcile()
    }

    /// Every topic's id and partition count, as the KIP-848 group coordinator needs them.
    pub(crate) fn topics_view(&self) -> gregor_coordinator::TopicsView {
        self.image().topics().map(|t| (t.name.to_string(), (t.topic_id, t.partitions.len() as i32))).collect()
    }

    /// The partition's log if this broker leads it (as the image says): otherwise
    /// NOT_LEADER_OR_FOLLOWER for a partition the cluster has, so the client refreshes its
    /// metadata and goes to the leader, and UNKNOWN_TOPIC_OR_PARTITION for one it has not.
    pub(crate) fn leader_partition(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
    ) -> Result<Arc<crate::replica_manager::Partition>, gregor_protocol::kafka_protocol::ResponseError> {
        self.local_replica(image, tp, |p| p.leader == self.node_id)
    }

    /// A partition a consumer may read here from Fetch v11 on (KIP-392): one this broker
    /// leads or follows, in its current epoch.
    pub(crate) fn hosted_replica(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
    ) -> Result<Arc<crate::replica_manager::Partition>, gregor_protocol::kafka_protocol::ResponseError> {
        self.local_replica(image, tp, |p| p.replicas.contains(&self.node_id))
    }

    /// The partition's live epoch here if the image gives this broker the role `serves`
    /// asks for.
    fn local_replica(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        serves: impl Fn(&gregor_metadata::PartitionRegistration) -> bool,
    ) -> Result<Arc<crate::replica_manager::Partition>, gregor_protocol::kafka_protocol::ResponseError> {
        use gregor_protocol::kafka_protocol::ResponseError;
        match image.topic(&tp.topic).and_then(|t| t.partitions.get(&tp.partition)) {
            None => Err(ResponseError::UnknownTopicOrPartition),
            Some(p) if !serves(p) => Err(ResponseError::NotLeaderOrFollower),
            Some(_) => self
                .replicas
                .get(tp)
                .filter(|p| !matches!(*p.role(), crate::replica_manager::Role::Gone))
                .ok_or(ResponseError::NotLeaderOrFollower),
        }
    }

    /// Whether the image makes this broker the leader of `topic`'s `partition`.
    pub(crate) fn leads(&self, topic: &str, partition: i32) -> bool {
        self.image().topic(topic).and_then(|t| t.partitions.get(&partition)).is_some_and(|p| p.leader == self.node_id)
    }

    /// The broker (id, host, port) leading `topic`'s `partition` at its endpoint of
    /// `listener`, for FindCoordinator: `None` when the partition or its leader is not
    /// known, `Some(None)` when the leader has no such listener.
    pub(crate) fn leader_of(&self, topic: &str, partition: i32, listener: &str) -> Option<Option<(i32, String, i32)>> {
        let image = self.image();
        let leader = image.topic(topic)?.partitions.get(&partition)?.leader;
        let broker = image.brokers.get(&leader)?;
        Some(broker.endpoint(listener).map(|(host, port)| (leader, host.to_owned(), port)))
    }

    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// A fresh producer id, from a block reserved durably in the metadata log so ids
    /// are never handed out twice, even across restarts.
    pub(crate) fn next_producer_id(&self) -> Result<i64, BrokerError> {
        let mut block = self.producer_ids.lock().unwrap_or_else(PoisonError::into_inner);
        if block.is_empty() {
            // Kafka's producer-id manager answers COORDINATOR_LOAD_IN_PROGRESS while it has
            // no block, which producers retry; controller codes mean nothing to them.
            let answer = self
                .metadata
                .execute(ControllerCommand::AllocateProducerIds { broker_id: self.node_id })
                .map_err(|e| BrokerError::Remote {
                    code: ResponseError::CoordinatorLoadInProgress.code(),
                    message: format!("no producer id block yet: {e}"),
                })?;
            let ControllerAnswer::ProducerIds { start } = answer else {
                return Err(BrokerError::InvalidRequest("the controller reserved no producer ids".into()));
            };
            *block = start..start + control::PRODUCER_ID_BLOCK_SIZE;
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }

    /// Flushes every log and the metadata, writes checkpoints and the clean-shutdown marker.
    pub(crate) fn close(&self) -> Result<(), BrokerError> {
        self.fetchers.shutdown();
        self.groups.abandon_pending();
        self.replicas.log_manager().shutdown()?;
        self.metadata.close()?;
        Ok(())
    }
}

/// The broker as the coordinator runtime sees it.
impl crate::coordinator_runtime::CoordinatorHost for Broker {
    fn leads(&self, topic: &str, partition: i32) -> bool {
        Broker::leads(self, topic, partition)
    }

    fn leader_epoch(&self, topic: &str, partition: i32) -> Option<i32> {
        self.image().topic(topic)?.partitions.get(&partition).map(|p| p.leader_epoch)
    }

    fn has_topic(&self, topic: &str) -> bool {
        self.image().topic(topic).is_some()
    }

    fn ensure_internal_topic(
        &self,
        topic: &str,
        partitions: i32,
        configs: Vec<(String, String)>,
    ) -> Result<(), BrokerError> {
        Broker::ensure_internal_topic(self, topic, partitions, configs)
    }

    /// Up to the log end offset, as Kafka's loaders read: a coordinator loads as the
    /// partition's leader, and its whole log is what the partition will hold (followers
    /// truncate to it), so records above the high watermark count too: a write its
    /// predecessor saw time out may commit yet, and a transaction it opened must be
    /// aborted, not bumped past, when its producer comes back (found by scripts/chaos).
    fn read_partition(&self, tp: &TopicPartition) -> Result<Vec<gregor_protocol::records::KeyValue>, BrokerError> {
        let partition = self.replicas.get(tp).ok_or_else(|| BrokerError::UnknownTopicOrPartition(tp.to_string()))?;
        let log = partition.log.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(log.read_all_records_until(log.log_end_offset())?)
    }

    fn read_committed(&self, tp: &TopicPartition) -> Result<Vec<gregor_protocol::records::KeyValue>, BrokerError> {
        let partition = self.replicas.get(tp).ok_or_else(|| BrokerError::UnknownTopicOrPartition(tp.to_string()))?;
        let log = partition.log.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(log.read_all_records_until(log.high_watermark())?)
    }

    /// acks=all, as Kafka's coordinators write: answered once the ISR has the records
    /// (at once on one node), so a commit acknowledged to a client survives a failover.
    fn append_batch(&self, tp: &TopicPartition, batch: &mut [u8], now_ms: i64) -> Result<(), BrokerError> {
        let (info, partition) = self.replicas.append(tp, batch, -1, now_ms)?;
        crate::replica_manager::ReplicaManager::await_replicated(
            &partition,
            info.last_offset + 1,
            COORDINATOR_WRITE_TIMEOUT,
        )
    }
}
