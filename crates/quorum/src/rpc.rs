//! The controllers' Raft RPCs on the `CONTROLLER` listener: Gregor-internal frames that
//! only Gregor controllers speak to each other (clients never reach this listener).
//!
//! A frame is `[u32 length][u32 header length][JSON header][binary body]`: the header is
//! the request or response, the body carries snapshot bytes unencoded. Each request names
//! its sender and target node ids; a node refuses a request meant for another id, so a
//! reused address never feeds one node's RPCs to another.

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::{ControllerNode, Raft, SnapshotMeta, TypeConfig, Vote};

type ForwardFn = dyn Fn(u64, Vec<u8>) -> futures_util::future::BoxFuture<'static, Vec<u8>> + Send + Sync;

/// Serves a forwarded request: (sending node id, request bytes) to answer bytes.
#[derive(Clone)]
pub struct ForwardHandler(std::sync::Arc<ForwardFn>);

impl ForwardHandler {
    pub fn new(
        f: impl Fn(u64, Vec<u8>) -> futures_util::future::BoxFuture<'static, Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        Self(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for ForwardHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardHandler")
    }
}

/// Where the application installs its handler once it exists (after the quorum started).
pub(crate) type ForwardSlot = std::sync::Arc<std::sync::OnceLock<ForwardHandler>>;

/// The largest frame accepted: a snapshot of a very large cluster fits.
const MAX_FRAME_BYTES: usize = 512 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) request: RaftRequest,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RaftRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    /// The snapshot's bytes travel in the frame's body.
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
    },
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// A request for the active controller from another node's broker (its body is the
    /// application's bytes; see [`crate::Quorum::call_leader`]).
    Forward,
    /// Whether the target holds any Raft state (a log entry or a vote), asked by a
    /// pristine node before it bootstraps the quorum.
    Probe,
    /// KIP-853's observer: the sender asks to replicate the metadata log as a learner at
    /// `node` (a broker-only node, or a controller not yet added as a voter). Sent to any
    /// controller (`to` may be [`ANY_NODE`]); one that does not lead redirects.
    Join {
        node: ControllerNode,
    },
}

/// The `to` of a request for whichever node answers (only `Join`: the joiner knows
/// controller addresses, not their ids).
pub(crate) const ANY_NODE: u64 = u64::MAX;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RaftResponse {
    AppendEntries(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    Snapshot(SnapshotResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    /// The application's answer to a `Forward`, in the frame's body.
    Forwarded,
    Probe {
        initialized: bool,
        /// The index of its last entry (absent from nodes before it was added).
        #[serde(default)]
        last_log_index: Option<u64>,
    },
    /// The sender is a learner at the address it gave.
    Joined,
    /// Ask the leader instead (`None`: no leader is known now).
    Redirect {
        leader: Option<(u64, ControllerNode)>,
    },
    /// The request could not be served (wrong target, stopped node, bad frame).
    Error(String),
}

pub(crate) async fn write_frame(stream: &mut TcpStream, header: &[u8], body: &[u8]) -> std::io::Result<()> {
    let too_big = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large");
    let header_len = u32::try_from(header.len()).map_err(|_| too_big())?;
    let total = u32::try_from(4 + header.len() + body.len()).map_err(|_| too_big())?;
    let mut prefix = [0u8; 8];
    prefix[..4].copy_from_slice(&total.to_be_bytes());
    prefix[4..].copy_from_slice(&header_len.to_be_bytes());
    stream.write_all(&prefix).await?;
    stream.write_all(header).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

/// Reads one frame: (header, body). `Ok(None)` at a clean end of stream.
pub(crate) async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let total = u32::from_be_bytes(len) as usize;
    if !(4..=MAX_FRAME_BYTES).contains(&total) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad frame length {total}")));
    }
    // Grown as bytes arrive, so a bogus length from a stray connection costs nothing.
    let mut frame = Vec::with_capacity(total.min(1 << 20));
    let read = (&mut *stream).take(total as u64).read_to_end(&mut frame).await?;
    if read < total {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let header_len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    if header_len > total - 4 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "bad header length"));
    }
    let body = frame.split_off(4 + header_len);
    let header = frame.split_off(4);
    Ok(Some((header, body)))
}

/// Set while this voter may have forgotten votes it gave (it restarted with an empty
/// log in a quorum that already had a leader: its data dir was lost). It refuses vote
/// requests until a leader reached it: granting a second vote in a term it forgot could
/// elect two leaders in one term. Cleared once it follows a leader, whose term is then
/// its vote. (KIP-853's directory ids solve this for Kafka's dynamic quorums.)
pub(crate) type Amnesia = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// Accepts controller connections until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    raft: Raft,
    node_id: u64,
    forward: ForwardSlot,
    amnesia: Amnesia,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let connection = serve_connection(stream, raft.clone(), node_id, forward.clone(), amnesia.clone(), shutdown.clone());
                    tokio::spawn(connection);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "controller listener accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    raft: Raft,
    node_id: u64,
    forward: ForwardSlot,
    amnesia: Amnesia,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut stream) => frame,
            _ = shutdown.changed() => return,
        };
        let Ok(Some((header, body))) = frame else { return };
        let (response, answer) = match serde_json::from_slice::<Envelope>(&header) {
            Ok(Envelope { request: RaftRequest::Join { node }, from, .. }) => {
                (crate::join::admit(&raft, from, node).await, Vec::new())
            }
            Ok(Envelope { request: RaftRequest::Vote(_) | RaftRequest::PreVote(_), .. })
                // Cleared by the watcher `node::forget_votes` starts.
                if amnesia.load(std::sync::atomic::Ordering::Relaxed) =>
            {
                (
                    RaftResponse::Error("this voter lost its data: it does not vote until a leader reaches it".into()),
                    Vec::new(),
                )
            }
            Ok(envelope) if envelope.to != node_id => {
                (RaftResponse::Error(format!("this is node {node_id}, not node {}", envelope.to)), Vec::new())
            }
            Ok(Envelope { request: RaftRequest::Forward, from, .. }) => {
                let handler = forward.get().cloned();
                match handler {
                    Some(handler) => (RaftResponse::Forwarded, (handler.0)(from, body).await),
                    None => (RaftResponse::Error("this node serves no forwarded requests yet".into()), Vec::new()),
                }
            }
            Ok(envelope) => (handle(&raft, envelope.request, body).await, Vec::new()),
            Err(e) => (RaftResponse::Error(format!("bad request: {e}")), Vec::new()),
        };
        let Ok(bytes) = serde_json::to_vec(&response) else { return };
        if write_frame(&mut stream, &bytes, &answer).await.is_err() {
            return;
        }
    }
}

async fn handle(raft: &Raft, request: RaftRequest, body: Vec<u8>) -> RaftResponse {
    let error = |e: &dyn std::fmt::Display| RaftResponse::Error(e.to_string());
    match request {
        RaftRequest::AppendEntries(rpc) => {
            raft.append_entries(rpc).await.map_or_else(|e| error(&e), RaftResponse::AppendEntries)
        }
        RaftRequest::Vote(rpc) => raft.vote(rpc).await.map_or_else(|e| error(&e), RaftResponse::Vote),
        RaftRequest::PreVote(rpc) => raft.pre_vote(rpc).await.map_or_else(|e| error(&e), RaftResponse::Vote),
        RaftRequest::Snapshot { vote, meta } => {
            let snapshot = crate::Snapshot { meta, snapshot: std::io::Cursor::new(body) };
            raft.install_full_snapshot(vote, snapshot).await.map_or_else(|e| error(&e), RaftResponse::Snapshot)
        }
        RaftRequest::TransferLeader(rpc) => {
            raft.handle_transfer_leader(rpc).await.map_or_else(|e| error(&e), RaftResponse::TransferLeader)
        }
        RaftRequest::Forward | RaftRequest::Join { .. } => {
            RaftResponse::Error("handled before the request reaches openraft".into())
        }
        RaftRequest::Probe => {
            let metrics = openraft::async_runtime::watch::WatchReceiver::borrow_watched(&raft.metrics()).clone();
            let initialized = metrics.last_log_index.is_some() || metrics.vote.leader_id.term > 0;
            RaftResponse::Probe { initialized, last_log_index: metrics.last_log_index }
        }
    }
}
