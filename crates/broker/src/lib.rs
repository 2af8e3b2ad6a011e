//! The Gregor broker: a Kafka-protocol server over Gregor's log and metadata crates.
//!
//! ```text
//!  TCP ─► server (accept) ─► connection (frames, in order) ─► dispatch (api table)
//!                                                               │
//!                                     handlers/<api>.rs ◄───────┘
//!                                        │            │
//!                               ReplicaManager     MetadataQuorum (gregor-quorum)
//!                              (PartitionLogs)   (__cluster_metadata, Raft)
//! ```
//!
//! Embedding, e.g. in a test:
//! ```no_run
//! # async fn demo() -> Result<(), gregor_broker::BrokerError> {
//! let config = gregor_broker::BrokerConfig::from_pairs([
//!     ("log.dirs", "/tmp/gregor-test"),
//!     ("listeners", "PLAINTEXT://127.0.0.1:0"),
//! ])?;
//! let broker = gregor_broker::start(config).await?;
//! println!("bootstrap.servers={}", broker.bootstrap_servers());
//! broker.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod admin_api;
mod authz;
mod background;
mod broker;
pub mod config;
mod connection;
mod connection_quotas;
mod controller;
mod coordinator_runtime;
mod dispatch;
mod error;
mod fetch_session;
mod group_coordinator;
mod handlers;
mod inter_broker;
pub mod listeners;
mod meta_properties;
mod metadata_quorum;
pub mod metrics;
mod observe;
mod replica_fetcher;
mod replica_manager;
mod replication_quota;
mod sasl;
mod server;
pub mod storage;
mod txn_coordinator;

use std::net::SocketAddr;
use std::sync::Arc;

use gregor_log::LogManager;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::BrokerConfig;
pub use dispatch::supported_apis;
pub use error::BrokerError;
pub use observe::{BrokerHandle, ControllerGauges, GroupLag, MetricsSnapshot, PartitionGauges, ReplicaGauges};

use crate::broker::{now_ms, Broker};
use crate::replica_manager::ReplicaManager;

/// A running node: a broker (combined with a controller, by default), or a controller
/// that serves no clients (`process.roles=controller`). Dropping it without
/// [`RunningBroker::shutdown`] leaves the data as a crash would (recoverable, but without
/// the clean-shutdown checkpoint).
#[derive(Debug)]
pub struct RunningBroker {
    node: Node,
    local_addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
enum Node {
    Broker(Arc<Broker>),
    Controller { metadata: metadata_quorum::MetadataQuorum, cluster_id: String, node_id: i32 },
}

impl RunningBroker {
    /// The addresses the client listener is bound to (one per address family of the
    /// host); a controller-only node's controller listener.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// `host:port` as advertised to clients, for `bootstrap.servers`; a controller-only
    /// node's controller listener.
    pub fn bootstrap_servers(&self) -> String {
        match &self.node {
            Node::Broker(broker) => format!("{}:{}", broker.advertised_host, broker.advertised_port),
            Node::Controller { .. } => self.local_addrs.first().map(ToString::to_string).unwrap_or_default(),
        }
    }

    pub fn cluster_id(&self) -> &str {
        match &self.node {
            Node::Broker(broker) => &broker.cluster_id,
            Node::Controller { cluster_id, .. } => cluster_id,
        }
    }

    pub fn node_id(&self) -> i32 {
        match &self.node {
            Node::Broker(broker) => broker.node_id,
            Node::Controller { node_id, .. } => *node_id,
        }
    }

    /// Whether this node serves clients (`process.roles` includes `broker`).
    pub fn is_broker(&self) -> bool {
        matches!(self.node, Node::Broker(_))
    }

    /// The broker for the HTTP listener (metrics, admin API); `None` on a controller-only node.
    pub fn handle(&self) -> Option<BrokerHandle> {
        match &self.node {
            Node::Broker(broker) => Some(BrokerHandle(broker.clone())),
            Node::Controller { .. } => None,
        }
    }

    /// In a cluster, first a controlled shutdown (this broker is fenced and the quorum's
    /// leadership moves away); then stops accepting, lets connections finish, flushes
    /// every log and writes checkpoints.
    pub async fn shutdown(self) -> Result<(), BrokerError> {
        let stop_tasks = |tasks: Vec<JoinHandle<()>>, shutdown: watch::Sender<bool>| async move {
            let _ = shutdown.send(true);
            for task in tasks {
                let _ = task.await;
            }
        };
        let closed = match self.node {
            Node::Broker(broker) => {
                let stopping = broker.clone();
                let _ = tokio::task::spawn_blocking(move || stopping.controlled_shutdown()).await;
                stop_tasks(self.tasks, self.shutdown).await;
                tokio::task::spawn_blocking(move || broker.close()).await
            }
            Node::Controller { metadata, .. } => {
                stop_tasks(self.tasks, self.shutdown).await;
                tokio::task::spawn_blocking(move || {
                    metadata.resign();
                    metadata.close()
                })
                .await
            }
        };
        closed.map_err(|e| std::io::Error::other(e.to_string()))?
    }
}

/// `host:port` from a Kafka listener such as `PLAINTEXT://localhost:9092`.
fn listener_address(listener: &str) -> &str {
    let first = listener.split(',').next().unwrap_or_default().trim();
    first.split_once("://").map_or(first, |(_, addr)| addr)
}

/// The bind address of the listener other brokers reach this one on.
fn client_listener(config: &BrokerConfig) -> Result<String, BrokerError> {
    let listeners = listeners::client_listeners(config)?;
    let at = listeners::inter_broker_listener(config, &listeners)?;
    Ok(listeners[at].bind.clone())
}

/// Opens the data dir (recovering logs if the last run crashed), binds the listener and
/// starts serving.
pub async fn start(config: BrokerConfig) -> Result<RunningBroker, BrokerError> {
    // Before anything is created or bound: a secured configuration never runs open.
    config.check_fail_closed()?;
    let roles = metadata_quorum::roles(&config)?;
    // Listeners, TLS and SASL settings are checked before anything is created: a bad
    // certificate or mechanism refuses the start with nothing written.
    let prepared = if roles.broker { prepare_listeners(&config)? } else { Vec::new() };
    if tokio::runtime::Handle::current().runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(BrokerError::InvalidConfig(
            "gregor_broker::start needs a multi-threaded tokio runtime (#[tokio::test(flavor = \"multi_thread\")])"
                .into(),
        ));
    }
    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| BrokerError::DataDir { path: data_dir.clone(), reason: e.to_string() })?;
    let configured_cluster = config.broker_value("cluster.id").value;
    let existing = meta_properties::load_existing(&data_dir, config.node_id(), configured_cluster.as_deref())?;
    let known_cluster = existing.as_ref().map(|m| m.cluster_id.clone()).or(configured_cluster);
    let metadata = metadata_quorum::MetadataQuorum::start(&config, &data_dir, known_cluster.as_deref()).await?;
    if !roles.broker {
        return start_controller(&config, &data_dir, known_cluster, metadata).await;
    }
    let opened = open_broker(&config, &data_dir, (known_cluster, prepared), metadata.clone()).await;
    let (broker, listeners, local_addrs) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            // The quorum member runs tasks and holds the controller port: a failed start
            // stops it, so an embedding process can start again on the same ports.
            let _ = tokio::task::spawn_blocking(move || metadata.close()).await;
            return Err(e);
        }
    };
    let broker = Arc::new(broker);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (max_connections, max_per_ip) = config.connection_limits();
    let quotas = connection_quotas::ConnectionQuotas::new(max_connections, max_per_ip);
    let mut tasks: Vec<JoinHandle<()>> = listeners
        .into_iter()
        .map(|(spec, l, sasl)| {
            tokio::spawn(server::run(l, spec, sasl, broker.clone(), quotas.clone(), shutdown_rx.clone()))
        })
        .collect();
    tasks.push(tokio::spawn(broker.groups.clone().run_timers(broker.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(background::follow_metadata(broker.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(background::heartbeats(broker.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(background::isr_maintenance(broker.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(background::leader_rebalance(
        broker.metadata.clone(),
        broker.config.clone(),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(background::run(broker.clone(), shutdown_rx)));
    Ok(RunningBroker { node: Node::Broker(broker), local_addrs, shutdown, tasks })
}

/// `process.roles=controller`: a quorum voter that serves controller requests and fences
/// brokers, with no client listener, no logs and no broker registration.
async fn start_controller(
    config: &BrokerConfig,
    data_dir: &std::path::Path,
    known_cluster: Option<String>,
    metadata: metadata_quorum::MetadataQuorum,
) -> Result<RunningBroker, BrokerError> {
    let candidate = known_cluster.unwrap_or_else(meta_properties::random_id);
    let agreed = match metadata.agree_cluster_id(&candidate).await {
        Ok(id) => meta_properties::load_or_create(data_dir, config.node_id(), Some(&id)).map(|m| m.cluster_id),
        Err(e) => Err(e),
    };
    let cluster_id = match agreed {
        Ok(id) => id,
        Err(e) => {
            let _ = tokio::task::spawn_blocking(move || metadata.close()).await;
            return Err(e);
        }
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let interval = config.broker_i64("broker.heartbeat.interval.ms");
    let tasks = vec![
        tokio::spawn(background::controller_duties(metadata.clone(), interval, shutdown_rx.clone())),
        tokio::spawn(background::leader_rebalance(metadata.clone(), config.clone(), shutdown_rx)),
    ];
    let local_addrs = metadata.controller_addr().into_iter().collect();
    let node = Node::Controller { metadata, cluster_id, node_id: config.node_id() };
    Ok(RunningBroker { node, local_addrs, shutdown, tasks })
}

/// A bound socket of a listener, and its TLS and SASL settings.
type BoundListener = (listeners::ListenerSpec, tokio::net::TcpListener, server::ListenerSecurity);

/// Checks the client listeners, their certificates and SASL users as `start` will, so
/// that a program can refuse before it binds anything else (the HTTP listener).
pub fn check_listeners(config: &BrokerConfig) -> Result<(), BrokerError> {
    config.check_fail_closed()?;
    match metadata_quorum::roles(config)? {
        roles if roles.broker => prepare_listeners(config).map(drop),
        _ => Ok(()),
    }
}

/// A client listener and its security, checked but not bound yet.
type PreparedListener = (listeners::ListenerSpec, server::ListenerSecurity);

fn prepare_listeners(config: &BrokerConfig) -> Result<Vec<PreparedListener>, BrokerError> {
    let refuse = |e: BrokerError| match e {
        BrokerError::InvalidConfig(m) if !m.starts_with("refusing to start") => {
            BrokerError::InvalidConfig(format!("refusing to start: {m}"))
        }
        other => other,
    };
    let _ = authz::Authz::of(config).map_err(refuse)?;
    let specs = listeners::client_listeners(config).map_err(refuse)?;
    let _ = listeners::inter_broker_listener(config, &specs).map_err(refuse)?;
    specs
        .into_iter()
        .map(|spec| {
            let security = listener_security(config, &spec)?;
            Ok((spec, security))
        })
        .collect()
}

/// The TLS and SASL settings of a listener, as its protocol needs them, or the sentence
/// that refuses the start (a secured listener never runs weaker than configured).
fn listener_security(
    config: &BrokerConfig,
    spec: &listeners::ListenerSpec,
) -> Result<server::ListenerSecurity, BrokerError> {
    let refuse = |why: String| BrokerError::InvalidConfig(format!("refusing to start: listener {}: {why}", spec.name));
    let tls = if spec.protocol.uses_tls() {
        let settings = gregor_security::TlsSettings::from_config(|key| config.listener_value(&spec.name, key))
            .map_err(|e| refuse(e.to_string()))?
            .ok_or_else(|| {
                refuse(format!(
                    "security protocol {} needs a certificate: set ssl.keystore.location (a PEM file with the key and the chain) or ssl.keystore.certificate.chain and ssl.keystore.key",
                    spec.protocol.name()
                ))
            })?;
        Some(Arc::new(gregor_security::ServerTls::load(&settings).map_err(|e| refuse(e.to_string()))?))
    } else {
        None
    };
    let sasl = spec.protocol.uses_sasl().then(|| sasl::SaslSettings::of(config, spec)).transpose()?.map(Arc::new);
    Ok(server::ListenerSecurity { tls, sasl })
}

/// Everything after the quorum started: the cluster id, `meta.properties`, the client
/// listener and the logs.
async fn open_broker(
    config: &BrokerConfig,
    data_dir: &std::path::Path,
    (known_cluster, prepared): (Option<String>, Vec<PreparedListener>),
    metadata: metadata_quorum::MetadataQuorum,
) -> Result<(Broker, Vec<BoundListener>, Vec<SocketAddr>), BrokerError> {
    let candidate = known_cluster.unwrap_or_else(meta_properties::random_id);
    let cluster_id = metadata.agree_cluster_id(&candidate).await?;
    let meta = meta_properties::load_or_create(data_dir, config.node_id(), Some(&cluster_id))?;
    let specs: Vec<_> = prepared.iter().map(|(spec, _)| spec.clone()).collect();
    let inter_broker = listeners::inter_broker_listener(config, &specs)?;
    let mut bound = Vec::new();
    let mut endpoints = Vec::new();
    for (spec, security) in prepared {
        let sockets =
            server::bind(&spec.bind).await.map_err(|source| BrokerError::Bind { addr: spec.bind.clone(), source })?;
        let port = sockets.first().and_then(|l| l.local_addr().ok()).map_or(0, |a| a.port());
        endpoints.push(listeners::advertised_endpoint(&spec, port)?);
        bound.extend(sockets.into_iter().map(|socket| (spec.clone(), socket, security.clone())));
    }
    let local_addrs: Vec<SocketAddr> = bound.iter().filter_map(|(_, l, _)| l.local_addr().ok()).collect();
    let advertised = (endpoints[inter_broker].host.clone(), endpoints[inter_broker].port);
    let broker = {
        let config = config.clone();
        let dir = data_dir.to_owned();
        tokio::task::spawn_blocking(move || open_state(config, dir, meta.cluster_id, (advertised, endpoints), metadata))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??
    };
    Ok((broker, bound, local_addrs))
}

fn open_state(
    config: BrokerConfig,
    dir: std::path::PathBuf,
    cluster_id: String,
    advertised: ((String, i32), Vec<gregor_metadata::BrokerEndpoint>),
    metadata: metadata_quorum::MetadataQuorum,
) -> Result<Broker, BrokerError> {
    let now = now_ms();
    let image = metadata.image();
    let logs = LogManager::open(
        dir,
        |tp| {
            let overrides = image.topic(&tp.topic).map(|t| t.configs.clone()).unwrap_or_default();
            config.log_config(&overrides)
        },
        now,
    )?;
    let broker = Broker::new(config.clone(), cluster_id, advertised, metadata, ReplicaManager::new(logs))?;
    broker.register_and_load()?;
    Ok(broker)
}
