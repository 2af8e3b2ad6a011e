//! The broker's side of the metadata quorum: its configuration from Kafka's keys
//! (`node.id`, `controller.quorum.voters`, the `CONTROLLER` listener), the cluster id
//! agreed with `meta.properties`, and the synchronous `write` the broker's controller
//! paths call (they run on runtime workers or blocking threads, so the quorum's async
//! proposal is awaited in place).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_metadata::{MetadataImage, METADATA_TOPIC};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_quorum::{ControllerNode, ForwardHandler, Quorum, QuorumConfig, QuorumError};

use crate::config::BrokerConfig;
use crate::controller::{CommandFailure, ControllerAnswer, ControllerCommand};
use crate::BrokerError;

/// How long a controller write waits out an election (the quorum has no leader yet, or
/// just changed it) before it answers the client with the retriable error.
const ELECTION_WAIT: Duration = Duration::from_secs(5);
/// How long a starting node waits for the quorum to agree on the cluster id.
const CLUSTER_ID_WAIT: Duration = Duration::from_secs(120);
/// How long a forwarded command's answer is awaited: longer than the active controller
/// spends on it (`ELECTION_WAIT` plus the commit), so an answer is not given up on while
/// it is still coming.
const FORWARD_ANSWER_WAIT: Duration = Duration::from_secs(30);
/// How long adding a voter may take beyond the election wait (it replicates the log
/// first).
const VOTER_CATCH_UP_WAIT: Duration = Duration::from_secs(20);
/// How long a stopping active controller waits for its successor to take over.
const RESIGN_WAIT: Duration = Duration::from_secs(3);

/// Clones share one quorum member.
#[derive(Debug, Clone)]
pub(crate) struct MetadataQuorum {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    quorum: Quorum,
    /// Not a voter (a broker-only node, or a controller not added yet): its controller
    /// requests always go to the active controller, even before it knows the others.
    observer: bool,
    /// The static config, for the controller's decisions (validation of AlterConfigs).
    config: BrokerConfig,
    /// While this node is the active controller: each broker's last heartbeat, for the
    /// epoch (term) it has led in. Memory only, as Kafka's BrokerHeartbeatManager: a new
    /// controller gives every broker a full session before fencing it.
    heartbeats: std::sync::Mutex<(u64, std::collections::HashMap<i32, Instant>)>,
    session_timeout: Duration,
}

impl MetadataQuorum {
    /// Starts this node's quorum member over `data_dir/__cluster_metadata-0`.
    pub(crate) async fn start(
        config: &BrokerConfig,
        data_dir: &Path,
        cluster_id: Option<&str>,
    ) -> Result<Self, BrokerError> {
        let node_id = u64::try_from(config.node_id())
            .map_err(|_| BrokerError::InvalidConfig(format!("'node.id' must not be negative: {}", config.node_id())))?;
        let mut quorum_config = QuorumConfig::new(node_id, data_dir.join(format!("{METADATA_TOPIC}-0")));
        let roles = roles(config)?;
        quorum_config.voters = voters(config)?;
        quorum_config.controllers = quorum_config.voters.values().cloned().collect();
        quorum_config.controllers.extend(bootstrap_servers(config)?);
        // Not a voter: an observer (KIP-853) that asks the controllers to admit it, a
        // broker-only node for good, a controller until `gregor cluster add-controller`.
        let voter = roles.controller
            && (quorum_config.voters.contains_key(&node_id)
                || (quorum_config.voters.is_empty() && quorum_config.controllers.is_empty()));
        quorum_config.join = !voter;
        quorum_config.listen = controller_listener(config)?;
        quorum_config.advertised = advertised_controller(config)?;
        let wildcard = quorum_config.listen.is_some_and(|l| l.ip().is_unspecified());
        if quorum_config.join && wildcard && quorum_config.advertised.is_none() {
            return Err(BrokerError::InvalidConfig(
                "a controller listener on a wildcard address needs its address for the other controllers in 'advertised.listeners' (CONTROLLER://HOST:PORT)".into(),
            ));
        }
        if quorum_config.join && quorum_config.listen.is_none() {
            // A broker-only node has no CONTROLLER listener in Kafka's configs: the
            // metadata log reaches it on a port chosen now, on the client listener's host.
            let (listen, advertised) = observer_listener(config)?;
            quorum_config.listen = Some(listen);
            quorum_config.advertised = advertised;
        }
        quorum_config.cluster_id = cluster_id.map(str::to_owned);
        quorum_config.election_timeout_ms =
            u64::try_from(config.broker_i64("controller.quorum.election.timeout.ms")).unwrap_or(1000);
        let quorum = Quorum::start(quorum_config).await.map_err(BrokerError::Quorum)?;
        let session_timeout =
            Duration::from_millis(u64::try_from(config.broker_i64("broker.session.timeout.ms")).unwrap_or(9000));
        let inner = Arc::new(Inner {
            observer: !voter,
            quorum,
            config: config.clone(),
            heartbeats: std::sync::Mutex::new((0, std::collections::HashMap::new())),
            session_timeout,
        });
        let weak = Arc::downgrade(&inner);
        inner.quorum.set_forward_handler(ForwardHandler::new(move |from, request| {
            let weak = weak.clone();
            Box::pin(async move {
                let Some(inner) = weak.upgrade() else { return Vec::new() };
                let outcome = tokio::task::spawn_blocking(move || serve_forwarded(&inner, from, &request))
                    .await
                    .unwrap_or_else(|e| Err(CommandFailure { code: -1, message: e.to_string() }));
                serde_json::to_vec(&outcome).unwrap_or_default()
            })
        }));
        Ok(Self { inner })
    }

    /// The cluster id the quorum holds, recording `candidate` if it holds none yet.
    pub(crate) async fn agree_cluster_id(&self, candidate: &str) -> Result<String, BrokerError> {
        self.inner.quorum.agree_cluster_id(candidate, CLUSTER_ID_WAIT).await.map_err(BrokerError::Quorum)
    }

    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.inner.quorum.image()
    }

    /// Whether the quorum has other members than this node (a cluster, not the single node).
    pub(crate) fn has_peers(&self) -> bool {
        self.inner.observer || self.inner.quorum.has_peers()
    }

    /// Every new image, as this node applies it.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<MetadataImage>> {
        self.inner.quorum.subscribe()
    }

    /// Carries out `command` on the active controller: here if this node is it, else
    /// sent there; returns once this node's image holds the change. An election is waited
    /// out for up to `ELECTION_WAIT`, then the client gets the retriable error.
    pub(crate) fn execute(&self, command: ControllerCommand) -> Result<ControllerAnswer, BrokerError> {
        let quorum = &self.inner.quorum;
        let deadline = Instant::now() + ELECTION_WAIT;
        loop {
            let outcome = if !self.has_peers() || quorum.is_leader() {
                self.inner.execute_locally(&command, deadline).map(|(answer, _)| answer)
            } else {
                self.forward(&command, deadline)
            };
            match outcome {
                Err(e) if e.response_error() == ResponseError::NotController && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// Sends `command` to the active controller, another node.
    fn forward(&self, command: &ControllerCommand, deadline: Instant) -> Result<ControllerAnswer, BrokerError> {
        let quorum = &self.inner.quorum;
        let request = serde_json::to_vec(command).map_err(|e| BrokerError::InvalidRequest(e.to_string()))?;
        let leader_wait = deadline.saturating_duration_since(Instant::now());
        let answer =
            block_on(quorum.call_leader(&request, leader_wait, FORWARD_ANSWER_WAIT)).map_err(BrokerError::Quorum)?;
        let outcome: Result<(ControllerAnswer, u64), CommandFailure> = serde_json::from_slice(&answer)
            .map_err(|e| BrokerError::InvalidRequest(format!("the controller's answer: {e}")))?;
        match outcome {
            Ok((answer, applied)) => {
                // Clients expect their next request to this broker to see the change.
                let _ = block_on(quorum.wait_applied(applied, ELECTION_WAIT));
                Ok(answer)
            }
            Err(failure) => Err(BrokerError::Remote { code: failure.code, message: failure.message }),
        }
    }

    /// On the active controller: fences every unfenced broker whose last heartbeat is older
    /// than `broker.session.timeout.ms` (KIP-631).
    pub(crate) fn fence_expired(&self) {
        let inner = &self.inner;
        if !inner.quorum.is_leader() {
            return;
        }
        let image = self.image();
        let expired: Vec<(i32, i64)> = {
            let now = Instant::now();
            let mut table = inner.heartbeats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            inner.reset_if_new_term(&mut table, now);
            image
                .live_brokers()
                .filter(|b| now.duration_since(*table.1.entry(b.node_id).or_insert(now)) > inner.session_timeout)
                .map(|b| (b.node_id, b.epoch))
                .collect()
        };
        for (node_id, epoch) in expired {
            tracing::info!(broker = node_id, epoch, "fencing a broker whose heartbeats stopped");
            let deadline = Instant::now() + ELECTION_WAIT;
            if let Err(e) = inner.execute_locally(&ControllerCommand::FenceBroker { node_id, epoch }, deadline) {
                tracing::warn!(broker = node_id, error = %e, "fencing failed");
            }
        }
    }

    /// On the active controller (`auto.leader.rebalance.enable`): moves leadership back to
    /// preferred replicas where a broker leads fewer of its preferred partitions than
    /// `leader.imbalance.per.broker.percentage` allows.
    pub(crate) fn rebalance_leaders(&self, imbalance_pct: i64) {
        let inner = &self.inner;
        if !inner.quorum.is_leader() {
            return;
        }
        let moves = gregor_metadata::replication_control::imbalanced(&self.image(), imbalance_pct);
        if moves.is_empty() {
            return;
        }
        tracing::info!(partitions = moves.len(), "moving leadership back to preferred replicas");
        let election = gregor_metadata::replication_control::ElectionType::Preferred;
        let command = ControllerCommand::ElectLeaders { election, partitions: Some(moves) };
        if let Err(e) = inner.execute_locally(&command, Instant::now() + ELECTION_WAIT) {
            tracing::warn!(error = %e, "preferred leader election failed");
        }
    }

    /// Whether this node is the active controller (the quorum's leader).
    pub(crate) fn is_active_controller(&self) -> bool {
        self.inner.quorum.is_leader()
    }

    /// The controller listener's bound address, if this node has one.
    pub(crate) fn controller_addr(&self) -> Option<SocketAddr> {
        self.inner.quorum.local_addr()
    }

    /// Moves the active controller to another voter if this node is it (a planned stop).
    pub(crate) fn resign(&self) {
        if let Some(to) = block_on(self.inner.quorum.resign(RESIGN_WAIT)) {
            tracing::info!(controller = to, "handed the metadata quorum's leadership over");
        }
    }

    /// Stops the quorum member and closes the metadata log.
    pub(crate) fn close(&self) -> Result<(), BrokerError> {
        block_on(self.inner.quorum.shutdown()).map_err(BrokerError::Quorum)
    }
}

impl Inner {
    /// Decides and commits `command` on this node, the active controller, by `deadline`;
    /// returns its answer and the offset it committed at. Fails with `NOT_CONTROLLER` as
    /// soon as this node is not the leader (the caller finds the new one).
    fn execute_locally(
        &self,
        command: &ControllerCommand,
        deadline: Instant,
    ) -> Result<(ControllerAnswer, u64), BrokerError> {
        if matches!(command, ControllerCommand::DescribeQuorum) {
            return Ok((ControllerAnswer::Quorum(self.quorum.status()), self.quorum.applied_index()));
        }
        if let Some(change) = self.change_voters(command, deadline) {
            return change.map(|()| (ControllerAnswer::Done, self.quorum.applied_index()));
        }
        if let ControllerCommand::BrokerHeartbeat { node_id, .. } = command {
            let now = Instant::now();
            let mut table = self.heartbeats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.reset_if_new_term(&mut table, now);
            let _ = table.1.insert(*node_id, now);
        }
        let mut failure = None;
        let budget = deadline.saturating_duration_since(Instant::now());
        let decided = block_on(self.quorum.write(budget, |image| match command.decide(image, &self.config) {
            Ok((records, answer)) => Ok((records, Some(answer))),
            Err(e) => {
                failure = Some(e);
                Ok((vec![], None))
            }
        }));
        match decided {
            Ok(Some(answer)) => Ok((answer, self.quorum.applied_index())),
            Ok(None) => Err(failure.unwrap_or_else(|| BrokerError::InvalidRequest("no decision".into()))),
            Err(QuorumError::Metadata(e)) => Err(BrokerError::Metadata(e)),
            Err(e) => Err(BrokerError::Quorum(e)),
        }
    }
}

impl Inner {
    /// AddVoter / RemoveVoter, by `deadline` (plus the time a new voter needs to catch up
    /// is not bounded by it: adding waits for the node to replicate the log first).
    fn change_voters(&self, command: &ControllerCommand, deadline: Instant) -> Option<Result<(), BrokerError>> {
        let id = |node_id: i32| {
            u64::try_from(node_id).map_err(|_| BrokerError::InvalidRequest(format!("bad voter id {node_id}")))
        };
        let budget = deadline.saturating_duration_since(Instant::now()) + VOTER_CATCH_UP_WAIT;
        let change = match command {
            ControllerCommand::AddVoter { node_id, host, port } => id(*node_id).map(|id| {
                let node = ControllerNode::new(host.clone(), *port);
                block_on(tokio::time::timeout(budget, self.quorum.add_voter(id, node)))
            }),
            ControllerCommand::RemoveVoter { node_id } => {
                // A node that is also a broker goes on as an observer; a controller-only
                // one leaves the quorum.
                let retain = self.quorum.image().brokers.contains_key(node_id);
                id(*node_id).map(|id| block_on(tokio::time::timeout(budget, self.quorum.remove_voter(id, retain))))
            }
            _ => return None,
        };
        Some(match change {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(BrokerError::Quorum(e)),
            Ok(Err(_)) => Err(BrokerError::Quorum(QuorumError::Unresolved("the voter change did not complete".into()))),
            Err(e) => Err(e),
        })
    }

    /// A controller that just took over (a new term) has no heartbeat history: every
    /// broker starts a full session now.
    fn reset_if_new_term(&self, table: &mut (u64, std::collections::HashMap<i32, Instant>), now: Instant) {
        let term = self.quorum.status().epoch;
        if table.0 != term {
            table.0 = term;
            for last in table.1.values_mut() {
                *last = now;
            }
        }
    }
}

/// A command another broker forwarded to this node as the active controller.
fn serve_forwarded(inner: &Inner, from: u64, request: &[u8]) -> Result<(ControllerAnswer, u64), CommandFailure> {
    let command: ControllerCommand = serde_json::from_slice(request)
        .map_err(|e| CommandFailure { code: ResponseError::InvalidRequest.code(), message: e.to_string() })?;
    tracing::debug!(from, ?command, "serving a forwarded controller command");
    if !inner.quorum.is_member(from) {
        // A guard against misrouted requests, not security: the sender's id is its own
        // claim, on a listener that is PLAINTEXT and unauthenticated like every other
        // until the security work lands.
        return Err(CommandFailure {
            code: ResponseError::ClusterAuthorizationFailed.code(),
            message: format!("node {from} is not a member of the metadata quorum"),
        });
    }
    if !inner.quorum.is_leader() {
        let e = BrokerError::Quorum(QuorumError::NotController { leader: inner.quorum.leader() });
        return Err(CommandFailure { code: e.code(), message: e.to_string() });
    }
    let deadline = Instant::now() + ELECTION_WAIT;
    inner.execute_locally(&command, deadline).map_err(|e| CommandFailure { code: e.code(), message: e.to_string() })
}

/// Kafka's `process.roles`: which of broker and controller this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Roles {
    pub(crate) broker: bool,
    pub(crate) controller: bool,
}

pub(crate) fn roles(config: &BrokerConfig) -> Result<Roles, BrokerError> {
    let text = config.broker_str("process.roles").to_ascii_lowercase();
    let mut roles = Roles { broker: false, controller: false };
    for role in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match role {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            other => {
                return Err(BrokerError::InvalidConfig(format!(
                    "invalid role '{other}' in 'process.roles': expected broker, controller or both"
                )))
            }
        }
    }
    if !roles.broker && !roles.controller {
        return Err(BrokerError::InvalidConfig("'process.roles' must name broker, controller or both".into()));
    }
    let dynamic = !config.broker_str("controller.quorum.bootstrap.servers").trim().is_empty();
    let voters = voters(config)?;
    if roles != (Roles { broker: true, controller: true }) && voters.is_empty() && !dynamic {
        return Err(BrokerError::InvalidConfig(format!(
            "'process.roles={}' needs the quorum's controllers in 'controller.quorum.voters' or 'controller.quorum.bootstrap.servers'",
            config.broker_str("process.roles")
        )));
    }
    let node_id = u64::try_from(config.node_id()).unwrap_or(u64::MAX);
    if !roles.controller && voters.contains_key(&node_id) {
        return Err(BrokerError::InvalidConfig(format!(
            "node {node_id} is one of 'controller.quorum.voters', so its 'process.roles' must include controller"
        )));
    }
    if roles.controller && !roles.broker && controller_listener(config)?.is_none() {
        return Err(BrokerError::InvalidConfig(
            "'process.roles=controller' needs a controller listener ('listeners' with a name of 'controller.listener.names')".into(),
        ));
    }
    Ok(roles)
}

/// Awaits `future` from synchronous code on a runtime worker (moving the worker's other
/// tasks away first) or on a blocking thread.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(future))
}

/// `controller.quorum.voters` (`id@host:port,...`); empty for the single-node default.
fn voters(config: &BrokerConfig) -> Result<BTreeMap<u64, ControllerNode>, BrokerError> {
    let text = config.broker_str("controller.quorum.voters");
    let bad = |entry: &str| {
        BrokerError::InvalidConfig(format!(
            "invalid entry '{entry}' in 'controller.quorum.voters': expected ID@HOST:PORT"
        ))
    };
    let mut out = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, address) = entry.split_once('@').ok_or_else(|| bad(entry))?;
        let node = ControllerNode::parse(address).ok_or_else(|| bad(entry))?;
        let id: u64 = id.trim().parse().map_err(|_| bad(entry))?;
        if out.insert(id, node).is_some() {
            return Err(BrokerError::InvalidConfig(format!("node {id} appears twice in 'controller.quorum.voters'")));
        }
    }
    Ok(out)
}

/// `controller.quorum.bootstrap.servers` (KIP-853): `host:port,...` of controllers.
fn bootstrap_servers(config: &BrokerConfig) -> Result<Vec<ControllerNode>, BrokerError> {
    let text = config.broker_str("controller.quorum.bootstrap.servers");
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            ControllerNode::parse(entry).ok_or_else(|| {
                BrokerError::InvalidConfig(format!(
                    "invalid entry '{entry}' in 'controller.quorum.bootstrap.servers': expected HOST:PORT"
                ))
            })
        })
        .collect()
}

/// Where a broker-only node receives the metadata log: the client listener's host (or
/// the advertised one, as others reach it there) on a port the OS picks.
fn observer_listener(config: &BrokerConfig) -> Result<(SocketAddr, Option<ControllerNode>), BrokerError> {
    let client = crate::client_listener(config)?;
    let (host, _) = client.rsplit_once(':').unwrap_or((client.as_str(), ""));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| BrokerError::InvalidConfig(format!("cannot resolve the listener host '{host}'")))?;
    let advertised = config.broker_value("advertised.listeners").value.map(|a| {
        let address = crate::listener_address(&a).to_owned();
        let host = address.rsplit_once(':').map_or(address.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']').to_owned()
    });
    // The port is known once bound: the quorum fills it in from the listener.
    let advertised = advertised.or_else(|| addr.ip().is_unspecified().then(|| "localhost".to_owned()));
    Ok((addr, advertised.map(|host| ControllerNode::new(host, 0))))
}

/// The controller listener's entry in `advertised.listeners`, if any (KIP-853 lets a
/// controller advertise its address there).
fn advertised_controller(config: &BrokerConfig) -> Result<Option<ControllerNode>, BrokerError> {
    let names = controller_names(config);
    let Some(advertised) = config.broker_value("advertised.listeners").value else { return Ok(None) };
    for entry in advertised.split(',').map(str::trim) {
        let Some((name, address)) = entry.split_once("://") else { continue };
        if names.contains(&name.to_ascii_uppercase()) {
            let node = ControllerNode::parse(address).ok_or_else(|| {
                BrokerError::InvalidConfig(format!("advertised controller listener '{entry}' is not HOST:PORT"))
            })?;
            return Ok(Some(node));
        }
    }
    Ok(None)
}

fn controller_names(config: &BrokerConfig) -> Vec<String> {
    let names = config.broker_str("controller.listener.names");
    names.split(',').map(|n| n.trim().to_ascii_uppercase()).filter(|n| !n.is_empty()).collect()
}

/// The address of the listener named in `controller.listener.names`, if any.
fn controller_listener(config: &BrokerConfig) -> Result<Option<SocketAddr>, BrokerError> {
    let names = controller_names(config);
    for entry in config.broker_str("listeners").split(',').map(str::trim) {
        let Some((name, address)) = entry.split_once("://") else { continue };
        if names.contains(&name.to_ascii_uppercase()) {
            let address = if address.starts_with(':') { format!("0.0.0.0{address}") } else { address.to_owned() };
            let parsed = std::net::ToSocketAddrs::to_socket_addrs(&address)
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| BrokerError::InvalidConfig(format!("controller listener '{entry}' is not HOST:PORT")))?;
            return Ok(Some(parsed));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kafka_voter_syntax_should_parse_ids_and_addresses() {
        let config =
            BrokerConfig::from_pairs([("controller.quorum.voters", "1@127.0.0.1:19093, 2@[::1]:29093")]).unwrap();
        let parsed = voters(&config).unwrap();
        assert_eq!(parsed[&1], ControllerNode::new("127.0.0.1", 19093));
        assert_eq!(parsed[&2], ControllerNode::new("::1", 29093));
        for bad in ["1@host", "x@h:1", "1:h:2", "1@h:1,1@h:2"] {
            let config = BrokerConfig::from_pairs([("controller.quorum.voters", bad)]).unwrap();
            assert!(voters(&config).is_err(), "{bad}");
        }
    }

    #[test]
    fn given_a_controller_listener_should_find_its_address() {
        let config = BrokerConfig::from_pairs([
            ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"),
            ("controller.listener.names", "CONTROLLER"),
        ])
        .unwrap();
        assert_eq!(controller_listener(&config).unwrap(), Some(SocketAddr::from(([127, 0, 0, 1], 9093))));
        let plain = BrokerConfig::from_pairs([("listeners", "PLAINTEXT://127.0.0.1:9092")]).unwrap();
        assert_eq!(controller_listener(&plain).unwrap(), None);
    }
}
