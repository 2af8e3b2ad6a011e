//! Periodic log maintenance, as Kafka's `LogManager` schedules it: retention every
//! `log.retention.check.interval.ms`, time-based flushes (`flush.ms`) every second,
//! recovery-point checkpoints every `log.flush.offset.checkpoint.interval.ms`, and the
//! log cleaner (compaction) every `log.cleaner.backoff.ms` when `log.cleaner.enable`, and
//! the transaction coordinator's timeouts every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms`, and idle producers'
//! state forgotten every `producer.id.expiration.check.interval.ms` (KIP-854).
//! Disk work runs on the blocking pool so request handling never waits for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{interval, MissedTickBehavior};

use crate::broker::{now_ms, Broker};

fn every(ms: i64) -> tokio::time::Interval {
    let period = Duration::from_millis(u64::try_from(ms.max(1)).unwrap_or(u64::MAX).min(86_400_000));
    let mut tick = interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

pub(crate) async fn run(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut retention = every(broker.config.broker_i64("log.retention.check.interval.ms"));
    let mut flush = every(1_000);
    let mut checkpoint = every(broker.config.broker_i64("log.flush.offset.checkpoint.interval.ms"));
    let mut hw_checkpoint = every(broker.config.broker_i64("replica.high.watermark.checkpoint.interval.ms"));
    let mut cleaner = every(broker.config.broker_i64("log.cleaner.backoff.ms").max(10));
    let cleaner_enabled = broker.config.broker_bool("log.cleaner.enable");
    let mut transactions =
        every(broker.config.broker_i64("transaction.abort.timed.out.transaction.cleanup.interval.ms"));
    let mut producers = every(broker.config.broker_i64("producer.id.expiration.check.interval.ms"));
    loop {
        let job: fn(&Broker) = tokio::select! {
            _ = retention.tick() => |b| { let _ = b.replicas.log_manager().run_retention(now_ms()); },
            _ = flush.tick() => |b| b.replicas.log_manager().flush_due(now_ms()),
            _ = checkpoint.tick() => |b| {
                if let Err(e) = b.replicas.log_manager().checkpoint() {
                    tracing::warn!(error = %e, "writing checkpoints failed");
                }
            },
            _ = hw_checkpoint.tick() => |b| {
                if let Err(e) = b.replicas.log_manager().checkpoint_high_watermarks() {
                    tracing::warn!(error = %e, "writing the high-watermark checkpoint failed");
                }
            },
            _ = cleaner.tick(), if cleaner_enabled => |b| {
                let _ = b.replicas.log_manager().run_cleaner(now_ms());
            },
            _ = transactions.tick() => |b| b.txns.tick(b),
            _ = producers.tick() => |b| {
                let expiration = b.config.broker_i64("producer.id.expiration.ms");
                let _ = b.replicas.log_manager().remove_expired_producers(now_ms(), expiration);
            },
            _ = shutdown.changed() => return,
        };
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || job(&b)).await;
    }
}

/// Keeps the hosted partitions in line with the metadata image as other controllers'
/// decisions arrive through the quorum (a topic created through another broker, a
/// partition moved here).
pub(crate) async fn follow_metadata(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut images = broker.metadata.subscribe();
    loop {
        tokio::select! {
            changed = images.changed() => {
                if changed.is_err() {
                    return;
                }
                if let Err(e) = tokio::task::block_in_place(|| broker.reconcile()) {
                    tracing::warn!(error = %e, "applying the metadata image to the hosted partitions failed");
                }
                // Coordinators follow their partitions' leadership: a shard whose partition
                // this broker no longer leads is dropped (its keys get NOT_COORDINATOR), a
                // newly led one loads on first use. Here, on this task, never under a
                // shard's lock (reconcile also runs from inside coordinator paths).
                tokio::task::block_in_place(|| {
                    broker.groups.unload_unled(&broker);
                    broker.txns.unload_unled(&broker);
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// A controller-only node's periodic work: fencing brokers whose heartbeats stopped,
/// while it is the active controller.
pub(crate) async fn controller_duties(
    metadata: crate::metadata_quorum::MetadataQuorum,
    interval_ms: i64,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = every(interval_ms);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let m = metadata.clone();
                let _ = tokio::task::spawn_blocking(move || m.fence_expired()).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// KIP-631 on both sides: this broker heartbeats to the active controller every
/// `broker.heartbeat.interval.ms`; while this node is the active controller it fences the
/// brokers whose heartbeats stopped for `broker.session.timeout.ms`.
pub(crate) async fn heartbeats(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let interval = u64::try_from(broker.config.broker_i64("broker.heartbeat.interval.ms")).unwrap_or(2000).max(1);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(e) = b.heartbeat() {
                        tracing::debug!(error = %e, "broker heartbeat failed");
                    }
                    b.metadata.fence_expired();
                })
                .await;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// The leaders' ISR upkeep (Kafka's `isr-expiration` task, and the expansion it does on
/// fetches): every half `replica.lag.time.max.ms` (at most 500 ms, so a caught-up follower
/// rejoins quickly), lagging followers are proposed out of the ISR and caught-up ones in.
pub(crate) async fn isr_maintenance(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = every((broker.config.broker_i64("replica.lag.time.max.ms") / 2).clamp(10, 500));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.maintain_isr()).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Kafka's auto leader rebalance: every `leader.imbalance.check.interval.seconds`, the
/// active controller elects preferred leaders where the imbalance is too high.
pub(crate) async fn leader_rebalance(
    metadata: crate::metadata_quorum::MetadataQuorum,
    config: crate::BrokerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    if !config.broker_bool("auto.leader.rebalance.enable") || !metadata.has_peers() {
        return;
    }
    let pct = config.broker_i64("leader.imbalance.per.broker.percentage");
    let mut tick = every(config.broker_i64("leader.imbalance.check.interval.seconds").saturating_mul(1000));
    tick.reset(); // not at start-up: brokers are still coming back
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let m = metadata.clone();
                let _ = tokio::task::spawn_blocking(move || m.rebalance_leaders(pct)).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}
