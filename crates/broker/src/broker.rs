//! The broker's shared state and the steps that keep the hosted logs in line with the
//! metadata image.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use gregor_metadata::control::{self, NewTopic};
use gregor_metadata::{BrokerRegistration, MetadataImage, MetadataRecord};
use gregor_protocol::TopicPartition;

use crate::config::change::{self, ConfigOp};
use crate::config::BrokerConfig;
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

#[derive(Debug)]
pub(crate) struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) node_id: i32,
    pub(crate) cluster_id: String,
    pub(crate) advertised_host: String,
    pub(crate) advertised_port: i32,
    pub(crate) metadata: MetadataQuorum,
    pub(crate) replicas: ReplicaManager,
    pub(crate) groups: Arc<GroupCoordinator>,
    pub(crate) txns: TransactionCoordinator,
    producer_ids: Mutex<Range<i64>>,
}

impl Broker {
    pub(crate) fn new(
        config: BrokerConfig,
        cluster_id: String,
        advertised: (String, i32),
        metadata: MetadataQuorum,
        replicas: ReplicaManager,
    ) -> Self {
        let node_id = config.node_id();
        let groups =
            GroupCoordinator::new(group_config(&config), config.broker_i64("offsets.topic.num.partitions") as i32);
        let txns = TransactionCoordinator::new(
            txn_config(&config),
            config.broker_i64("transaction.state.log.num.partitions") as i32,
        );
        Self {
            txns,
            config,
            node_id,
            cluster_id,
            advertised_host: advertised.0,
            advertised_port: advertised.1,
            metadata,
            replicas,
            groups: Arc::new(groups),
            producer_ids: Mutex::new(0..0),
        }
    }

    /// Registers this broker (host and port may change between runs) and opens the
    /// logs of every partition the image assigns to it.
    pub(crate) fn register_and_load(&self) -> Result<(), BrokerError> {
        let me = BrokerRegistration {
            node_id: self.node_id,
            host: self.advertised_host.clone(),
            port: self.advertised_port,
            rack: None,
        };
        self.metadata.write(|image| {
            let records = match image.brokers.get(&me.node_id) {
                Some(existing) if *existing == me => vec![],
                _ => vec![MetadataRecord::RegisterBroker(me.clone())],
            };
            Ok((records, ()))
        })?;
        self.reconcile()?;
        self.groups.load(self)?;
        // After the groups: completing a decided transaction may write markers to
        // `__consumer_offsets`, which the group shards apply.
        self.txns.load(self)
    }

    /// The static config overlaid with the dynamic broker configs of the current image.
    pub(crate) fn effective_config(&self) -> BrokerConfig {
        self.config.with_dynamic(self.node_id, &self.metadata.image().broker_configs)
    }

    /// Makes the hosted partitions match the image: opens new ones (and applies changed
    /// topic configs to open ones), deletes removed ones.
    pub(crate) fn reconcile(&self) -> Result<(), BrokerError> {
        let image = self.metadata.image();
        let config = self.config.with_dynamic(self.node_id, &image.broker_configs);
        let mut wanted = HashSet::new();
        for topic in image.topics() {
            let log_config = config.log_config(&topic.configs);
            let topic_id = topic.topic_id.to_string();
            for p in topic.partitions.values().filter(|p| p.replicas.contains(&self.node_id)) {
                let tp = TopicPartition::new(topic.name.clone(), p.partition);
                self.replicas.become_leader(&tp, log_config.clone(), &topic_id, p.leader_epoch, now_ms())?;
                let _ = wanted.insert(tp);
            }
        }
        for tp in self.replicas.hosted() {
            if !wanted.contains(&tp) {
                self.replicas.delete(&tp)?;
            }
        }
        Ok(())
    }

    /// Creates a topic through the metadata log and opens its logs.
    pub(crate) fn create_topic(&self, topic: &NewTopic) -> Result<(), BrokerError> {
        self.metadata.write(|image| Ok((control::create_topic(image, topic)?, ())))?;
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
        let topic = NewTopic {
            name: name.to_owned(),
            num_partitions,
            replication_factor: 1,
            assignments: vec![],
            configs: all,
        };
        match self.create_topic(&topic) {
            Err(BrokerError::Metadata(gregor_metadata::MetadataError::TopicExists(_))) => Ok(()),
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
            Err(BrokerError::Metadata(gregor_metadata::MetadataError::TopicExists(_))) => Ok(()),
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
        let mut invalid = None;
        self.metadata.write(|image| {
            let config = self.config.with_dynamic(self.node_id, &image.broker_configs);
            let planned = change::plan(image, &config, self.node_id, resource, changes, replace_all);
            match planned {
                Ok(records) if !validate_only => Ok((records, ())),
                Ok(_) => Ok((vec![], ())),
                Err(e) => {
                    invalid = Some(e);
                    Ok((vec![], ()))
                }
            }
        })?;
        if let Some(e) = invalid {
            return Err(e);
        }
        self.reconcile()
    }

    /// Every topic's id and partition count, as the KIP-848 group coordinator needs them.
    pub(crate) fn topics_view(&self) -> gregor_coordinator::TopicsView {
        self.image().topics().map(|t| (t.name.to_string(), (t.topic_id, t.partitions.len() as i32))).collect()
    }

    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// A fresh producer id, from a block reserved durably in the metadata log so ids
    /// are never handed out twice, even across restarts.
    pub(crate) fn next_producer_id(&self) -> Result<i64, BrokerError> {
        let mut block = self.producer_ids.lock().unwrap_or_else(PoisonError::into_inner);
        if block.is_empty() {
            let node = self.node_id;
            let start = self.metadata.write(|image| {
                let (start, record) = control::allocate_producer_ids(image, node);
                Ok((vec![record], start))
            })?;
            *block = start..start + control::PRODUCER_ID_BLOCK_SIZE;
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }

    /// Flushes every log and the metadata, writes checkpoints and the clean-shutdown marker.
    pub(crate) fn close(&self) -> Result<(), BrokerError> {
        self.groups.abandon_pending();
        self.replicas.log_manager().shutdown()?;
        self.metadata.close()?;
        Ok(())
    }
}
