//! The active controller as one logical process (the quorum under it is not simulated):
//! it decides with Gregor's real pure functions (`replication_control::{on_broker_change,
//! alter_partition, elect, imbalanced}`) and replays the records into a real
//! `MetadataImage`, which brokers receive by push and by polling. The glue around those
//! calls copies `crates/broker/src/controller.rs` (`ControllerCommand::decide`) and
//! `metadata_quorum.rs` (`fence_expired`, `rebalance_leaders`).

use std::collections::BTreeMap;
use std::rc::Rc;

use gregor_metadata::replication_control::{
    alter_partition, elect, imbalanced, on_broker_change, AlterPartition, BrokerChange, ElectionType,
};
use gregor_metadata::{BrokerRegistration, MetadataImage, MetadataRecord, PartitionRegistration, Uuid};

use crate::ctx::Ctx;
use crate::net::{Msg, Node};

/// The one simulated topic.
pub(crate) const TOPIC: &str = "sim";

/// The controller never restarts: always incarnation 0.
const ME: (Node, u32) = (Node::Controller, 0);

#[derive(Debug)]
pub(crate) struct Controller {
    image: Rc<MetadataImage>,
    next_offset: i64,
    /// Last heartbeat per broker, as `metadata_quorum.rs` keeps it: only heartbeats
    /// update it (a registration does not).
    heartbeats: BTreeMap<i32, u64>,
    brokers: Vec<i32>,
    partitions: i32,
    unclean: bool,
    next_rebalance: u64,
}

/// A broker's registration record; the incarnation id tells a retry from a restart.
pub(crate) fn registration(broker: i32, incarnation: u32) -> BrokerRegistration {
    BrokerRegistration {
        node_id: broker,
        host: "sim".into(),
        port: broker,
        rack: None,
        incarnation_id: Some(Uuid::from_u128(((broker as u128) << 32) | incarnation as u128)),
        epoch: 0,
        fenced: false,
        listeners: Vec::new(),
    }
}

/// Kafka's placement without the randomness: partition p starts at broker p+1.
fn replicas_of(partition: i32, brokers: i32, rf: i32) -> Vec<i32> {
    (0..rf).map(|i| (partition + i) % brokers + 1).collect()
}

impl Controller {
    /// A formed cluster: every broker registered (incarnation 0), the topic created with
    /// each partition led by its first replica and every replica in sync.
    pub(crate) fn bootstrap(cfg: &crate::SimConfig, ctx: &mut Ctx) -> Self {
        let mut c = Self {
            image: Rc::new(MetadataImage::new()),
            next_offset: 0,
            heartbeats: BTreeMap::new(),
            brokers: (1..=cfg.brokers).collect(),
            partitions: cfg.partitions,
            unclean: cfg.unclean_leader_election,
            next_rebalance: cfg.timing.rebalance_ms,
        };
        let topic_id = Uuid::from_u128(0x5157);
        let mut records: Vec<MetadataRecord> =
            c.brokers.iter().map(|&b| MetadataRecord::RegisterBroker(registration(b, 0))).collect();
        records.push(MetadataRecord::Topic { name: TOPIC.into(), topic_id });
        for p in 0..cfg.partitions {
            let replicas = replicas_of(p, cfg.brokers, cfg.replication_factor);
            records.push(MetadataRecord::Partition(PartitionRegistration {
                topic_id,
                partition: p,
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
                ..Default::default()
            }));
        }
        c.commit(records, ctx);
        c
    }

    pub(crate) fn image(&self) -> &Rc<MetadataImage> {
        &self.image
    }

    pub(crate) fn partition_ids(&self) -> std::ops::Range<i32> {
        0..self.partitions
    }

    pub(crate) fn partition(&self, partition: i32) -> Option<&PartitionRegistration> {
        self.image.topic(TOPIC)?.partitions.get(&partition)
    }

    /// Replays `records` at the next offsets and pushes the new image to every broker.
    fn commit(&mut self, records: Vec<MetadataRecord>, ctx: &mut Ctx) {
        if records.is_empty() {
            return;
        }
        for record in &records {
            self.count(record, ctx);
            Rc::make_mut(&mut self.image).replay(self.next_offset, record);
            self.next_offset += 1;
        }
        for &b in &self.brokers {
            ctx.send(ME, Node::Broker(b), Msg::Metadata(self.image.clone()));
        }
    }

    /// Counters and the trace line of one record.
    fn count(&self, record: &MetadataRecord, ctx: &mut Ctx) {
        let offset = self.next_offset;
        match record {
            MetadataRecord::Partition(next) => {
                if let Some(before) = self.partition(next.partition) {
                    ctx.stats.elections += u64::from(next.leader_epoch != before.leader_epoch);
                    ctx.stats.isr_shrinks += u64::from(next.isr.len() < before.isr.len());
                    ctx.stats.isr_expansions += u64::from(next.isr.len() > before.isr.len());
                }
                ctx.note(|| {
                    format!(
                        "controller @{offset}: p{} leader {} le {} pe {} isr {:?}",
                        next.partition, next.leader, next.leader_epoch, next.partition_epoch, next.isr
                    )
                });
            }
            MetadataRecord::BrokerRegistrationChange { node_id, epoch, fenced } => {
                ctx.stats.fences += u64::from(*fenced);
                ctx.note(|| format!("controller @{offset}: broker {node_id} epoch {epoch} fenced={fenced}"));
            }
            MetadataRecord::RegisterBroker(b) => {
                ctx.note(|| format!("controller @{offset}: broker {} registered (epoch {offset})", b.node_id));
            }
            _ => {}
        }
    }

    /// `on_broker_change` with this cluster's unclean-election policy.
    fn follow(&self, broker: i32, change: BrokerChange) -> Vec<MetadataRecord> {
        let unclean = self.unclean;
        on_broker_change(&self.image, broker, change, &move |_| unclean)
    }

    /// A broker fenced or unfenced, and the leaders and ISRs that change with it.
    fn fencing(&self, broker: i32, epoch: i64, fenced: bool) -> Vec<MetadataRecord> {
        let mut records = vec![MetadataRecord::BrokerRegistrationChange { node_id: broker, epoch, fenced }];
        let change = if fenced { BrokerChange::Fenced } else { BrokerChange::Unfenced };
        records.extend(self.follow(broker, change));
        records
    }

    pub(crate) fn handle(&mut self, from: (Node, u32), msg: Msg, ctx: &mut Ctx) {
        let Node::Broker(broker) = from.0 else { return };
        match msg {
            Msg::Register { incarnation } => self.register(broker, incarnation, from, ctx),
            Msg::Heartbeat { epoch, metadata_offset } => {
                let _ = self.heartbeats.insert(broker, ctx.now);
                let stale = self.heartbeat(broker, epoch, metadata_offset, ctx);
                ctx.reply(ME, from, Msg::HeartbeatAnswer { stale });
            }
            Msg::AlterPartition { req, request } => {
                let not_applied = self.alter(&request, ctx);
                ctx.reply(ME, from, Msg::AlterPartitionAnswer { req, not_applied });
            }
            Msg::MetadataFetch { offset } if offset < self.image.last_offset => {
                ctx.reply(ME, from, Msg::Metadata(self.image.clone()));
            }
            _ => {}
        }
    }

    /// `RegisterBroker`: a retry of the same incarnation changes nothing; a new one gets a
    /// new epoch and leaves every ISR (`BrokerChange::Restarted`).
    fn register(&mut self, broker: i32, incarnation: u32, from: (Node, u32), ctx: &mut Ctx) {
        let me = registration(broker, incarnation);
        let retry = self.image.brokers.get(&broker).is_some_and(|b| b.incarnation_id == me.incarnation_id && !b.fenced);
        if !retry {
            let mut records = vec![MetadataRecord::RegisterBroker(me)];
            // Decided on the image before the registration, as `decide` does.
            records.extend(self.follow(broker, BrokerChange::Restarted));
            self.commit(records, ctx);
        }
        let epoch = self.image.brokers.get(&broker).map_or(-1, |b| b.epoch);
        ctx.reply(ME, from, Msg::Registered { epoch });
    }

    /// `BrokerHeartbeat`; returns whether the epoch is stale (the broker registers again).
    fn heartbeat(&mut self, broker: i32, epoch: i64, metadata_offset: i64, ctx: &mut Ctx) -> bool {
        let Some(current) = self.image.brokers.get(&broker).filter(|b| b.epoch == epoch) else { return true };
        if current.fenced && metadata_offset >= current.epoch {
            let records = self.fencing(broker, epoch, false);
            self.commit(records, ctx);
        }
        false
    }

    /// Applies the change, or refuses it; returns whether a refusal says nothing was
    /// applied (INELIGIBLE_REPLICA).
    fn alter(&mut self, request: &AlterPartition, ctx: &mut Ctx) -> bool {
        match alter_partition(&self.image, request) {
            Ok(next) => {
                self.commit(vec![MetadataRecord::Partition(next)], ctx);
                false
            }
            Err(e) => {
                ctx.stats.alter_partition_refused += 1;
                ctx.note(|| format!("controller: AlterPartition from {} refused: {e}", request.leader_id));
                matches!(e, gregor_metadata::MetadataError::IneligibleReplica(_))
            }
        }
    }

    /// The periodic duties: fence brokers whose heartbeats stopped, move leaders back to
    /// preferred replicas, and (only if enabled) elect unclean leaders.
    pub(crate) fn tick(&mut self, ctx: &mut Ctx) {
        self.fence_expired(ctx);
        if ctx.now >= self.next_rebalance {
            self.next_rebalance = ctx.now + ctx.cfg.timing.rebalance_ms;
            self.elect_all(ElectionType::Preferred, ctx);
        }
        if self.unclean {
            self.elect_all(ElectionType::Unclean, ctx);
        }
    }

    fn fence_expired(&mut self, ctx: &mut Ctx) {
        let session = ctx.cfg.timing.session_timeout_ms;
        let now = ctx.now;
        let expired: Vec<(i32, i64)> = self
            .image
            .live_brokers()
            .filter(|b| now.saturating_sub(*self.heartbeats.entry(b.node_id).or_insert(now)) > session)
            .map(|b| (b.node_id, b.epoch))
            .collect();
        for (broker, epoch) in expired {
            let records = self.fencing(broker, epoch, true);
            self.commit(records, ctx);
        }
    }

    /// `rebalance_leaders` (`imbalanced` then `elect` preferred), or Kafka's unclean
    /// election of every partition without a leader.
    fn elect_all(&mut self, election: ElectionType, ctx: &mut Ctx) {
        let wanted: Vec<(String, i32)> = match election {
            ElectionType::Preferred => imbalanced(&self.image, 10),
            // `elect` itself answers NotNeeded where a live leader exists.
            ElectionType::Unclean => {
                let ids = self.image.topic(TOPIC).map(|t| t.partitions.keys().copied().collect::<Vec<_>>());
                ids.unwrap_or_default().into_iter().map(|p| (TOPIC.to_owned(), p)).collect()
            }
        };
        for (topic, partition) in wanted {
            if let Ok(next) = elect(&self.image, (&topic, partition), election) {
                self.commit(vec![MetadataRecord::Partition(next)], ctx);
            }
        }
    }
}
