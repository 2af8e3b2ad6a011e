//! Observers (KIP-853): a node that is not a voter — a broker-only node, or a controller
//! waiting to be added with `gregor cluster add-controller` — replicates the metadata log
//! as an openraft learner. At start it asks any known controller to admit it (a `Join`
//! request, redirected to the leader), and again whenever its address changed (a
//! broker-only node's listener port is chosen at each start). Learners never vote, so
//! they cannot change who leads or what commits.

use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::ChangeMembers;
use tokio::sync::watch;

use crate::network::TcpConnection;
use crate::rpc::{RaftResponse, ANY_NODE};
use crate::{ControllerNode, Raft};

/// How often a node that is not yet admitted asks again.
const RETRY: Duration = Duration::from_millis(300);

/// On the node receiving a `Join`: admits `from` at `node` if this node leads (or the
/// membership already has it there), else says who leads.
pub(crate) async fn admit(raft: &Raft, from: u64, node: ControllerNode) -> RaftResponse {
    let metrics = raft.metrics().borrow_watched().clone();
    let membership = metrics.membership_config.membership().clone();
    if membership.get_node(&from) == Some(&node) {
        return RaftResponse::Joined;
    }
    if metrics.current_leader != Some(metrics.id) {
        let leader = metrics.current_leader.and_then(|l| membership.get_node(&l).cloned().map(|n| (l, n)));
        return RaftResponse::Redirect { leader };
    }
    if membership.voter_ids().any(|v| v == from) {
        // A voter's address changes only through add-controller, never by a Join (a
        // broker-only node configured with a voter's id must not take its place).
        return RaftResponse::Error(format!("node {from} is a voter: it cannot join as an observer"));
    }
    let change = if membership.get_node(&from).is_some() {
        // A known member at a new address (a restarted broker-only node).
        raft.change_membership(ChangeMembers::SetNodes([(from, node.clone())].into()), true).await.map(drop)
    } else {
        raft.add_learner(from, node.clone(), false).await.map(drop)
    };
    match change {
        Ok(()) => {
            tracing::info!(node = from, address = %node.address(), "admitted an observer of the metadata quorum");
            RaftResponse::Joined
        }
        Err(e) => RaftResponse::Error(format!("cannot admit node {from}: {e}")),
    }
}

/// On the joining node: asks `controllers` (then the leader they name) until the
/// membership this node replicates lists it at `me`, or `shutdown`.
pub(crate) async fn run(
    raft: Raft,
    node_id: u64,
    me: ControllerNode,
    controllers: Vec<ControllerNode>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut next = 0usize;
    loop {
        let membership = raft.metrics().borrow_watched().membership_config.membership().clone();
        // A voter (added at run time, restarted) is no observer: it has nothing to ask.
        let voter = membership.voter_ids().any(|v| v == node_id);
        if voter || membership.get_node(&node_id) == Some(&me) || controllers.is_empty() {
            return;
        }
        let target = &controllers[next % controllers.len()];
        next += 1;
        let mut connection = TcpConnection::to(node_id, ANY_NODE, target);
        let mut answer = connection.join(&me, RETRY * 3).await;
        if let Some(RaftResponse::Redirect { leader: Some((leader, node)) }) = &answer {
            answer = TcpConnection::to(node_id, *leader, node).join(&me, RETRY * 3).await;
        }
        match answer {
            Some(RaftResponse::Joined) => {
                tracing::info!(node = node_id, "joined the metadata quorum as an observer");
            }
            other => tracing::debug!(node = node_id, answer = ?other, "not admitted to the metadata quorum yet"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = shutdown.changed() => return,
        }
    }
}
