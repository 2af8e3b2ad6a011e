//! The metadata quorum with three (and four) controllers in one process, each with its
//! own data dir on disk and its own controller listener on 127.0.0.1 (real TCP between
//! them): bootstrap without a format step, election, loss of the leader, a lagging node
//! catching up from a snapshot, voters added and removed, a wrong voter set refused.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gregor_metadata::{ConfigResource, MetadataImage, MetadataRecord};
use gregor_quorum::{ControllerNode, Quorum, QuorumConfig, QuorumError};

const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

struct Cluster {
    root: tempfile::TempDir,
    voters: BTreeMap<u64, ControllerNode>,
    nodes: BTreeMap<u64, Quorum>,
    snapshot_every: u64,
}

impl Cluster {
    fn new(ids: &[u64], snapshot_every: u64) -> Self {
        let voters = ids.iter().map(|id| (*id, ControllerNode::new("127.0.0.1", free_port()))).collect();
        Self { root: tempfile::tempdir().expect("tempdir"), voters, nodes: BTreeMap::new(), snapshot_every }
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.path().join(format!("node-{id}")).join("__cluster_metadata-0")
    }

    fn config(&self, id: u64, voters: &BTreeMap<u64, ControllerNode>) -> QuorumConfig {
        let node = self.voters.get(&id).cloned().unwrap_or_else(|| ControllerNode::new("127.0.0.1", free_port()));
        let mut config = QuorumConfig::new(id, self.dir(id));
        config.voters = voters.clone();
        config.listen = Some(SocketAddr::from(([127, 0, 0, 1], node.port)));
        config.election_timeout_ms = 300;
        config.snapshot_every_entries = self.snapshot_every;
        config.keep_after_snapshot = 0;
        config
    }

    async fn start(&mut self, id: u64) {
        let config = self.config(id, &self.voters.clone());
        let node = Quorum::start(config).await.expect("quorum member starts");
        let _ = self.nodes.insert(id, node);
    }

    async fn start_all(&mut self) {
        let ids: Vec<u64> = self.voters.keys().copied().collect();
        let configs: Vec<_> = ids.iter().map(|id| self.config(*id, &self.voters)).collect();
        let started = futures_util::future::join_all(configs.into_iter().map(Quorum::start)).await;
        for (id, node) in ids.into_iter().zip(started) {
            let _ = self.nodes.insert(id, node.expect("quorum member starts"));
        }
    }

    async fn stop(&mut self, id: u64) {
        self.nodes.remove(&id).expect("running").shutdown().await.expect("clean stop");
    }

    /// The leader all running nodes agree on.
    async fn leader(&self) -> u64 {
        wait_for("one leader known to every running node", || {
            let leaders: Vec<Option<u64>> = self.nodes.values().map(Quorum::leader).collect();
            let first = leaders[0]?;
            let agreed =
                leaders.iter().all(|l| *l == Some(first)) && self.nodes.get(&first).is_some_and(Quorum::is_leader);
            agreed.then_some(first)
        })
        .await
    }

    /// Writes a broker config record through the leader, retrying across elections.
    async fn write(&self, key: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let leader = self.leader().await;
            let record = MetadataRecord::Config {
                resource: ConfigResource::Broker(None),
                name: key.to_owned(),
                value: Some("v".to_owned()),
            };
            match self.nodes[&leader].write(Duration::from_secs(5), |_| Ok((vec![record], ()))).await {
                Ok(()) => return,
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("write {key}: {e}"),
            }
        }
    }

    /// Waits until every running node's image has `key`.
    async fn replicated(&self, key: &str) {
        wait_for(&format!("{key} on every node"), || {
            self.nodes.values().all(|n| has_key(&n.image(), key)).then_some(())
        })
        .await;
    }
}

fn has_key(image: &MetadataImage, key: &str) -> bool {
    image.broker_configs.get(&None).is_some_and(|c| c.contains_key(key))
}

async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn checkpoints(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".checkpoint"))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_nodes_elect_one_leader_agree_on_a_cluster_id_and_replicate() {
    let mut cluster = Cluster::new(&[1, 2, 3], 1000);
    cluster.start_all().await;
    let leader = cluster.leader().await;
    let ids = futures_util::future::join_all(
        cluster.nodes.values().enumerate().map(|(i, n)| n.agree_cluster_id(["a", "b", "c"][i], WAIT)),
    )
    .await;
    let ids: Vec<String> = ids.into_iter().map(|r| r.expect("cluster id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one cluster id: {ids:?}");
    cluster.write("first").await;
    cluster.replicated("first").await;

    // A write on a follower is refused with the leader's id, as KRaft's NOT_CONTROLLER.
    let follower = cluster.nodes.keys().copied().find(|id| *id != leader).expect("a follower");
    let err = cluster.nodes[&follower]
        .write(Duration::from_secs(5), |_| Ok((vec![], ())))
        .await
        .expect_err("not the controller");
    assert!(matches!(err, QuorumError::NotController { leader: Some(l) } if l == leader), "{err}");

    let status = cluster.nodes[&leader].status();
    assert_eq!(status.leader, Some(leader));
    assert_eq!(status.voters.len(), 3);
    assert!(status.high_watermark >= 3, "{status:?}");
    wait_for("voters caught up", || {
        let status = cluster.nodes[&leader].status();
        status.voters.iter().all(|v| v.log_end_offset == status.high_watermark).then_some(())
    })
    .await;
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_leader_elects_another_and_the_old_one_rejoins() {
    let mut cluster = Cluster::new(&[1, 2, 3], 1000);
    cluster.start_all().await;
    cluster.write("before").await;
    let old = cluster.leader().await;
    let epoch = cluster.nodes[&old].status().epoch;
    cluster.stop(old).await;
    let started = Instant::now();
    let new = cluster.leader().await;
    assert_ne!(new, old);
    assert!(started.elapsed() < Duration::from_secs(10), "election took {:?}", started.elapsed());
    assert!(cluster.nodes[&new].status().epoch > epoch);
    cluster.write("after").await;
    cluster.replicated("after").await;

    cluster.start(old).await;
    cluster.replicated("after").await;
    assert!(has_key(&cluster.nodes[&old].image(), "before"));
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::new(&[1, 2, 3], 5);
    cluster.start_all().await;
    cluster.write("k0").await;
    cluster.replicated("k0").await;
    let leader = cluster.leader().await;
    let lagging = cluster.nodes.keys().copied().find(|id| *id != leader).expect("a follower");
    cluster.stop(lagging).await;
    for i in 1..=20 {
        cluster.write(&format!("k{i}")).await;
    }
    cluster.nodes[&leader].snapshot().await.expect("snapshot");
    wait_for("the leader's log purged below its snapshot", || {
        let metrics = cluster.nodes[&leader].raft().metrics();
        let purged = openraft::async_runtime::watch::WatchReceiver::borrow_watched(&metrics).purged;
        purged.is_some_and(|p| p.index >= 20).then_some(())
    })
    .await;
    assert!(!checkpoints(&cluster.dir(leader)).is_empty());

    cluster.start(lagging).await;
    cluster.replicated("k20").await;
    let names = checkpoints(&cluster.dir(lagging));
    assert_eq!(names.len(), 1, "the follower installed the leader's snapshot: {names:?}");

    // Restarted again, the follower rebuilds its image from its own checkpoint and log.
    cluster.stop(lagging).await;
    cluster.start(lagging).await;
    assert!(has_key(&cluster.nodes[&lagging].image(), "k20"), "image rebuilt at start, before any election");
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_are_added_and_removed_at_run_time() {
    let mut cluster = Cluster::new(&[1, 2, 3], 1000);
    cluster.start_all().await;
    cluster.write("k").await;
    let leader = cluster.leader().await;

    // Node 4 joins: it does not bootstrap, the active controller adds it (KIP-853).
    let node = ControllerNode::new("127.0.0.1", free_port());
    let mut config = cluster.config(4, &BTreeMap::new());
    config.listen = Some(SocketAddr::from(([127, 0, 0, 1], node.port)));
    config.join = true;
    let _ = cluster.nodes.insert(4, Quorum::start(config).await.expect("joining node starts"));
    cluster.nodes[&leader].add_voter(4, node).await.expect("add voter 4");
    cluster.replicated("k").await;
    assert_eq!(cluster.nodes[&leader].status().voters.len(), 4);

    let removed = cluster.nodes.keys().copied().find(|id| *id != leader && *id != 4).expect("a voter");
    cluster.nodes[&leader].remove_voter(removed, false).await.expect("remove voter");
    cluster.stop(removed).await;
    let voters: Vec<u64> = cluster.nodes[&leader].status().voters.iter().map(|v| v.node_id).collect();
    assert!(!voters.contains(&removed) && voters.contains(&4), "{voters:?}");
    cluster.write("after-change").await;
    cluster.replicated("after-change").await;
    // The voters changed at run time: a node restarted with the voters it was first
    // configured with starts (the log, not its config, says who votes), and so does the
    // added one, which is a voter now and asks nobody to admit it.
    let kept = cluster.nodes.keys().copied().find(|id| *id != leader && *id != 4).expect("an original voter");
    for id in [kept, 4] {
        let config = {
            let mut config = cluster.config(id, &cluster.voters.clone());
            if id == 4 {
                config.voters = BTreeMap::new();
                config.join = true;
                config.listen =
                    Some(SocketAddr::from(([127, 0, 0, 1], cluster.nodes[&4].local_addr().unwrap().port())));
            }
            config
        };
        cluster.stop(id).await;
        let _ = cluster.nodes.insert(id, Quorum::start(config).await.expect("restarts with its old config"));
    }
    cluster.write("after-restarts").await;
    cluster.replicated("after-restarts").await;
    assert_eq!(cluster.nodes[&4].status().voters.len(), 3, "{:?}", cluster.nodes[&4].status());
    for id in cluster.nodes.keys().copied().collect::<Vec<_>>() {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_configured_with_other_voters_is_refused() {
    let mut cluster = Cluster::new(&[1, 2, 3], 1000);
    cluster.start_all().await;
    cluster.write("k").await;
    cluster.replicated("k").await;
    cluster.stop(3).await;
    let mut wrong = cluster.voters.clone();
    let _ = wrong.remove(&2);
    let err = Quorum::start(cluster.config(3, &wrong)).await.expect_err("voter set mismatch");
    assert!(err.to_string().contains("controller.quorum.voters"), "{err}");
    for id in [1, 2] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_requests_to_the_active_controller() {
    let mut cluster = Cluster::new(&[1, 2, 3], 1000);
    cluster.start_all().await;
    for (id, node) in &cluster.nodes {
        let id = *id;
        node.set_forward_handler(gregor_quorum::ForwardHandler::new(move |from, body| {
            Box::pin(async move { format!("{id} served {} from {from}", String::from_utf8_lossy(&body)).into_bytes() })
        }));
    }
    let leader = cluster.leader().await;
    let follower = cluster.nodes.keys().copied().find(|id| *id != leader).expect("a follower");
    let answer = cluster.nodes[&follower].call_leader(b"ping", WAIT, WAIT).await.expect("forwarded");
    assert_eq!(String::from_utf8(answer).unwrap(), format!("{leader} served ping from {follower}"));
    let err = cluster.nodes[&leader].call_leader(b"ping", WAIT, WAIT).await.expect_err("the leader serves itself");
    assert!(matches!(err, QuorumError::NotController { .. }));
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_restarted_with_an_empty_dir_joins_without_bootstrapping() {
    let mut cluster = Cluster::new(&[1, 2, 3], 1000);
    cluster.start_all().await;
    cluster.write("k").await;
    cluster.replicated("k").await;
    let leader = cluster.leader().await;
    let wiped = cluster.nodes.keys().copied().find(|id| *id != leader).expect("a follower");
    cluster.stop(wiped).await;
    std::fs::remove_dir_all(cluster.dir(wiped)).expect("wipe");
    cluster.start(wiped).await;
    cluster.write("after-wipe").await;
    cluster.replicated("after-wipe").await;
    assert!(has_key(&cluster.nodes[&wiped].image(), "k"), "the wiped node got the whole log back");
    assert_eq!(cluster.leader().await, leader, "no election was caused");
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_voter_does_not_vote_until_a_leader_reaches_it() {
    let mut cluster = Cluster::new(&[1, 2, 3], 1000);
    cluster.start_all().await;
    let leader = cluster.leader().await;
    cluster.write("k").await;
    cluster.replicated("k").await;
    let wiped = cluster.nodes.keys().copied().find(|id| *id != leader).expect("a follower");
    let other = [1, 2, 3].into_iter().find(|id| *id != leader && *id != wiped).expect("the third node");
    // The wiped node comes back while the leader is down: the only other voter must not
    // win an election with the vote of a node that forgot which votes it gave.
    cluster.stop(wiped).await;
    cluster.stop(leader).await;
    std::fs::remove_dir_all(cluster.dir(wiped)).expect("wipe");
    cluster.start(wiped).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!cluster.nodes[&other].is_leader(), "elected with a forgetful voter");
    assert!(!cluster.nodes[&wiped].is_leader());
    // With the old leader back, a leader is elected, reaches the wiped node, and it votes again.
    cluster.start(leader).await;
    let new_leader = cluster.leader().await;
    cluster.write("after").await;
    cluster.replicated("after").await;
    assert_ne!(new_leader, wiped, "the wiped node had the shortest log");
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}
