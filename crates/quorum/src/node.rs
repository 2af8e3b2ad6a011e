//! One node's member of the metadata quorum: opens the log and the image, starts openraft
//! and the controller listener, bootstraps a new cluster, and serves proposals.
//!
//! Bootstrap without a format step: a node whose log is pristine (no entry, no vote)
//! initialises the quorum with the configured voters. Every fresh voter does so with the
//! same voters, so they all write the same membership at log id (0, 0) and elect one
//! leader; a node that loses that race (it already voted) simply joins.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gregor_metadata::{MetadataError, MetadataRecord};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ChangeMembershipError, ClientWriteError, InitializeError, LinearizableReadError, RaftError};
use openraft::raft::ReadPolicy;
use openraft::ChangeMembers;
use openraft::{Instant as _, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::network::TcpNetworkFactory;
use crate::{
    voter_ids, ControllerNode, LogId, MetadataChange, MetadataImage, MetadataLogStore, MetadataStateMachine,
    QuorumError, Raft,
};

/// How this node takes part in the quorum.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// Kafka's `node.id`.
    pub node_id: u64,
    /// The `__cluster_metadata-0` directory.
    pub dir: PathBuf,
    /// `controller.quorum.voters`: the initial voters and their controller addresses. Empty
    /// for the single-node default: this node alone, with no controller listener.
    pub voters: BTreeMap<u64, ControllerNode>,
    /// Where to accept other controllers' RPCs (the `CONTROLLER` listener); required when
    /// there are other voters.
    pub listen: Option<SocketAddr>,
    /// `controller.quorum.election.timeout.ms`: a follower that hears nothing from the
    /// leader for between this and twice this starts an election.
    pub election_timeout_ms: u64,
    /// Entries between snapshots; the log before a snapshot is purged.
    pub snapshot_every_entries: u64,
    /// Entries already in a snapshot that stay in the log for followers a little behind.
    pub keep_after_snapshot: u64,
    /// The cluster id of `meta.properties`, recorded in the image when a pre-quorum
    /// single-node log is converted.
    pub cluster_id: Option<String>,
    /// A node that is not a voter (KIP-853's observer: a broker-only node, or a controller
    /// to be added later): it never bootstraps; it asks `controllers` to admit it as a
    /// learner and replicates the log from then on.
    pub join: bool,
    /// Controllers an observer asks to admit it (any of them; they redirect to the leader).
    pub controllers: Vec<ControllerNode>,
    /// The address other controllers reach this node's listener at, when it differs from
    /// the bound one (a wildcard bind); port 0 means the bound port.
    pub advertised: Option<ControllerNode>,
}

impl QuorumConfig {
    pub fn new(node_id: u64, dir: PathBuf) -> Self {
        Self {
            node_id,
            dir,
            voters: BTreeMap::new(),
            listen: None,
            election_timeout_ms: 1000,
            snapshot_every_entries: 5000,
            keep_after_snapshot: 1000,
            cluster_id: None,
            join: false,
            controllers: Vec::new(),
            advertised: None,
        }
    }
}

/// The quorum as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumStatus {
    pub leader: Option<u64>,
    /// The current epoch (Raft term).
    pub epoch: u64,
    /// The committed offset + 1 (Kafka's high watermark of the metadata log).
    pub high_watermark: i64,
    pub voters: Vec<VoterStatus>,
    /// Nodes that replicate the log without voting (learners: `process.roles=broker`).
    pub observers: Vec<VoterStatus>,
}

/// One replica of the metadata log, as the leader sees it. Offsets and times are -1
/// where this node does not know them (it is not the leader).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VoterStatus {
    pub node_id: u64,
    pub node: ControllerNode,
    pub log_end_offset: i64,
    /// Wall-clock ms of the replica's last acknowledged request from the leader.
    pub last_fetch_timestamp: i64,
    /// Wall-clock ms at which the replica was last known to hold the whole log.
    pub last_caught_up_timestamp: i64,
}

/// A running quorum member.
#[derive(Debug)]
pub struct Quorum {
    node_id: u64,
    raft: Raft,
    log: MetadataLogStore,
    machine: MetadataStateMachine,
    /// Serialises controller decisions: each one sees every earlier one applied.
    write_lock: Mutex<()>,
    /// Serialises voter changes (openraft refuses a second one while one is in progress).
    membership_lock: Arc<Mutex<()>>,
    shutdown: watch::Sender<bool>,
    server: std::sync::Mutex<Option<JoinHandle<()>>>,
    local_addr: Option<SocketAddr>,
    forward: crate::rpc::ForwardSlot,
    amnesia: crate::rpc::Amnesia,
}

impl Quorum {
    /// Opens the log and image under `config.dir`, starts openraft (replaying committed
    /// entries into the image), binds the controller listener and bootstraps a new quorum.
    pub async fn start(config: QuorumConfig) -> Result<Self, QuorumError> {
        std::fs::create_dir_all(&config.dir).map_err(|e| QuorumError::io(&config.dir, e))?;
        let _ = crate::legacy::convert(&config.dir, config.node_id, config.cluster_id.as_deref(), crate::now_ms())?;
        let log = MetadataLogStore::open(&config.dir, crate::now_ms())?;
        let machine = MetadataStateMachine::open(&config.dir)?;
        let pristine = log.is_pristine() && machine.applied().0.is_none();
        let voters = if config.voters.is_empty() {
            BTreeMap::from([(config.node_id, ControllerNode::default())])
        } else {
            config.voters.clone()
        };
        let listener = bind_listener(&config, &voters).await?;
        let local_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let stored_voters = voter_ids(machine.applied().1.membership()).len();
        let raft_config = raft_config(&config, stored_voters)?;
        let raft = Raft::new(
            config.node_id,
            raft_config,
            TcpNetworkFactory::new(config.node_id),
            log.clone(),
            machine.clone(),
        )
        .await
        .map_err(|e| QuorumError::Stopped(e.to_string()))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let forward = crate::rpc::ForwardSlot::default();
        let amnesia = crate::rpc::Amnesia::default();
        let server = listener.map(|l| {
            let serve =
                crate::rpc::serve(l, raft.clone(), config.node_id, forward.clone(), amnesia.clone(), shutdown_rx);
            tokio::spawn(serve)
        });
        let quorum = Self {
            node_id: config.node_id,
            raft,
            log,
            machine,
            write_lock: Mutex::new(()),
            membership_lock: Arc::new(Mutex::new(())),
            shutdown,
            server: std::sync::Mutex::new(server),
            local_addr,
            forward,
            amnesia,
        };
        if config.join {
            // A node added as a voter at run time may come back wiped too.
            if pristine {
                forget_votes(&quorum.raft, quorum.node_id, &quorum.amnesia);
            }
            quorum.observe(&config);
        } else if pristine {
            quorum.bootstrap(voters).await?;
        } else {
            if let Err(e) = quorum.check_voters(&config) {
                let _ = quorum.shutdown().await;
                return Err(e);
            }
        }
        Ok(quorum)
    }

    /// An observer asks the controllers to admit it, in the background, at the address
    /// its listener is reached at (an advertised port of 0 is the bound one).
    fn observe(&self, config: &QuorumConfig) {
        let me = match (config.advertised.clone(), self.local_addr) {
            (Some(a), Some(bound)) if a.port == 0 => Some(ControllerNode::new(a.host, bound.port())),
            (Some(a), _) => Some(a),
            (None, bound) => bound.map(|a| ControllerNode::new(a.ip().to_string(), a.port())),
        };
        if let Some(me) = me {
            let shutdown = self.shutdown.subscribe();
            let join = crate::join::run(self.raft.clone(), config.node_id, me, config.controllers.clone(), shutdown);
            drop(tokio::spawn(join));
        }
    }

    /// A pristine voter writes the initial membership once a majority of the voters
    /// (itself included) answered that they are pristine too; a lone voter at once. It
    /// runs in the background, as it waits for the others to start.
    async fn bootstrap(&self, voters: BTreeMap<u64, ControllerNode>) -> Result<(), QuorumError> {
        let bootstrap = Bootstrap {
            raft: self.raft.clone(),
            node_id: self.node_id,
            voters,
            amnesia: self.amnesia.clone(),
            shutdown: self.shutdown.subscribe(),
        };
        if bootstrap.voters.len() <= 1 {
            return bootstrap.initialize().await;
        }
        drop(tokio::spawn(async move {
            if let Err(e) = bootstrap.run().await {
                tracing::error!(error = %e, "bootstrapping the metadata quorum failed");
            }
        }));
        Ok(())
    }

    /// A restarted node must be configured with the voters the quorum has.
    fn check_voters(&self, config: &QuorumConfig) -> Result<(), QuorumError> {
        if config.voters.is_empty() {
            return Ok(());
        }
        if self.image().quorum_voters.is_some() {
            // Voters were added or removed at run time (KIP-853): the log is the
            // authority now, the configured voters only bootstrapped it.
            return Ok(());
        }
        let (_, membership) = self.machine.applied();
        let stored = self.raft.metrics().borrow_watched().membership_config.clone();
        let known = if stored.membership().voter_ids().next().is_some() {
            stored.membership().clone()
        } else {
            membership.membership().clone()
        };
        let have = voter_ids(&known);
        let want: BTreeSet<u64> = config.voters.keys().copied().collect();
        if have != want {
            return Err(QuorumError::Config(format!(
                "'controller.quorum.voters' names voters {want:?}, but this node's metadata log has voters {have:?}"
            )));
        }
        Ok(())
    }

    /// The cluster id recorded in the metadata log: the first leader records `candidate`
    /// if none is there yet, and every node returns the one that committed first, so fresh
    /// nodes agree without a format step.
    pub async fn agree_cluster_id(&self, candidate: &str, timeout: Duration) -> Result<String, QuorumError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut images = self.subscribe();
        loop {
            if let Some(id) = self.image().cluster_id.clone() {
                return Ok(id);
            }
            if self.is_leader() {
                let record = MetadataRecord::ClusterId { cluster_id: candidate.to_owned() };
                let decide =
                    |image: &MetadataImage| Ok((if image.cluster_id.is_none() { vec![record] } else { vec![] }, ()));
                match self.write(Duration::from_secs(5), decide).await {
                    Ok(()) => continue,
                    // The decision is idempotent (it reads the image), so even a change
                    // whose fate is unknown may be decided again.
                    Err(e) if e.is_retriable() || matches!(e, QuorumError::Unresolved(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let wait = tokio::time::timeout_at(deadline, async {
                tokio::select! {
                    _ = images.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            });
            if wait.await.is_err() {
                return Err(QuorumError::Timeout("no metadata quorum leader recorded a cluster id".into()));
            }
        }
    }

    /// The index of the last entry applied to this node's image (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.machine.applied().0.map_or(0, |l| l.index)
    }

    /// Waits until this node's image holds the entry at `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), QuorumError> {
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "metadata applied")
            .await
            .map(|_| ())
            .map_err(|e| QuorumError::Timeout(e.to_string()))
    }

    /// Installs the handler of requests other nodes forward to this one while it is the
    /// active controller (once; later calls are ignored).
    pub fn set_forward_handler(&self, handler: crate::ForwardHandler) {
        let _ = self.forward.set(handler);
    }

    /// Whether `id` is a member (voter or learner) of the quorum's current membership.
    pub fn is_member(&self, id: u64) -> bool {
        self.raft.metrics().borrow_watched().membership_config.membership().get_node(&id).is_some()
    }

    /// Whether other voters exist (so requests for the controller may need forwarding).
    pub fn has_peers(&self) -> bool {
        self.raft.metrics().borrow_watched().membership_config.membership().nodes().count() > 1
    }

    /// Sends `request` to the active controller's forward handler and returns its answer.
    /// Waits up to `leader_wait` for a leader to be known and reachable. A request that
    /// never reached it (no connection, or refused unread) is sent again; one that may
    /// have reached it and got no answer (in `answer_wait`, or the connection broke)
    /// fails with `Unresolved`: resending could apply it twice. Fails with
    /// `NotController` naming this node when it is the leader (the caller serves it).
    ///
    /// Each request has its own connection (cheap next to a controller decision): a
    /// reused idle one could have been closed by the peer, which looks like a failure
    /// after sending.
    pub async fn call_leader(
        &self,
        request: &[u8],
        leader_wait: Duration,
        answer_wait: Duration,
    ) -> Result<Vec<u8>, QuorumError> {
        let deadline = tokio::time::Instant::now() + leader_wait;
        loop {
            let metrics = self.raft.metrics().borrow_watched().clone();
            let leader = metrics.current_leader;
            if leader == Some(self.node_id) {
                return Err(QuorumError::NotController { leader });
            }
            let node = leader.and_then(|l| metrics.membership_config.membership().get_node(&l).cloned());
            if let (Some(leader), Some(node)) = (leader, node) {
                let mut connection = crate::network::TcpConnection::to(self.node_id, leader, &node);
                match connection.forward(request, answer_wait).await {
                    Ok(answer) => return Ok(answer),
                    Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {
                        tracing::debug!(leader, error = %e, "the controller did not take the forwarded request");
                    }
                    Err(e) => {
                        return Err(QuorumError::Unresolved(format!(
                            "the active controller {leader} did not answer: {e}"
                        )))
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(QuorumError::Timeout("no active controller answered".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The controller listener's bound address, if any.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The openraft handle, for membership changes and tests.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The image as of the last committed entry this node applied.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.machine.image()
    }

    /// Every new image, as it is applied.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.machine.subscribe()
    }

    /// The active controller (Raft leader) this node knows of.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow_watched().current_leader
    }

    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics().borrow_watched().clone();
        metrics.state == ServerState::Leader && metrics.current_leader == Some(self.node_id)
    }

    /// A controller decision: on the active controller only, with every earlier change
    /// applied, `decide` turns the current image into records, which are proposed and
    /// applied (on a quorum's disks) before this returns.
    ///
    /// Bounded by `timeout`: waiting for earlier decisions or for leadership to be
    /// confirmed fails with the retriable `Timeout` (nothing was proposed); a proposal that
    /// does not commit in time fails with `Unresolved` (it may still commit).
    pub async fn write<T>(
        &self,
        timeout: Duration,
        decide: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), MetadataError>,
    ) -> Result<T, QuorumError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let _guard = tokio::time::timeout_at(deadline, self.write_lock.lock())
            .await
            .map_err(|_| QuorumError::Timeout("earlier metadata changes are still being committed".into()))?;
        tokio::time::timeout_at(deadline, self.caught_up())
            .await
            .map_err(|_| QuorumError::Timeout("the metadata quorum did not confirm this leader".into()))??;
        let (records, answer) = decide(&self.image())?;
        if !records.is_empty() {
            let change = MetadataChange { records };
            check_size(&change)?;
            let proposal = self.propose(change);
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now()).max(MIN_COMMIT_WAIT);
            let _ = tokio::time::timeout(remaining, proposal)
                .await
                .map_err(|_| QuorumError::Unresolved("no quorum acknowledged it".into()))??;
        }
        Ok(answer)
    }

    /// Confirms leadership with a quorum and waits until the image holds everything
    /// committed before (after an election, the new leader's first entry commits the old
    /// leader's replicated ones).
    async fn caught_up(&self) -> Result<(), QuorumError> {
        let read = self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await.map_err(|e| match e {
            RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => {
                QuorumError::NotController { leader: f.leader_id }
            }
            RaftError::APIError(other) => QuorumError::Timeout(other.to_string()),
            RaftError::Fatal(f) => QuorumError::Stopped(f.to_string()),
        })?;
        // Everything this leader appended, not only what is committed: a proposal that
        // timed out may still commit, and the next decision must see it (or wait).
        let appended = self.raft.metrics().borrow_watched().last_log_index;
        let target = appended.map_or(read.index(), |a| a.max(read.index()));
        self.raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(target), "metadata image catches up")
            .await
            .map(|_| ())
            .map_err(|e| QuorumError::Timeout(e.to_string()))
    }

    /// Proposes one change; returns its log id once it is committed and applied here.
    pub async fn propose(&self, change: MetadataChange) -> Result<LogId, QuorumError> {
        check_size(&change)?;
        match self.raft.client_write(change).await {
            Ok(response) => Ok(response.log_id),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(QuorumError::NotController { leader: f.leader_id })
            }
            // Appended, perhaps, and then discarded or not: its fate is unknown.
            Err(RaftError::APIError(other)) => Err(QuorumError::Unresolved(other.to_string())),
            Err(RaftError::Fatal(f)) => Err(QuorumError::Stopped(f.to_string())),
        }
    }

    /// Leader, epoch, high watermark and each replica's log end, for DescribeQuorum.
    pub fn status(&self) -> QuorumStatus {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership().clone();
        let voters = voter_ids(&membership);
        let (log_end, _) = self.log.offsets();
        let matched = |id: u64| -> i64 {
            if id == self.node_id {
                return log_end;
            }
            let replication = metrics.replication.as_ref();
            replication.and_then(|r| r.get(&id)).map_or(-1, |m| m.as_ref().map_or(0, |l| l.index as i64 + 1))
        };
        let now_ms = crate::now_ms();
        let last_ack = |id: u64| -> i64 {
            if id == self.node_id {
                return now_ms;
            }
            let acked = metrics.heartbeat.as_ref().and_then(|h| h.get(&id).cloned().flatten());
            acked.map_or(-1, |at| now_ms - i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX))
        };
        let replica = |(id, node): (&u64, &ControllerNode)| {
            let log_end_offset = matched(*id);
            let last_fetch_timestamp = last_ack(*id);
            let caught_up = log_end_offset >= 0 && log_end_offset >= log_end;
            VoterStatus {
                node_id: *id,
                node: node.clone(),
                log_end_offset,
                last_fetch_timestamp,
                last_caught_up_timestamp: if caught_up { last_fetch_timestamp } else { -1 },
            }
        };
        let (voting, observing): (Vec<_>, Vec<_>) = membership.nodes().partition(|(id, _)| voters.contains(id));
        QuorumStatus {
            leader: metrics.current_leader,
            epoch: metrics.current_term,
            high_watermark: metrics.local_committed.map_or(0, |c| c.index as i64 + 1),
            voters: voting.into_iter().map(replica).collect(),
            observers: observing.into_iter().map(replica).collect(),
        }
    }

    /// KIP-853: adds `id` as a voter (first as a learner that catches up, at `node`, then
    /// through a joint configuration). Only on the active controller. The change runs to
    /// its end in a task of its own: a caller that stops waiting never leaves the quorum
    /// in the joint configuration.
    pub async fn add_voter(&self, id: u64, node: ControllerNode) -> Result<(), QuorumError> {
        let guard = self.membership_lock.clone().lock_owned().await;
        let membership = self.raft.metrics().borrow_watched().membership_config.membership().clone();
        let mut voters = voter_ids(&membership);
        if voters.contains(&id) {
            return Err(QuorumError::DuplicateVoter(id));
        }
        let raft = self.raft.clone();
        let moved = membership.get_node(&id).is_some_and(|known| *known != node);
        run_to_end(tokio::spawn(async move {
            let _guard = guard;
            if moved {
                // An observer known at another address: openraft's AddNodes keeps it.
                let nodes = ChangeMembers::SetNodes([(id, node.clone())].into());
                let _ = raft.change_membership(nodes, true).await.map_err(membership_error)?;
            }
            let _ = raft.add_learner(id, node, true).await.map_err(membership_error)?;
            let _ = voters.insert(id);
            let _ = raft.change_membership(voters.clone(), false).await.map_err(membership_error)?;
            record_voters(&raft, &voters).await
        }))
        .await
    }

    /// KIP-853: removes voter `id` from the voters; with `retain` it stays an observer
    /// (KRaft keeps a removed voter that still runs, e.g. a combined node going on as a
    /// broker), else it leaves the quorum entirely.
    pub async fn remove_voter(&self, id: u64, retain: bool) -> Result<(), QuorumError> {
        let guard = self.membership_lock.clone().lock_owned().await;
        let mut voters = voter_ids(self.raft.metrics().borrow_watched().membership_config.membership());
        if !voters.remove(&id) {
            return Err(QuorumError::VoterNotFound(format!("node {id} is not a voter")));
        }
        if voters.is_empty() {
            return Err(QuorumError::VoterNotFound(format!("node {id} is the last voter: a quorum needs one")));
        }
        let raft = self.raft.clone();
        run_to_end(tokio::spawn(async move {
            let _guard = guard;
            let _ = raft.change_membership(voters.clone(), retain).await.map_err(membership_error)?;
            record_voters(&raft, &voters).await
        }))
        .await
    }

    /// Hands the leadership to a voter that holds the whole log, if this node leads and
    /// one exists, and waits up to `timeout` for it to take over: a controller that stops
    /// on purpose spares the others an election timeout (KRaft's resignation).
    pub async fn resign(&self, timeout: Duration) -> Option<u64> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        if !self.is_leader() {
            return None;
        }
        let last = metrics.last_log_index;
        let voters = voter_ids(metrics.membership_config.membership());
        let caught_up = |id: &u64| {
            let matched = metrics.replication.as_ref().and_then(|r| r.get(id).cloned().flatten());
            matched.map(|l| l.index) >= last
        };
        let target = voters.into_iter().filter(|id| *id != self.node_id).find(caught_up)?;
        self.raft.trigger().transfer_leader(target).await.ok()?;
        let moved = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some_and(|l| l != self.node_id), "leadership moved")
            .await;
        moved.ok().and_then(|m| m.current_leader)
    }

    /// Builds a snapshot now (and lets openraft purge the log before it).
    pub async fn snapshot(&self) -> Result<(), QuorumError> {
        self.raft.trigger().snapshot().await.map_err(|e| QuorumError::Stopped(e.to_string()))
    }

    /// Stops serving and closes the log. If this node leads, a new election follows on the
    /// others after their election timeout.
    pub async fn shutdown(&self) -> Result<(), QuorumError> {
        let _ = self.shutdown.send(true);
        let server = self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(server) = server {
            let _ = server.await;
        }
        self.raft.shutdown().await.map_err(|e| QuorumError::Stopped(e.to_string()))?;
        self.log.close()
    }
}

/// Checks this node's place among `voters` and binds its controller listener.
async fn bind_listener(
    config: &QuorumConfig,
    voters: &BTreeMap<u64, ControllerNode>,
) -> Result<Option<TcpListener>, QuorumError> {
    if !voters.contains_key(&config.node_id) && !config.join {
        return Err(QuorumError::Config(format!(
            "node {} is not one of the voters {:?} of 'controller.quorum.voters'",
            config.node_id,
            voters.keys().collect::<Vec<_>>()
        )));
    }
    match config.listen {
        Some(addr) => {
            let bound = TcpListener::bind(addr).await;
            bound.map(Some).map_err(|e| QuorumError::io(format!("controller listener {addr}"), e))
        }
        None if voters.len() > 1 || config.join => {
            Err(QuorumError::Config("a quorum of several voters needs a controller listener".into()))
        }
        None => Ok(None),
    }
}

/// The largest change one entry may carry (a topic with 10,000 partitions is ~1 MB).
/// With `MAX_ENTRIES_PER_APPEND` it bounds an AppendEntries frame well below the RPC
/// layer's frame limit, and it stays below the log's batch limit, whose breach would
/// stop the quorum member rather than fail one request.
pub(crate) const MAX_CHANGE_BYTES: usize = 4 << 20;
/// Entries per AppendEntries request.
const MAX_ENTRIES_PER_APPEND: u64 = 64;
/// A proposal always gets at least this long to commit, however little of the caller's
/// budget waiting for earlier ones left.
const MIN_COMMIT_WAIT: Duration = Duration::from_secs(2);
/// A peer log this long means a leader committed entries after the bootstrap membership
/// (0) and its first blank entry (1): the quorum ran before this node's log was empty.
const AMNESIA_INDEX: u64 = 2;

fn check_size(change: &MetadataChange) -> Result<(), QuorumError> {
    let bytes = serde_json::to_vec(change).map_or(usize::MAX, |b| b.len());
    if bytes > MAX_CHANGE_BYTES {
        return Err(QuorumError::TooLarge { bytes, max: MAX_CHANGE_BYTES });
    }
    Ok(())
}

/// The bootstrap of a pristine voter (see `Quorum::bootstrap`).
struct Bootstrap {
    raft: Raft,
    node_id: u64,
    voters: BTreeMap<u64, ControllerNode>,
    amnesia: crate::rpc::Amnesia,
    shutdown: watch::Receiver<bool>,
}

impl Bootstrap {
    async fn run(mut self) -> Result<(), QuorumError> {
        loop {
            let mut pristine = 1; // this node
            for (id, node) in self.voters.iter().filter(|(id, _)| **id != self.node_id) {
                let mut connection = crate::network::TcpConnection::to(self.node_id, *id, node);
                match connection.probe(Duration::from_millis(500)).await {
                    // A pristine node among running voters lost its data (or never had
                    // it): it must not write a fresh membership. It waits to be brought up
                    // to date by the leader instead.
                    Some((true, last)) => {
                        // Past its first entries, the quorum has had a leader: this node
                        // may be a voter whose data was lost, with votes it forgot.
                        if last.is_some_and(|l| l >= AMNESIA_INDEX) {
                            forget_votes(&self.raft, self.node_id, &self.amnesia);
                        }
                        tracing::warn!(
                            node = self.node_id,
                            peer = id,
                            "this node's metadata log is empty but voter {id} already has one: joining, not bootstrapping"
                        );
                        return Ok(());
                    }
                    Some((false, _)) => pristine += 1,
                    None => {}
                }
            }
            // Only with a majority known to be new: a node that cannot reach the others
            // (they may hold the log) never starts a quorum of its own.
            if pristine * 2 > self.voters.len() {
                return self.initialize().await;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = self.shutdown.changed() => return Ok(()),
            }
        }
    }

    async fn initialize(&self) -> Result<(), QuorumError> {
        match self.raft.initialize(self.voters.clone()).await {
            Ok(()) => Ok(()),
            // A peer's vote or membership reached this node first: it has joined already.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(QuorumError::Config(format!("cannot bootstrap the metadata quorum: {e}"))),
        }
    }
}

/// Marks this node as one that may have forgotten votes (see `rpc::Amnesia`) until it
/// follows a leader, which a background watcher notices.
fn forget_votes(raft: &Raft, node_id: u64, amnesia: &crate::rpc::Amnesia) {
    use std::sync::atomic::Ordering;
    if amnesia.swap(true, Ordering::Relaxed) {
        return;
    }
    let (raft, amnesia) = (raft.clone(), amnesia.clone());
    drop(tokio::spawn(async move {
        let follows = raft
            .wait(None)
            .metrics(|m| m.current_leader.is_some_and(|l| l != node_id) && m.vote.is_committed(), "follows a leader")
            .await;
        if follows.is_ok() {
            amnesia.store(false, Ordering::Relaxed);
            tracing::info!(node = node_id, "a leader reached this voter after its data loss: it votes again");
        }
    }));
}

/// Awaits a spawned voter change.
async fn run_to_end(task: JoinHandle<Result<(), QuorumError>>) -> Result<(), QuorumError> {
    task.await.map_err(|e| QuorumError::Stopped(e.to_string()))?
}

/// Records the new voters in the metadata log (KIP-853's `VotersRecord`), so that the
/// nodes' configured voters are no longer checked against them.
async fn record_voters(raft: &Raft, voters: &BTreeSet<u64>) -> Result<(), QuorumError> {
    let record = MetadataRecord::QuorumVoters { voters: voters.iter().copied().collect() };
    match raft.client_write(MetadataChange { records: vec![record] }).await {
        Ok(_) => Ok(()),
        Err(e) => Err(QuorumError::Unresolved(format!("the voters changed, but recording them failed: {e}"))),
    }
}

fn membership_error(e: RaftError<crate::TypeConfig, ClientWriteError<crate::TypeConfig>>) -> QuorumError {
    match e {
        // Another voter change or an observer's admission is under way: retry later.
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(p))) => {
            QuorumError::Timeout(p.to_string())
        }
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => QuorumError::NotController { leader: f.leader_id },
        RaftError::APIError(other) => QuorumError::Config(other.to_string()),
        RaftError::Fatal(f) => QuorumError::Stopped(f.to_string()),
    }
}

fn raft_config(config: &QuorumConfig, stored_voters: usize) -> Result<Arc<openraft::Config>, QuorumError> {
    let election = config.election_timeout_ms.max(20);
    let raft = openraft::Config {
        cluster_name: "gregor-metadata".into(),
        heartbeat_interval: (election / 5).clamp(5, 200),
        election_timeout_min: election,
        election_timeout_max: election * 2,
        enable_pre_vote: Some(true),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every_entries.max(1)),
        max_in_snapshot_log_to_keep: config.keep_after_snapshot,
        max_payload_entries: MAX_ENTRIES_PER_APPEND,
        replication_lag_threshold: config.snapshot_every_entries.max(1) * 2,
        // A single voter resumes as leader at once after a restart (the start stays
        // instant); with peers a restarted node learns the current leader first instead
        // of acting, briefly, as the leader of its old term.
        enable_leader_restore: Some(config.voters.len() <= 1 && stored_voters <= 1 && !config.join),
        // A follower whose log went backwards (its data dir was wiped) is re-replicated
        // from the start instead of failing the leader's progress checks (openraft panics
        // on it in debug builds). Such a voter can still vote before it caught up: see
        // docs/cluster.md on replacing a node.
        allow_log_reversion: Some(true),
        ..openraft::Config::default()
    };
    raft.validate().map(Arc::new).map_err(|e| QuorumError::Config(format!("metadata quorum timing: {e}")))
}
