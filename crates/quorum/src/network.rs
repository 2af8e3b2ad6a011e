//! openraft's network over TCP: one lazily opened connection per target controller (and
//! openraft asks for separate ones for heartbeats and snapshots, so a large snapshot never
//! delays the heartbeats that keep the leader's lease). A failed call drops the connection;
//! the next call reconnects. A refused connection is `Unreachable` (openraft backs off),
//! any other failure a `NetworkError` (openraft retries).

use std::time::Duration;

use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::OptionalSend;
use tokio::net::TcpStream;

use crate::rpc::{read_frame, write_frame, Envelope, RaftRequest, RaftResponse};
use crate::{ControllerNode, Snapshot, SnapshotData, TypeConfig, Vote};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The least time an AppendEntries carrying entries gets.
const APPEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Makes a [`TcpConnection`] per target for openraft.
#[derive(Debug, Clone)]
pub struct TcpNetworkFactory {
    node_id: u64,
}

impl TcpNetworkFactory {
    pub fn new(node_id: u64) -> Self {
        Self { node_id }
    }
}

impl RaftNetworkFactory<TypeConfig> for TcpNetworkFactory {
    type Network = TcpConnection;

    async fn new_client(&mut self, target: u64, node: &ControllerNode) -> TcpConnection {
        TcpConnection { from: self.node_id, target, address: node.address(), stream: None }
    }
}

/// The connection to one target controller.
#[derive(Debug)]
pub struct TcpConnection {
    from: u64,
    target: u64,
    address: String,
    stream: Option<TcpStream>,
}

/// Why a call failed, before it becomes one of openraft's error types.
#[derive(Debug)]
struct Failure {
    unreachable: bool,
    error: std::io::Error,
}

impl Failure {
    fn rpc(self) -> RPCError<TypeConfig> {
        if self.unreachable {
            RPCError::Unreachable(Unreachable::new(&self.error))
        } else {
            RPCError::Network(NetworkError::new(&self.error))
        }
    }

    fn streaming(self) -> StreamingError<TypeConfig> {
        if self.unreachable {
            StreamingError::Unreachable(Unreachable::new(&self.error))
        } else {
            StreamingError::Network(NetworkError::new(&self.error))
        }
    }
}

impl TcpConnection {
    async fn connect(&mut self) -> Result<&mut TcpStream, Failure> {
        if self.stream.is_none() {
            let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.address)).await;
            let stream = match connect {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(Failure { unreachable: true, error }),
                Err(_) => {
                    let error =
                        std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connect to {}", self.address));
                    return Err(Failure { unreachable: true, error });
                }
            };
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
        }
        Ok(self.stream.as_mut().expect("just connected"))
    }

    /// A connection from `from` to `target` at `node`, for forwarded requests.
    pub(crate) fn to(from: u64, target: u64, node: &ControllerNode) -> Self {
        Self { from, target, address: node.address(), stream: None }
    }

    /// Sends `body` as a forwarded request and returns the answer's bytes. An error of
    /// kind `NotConnected` means the request was not served (no connection, or the target
    /// refused it); `TimedOut` means it was sent and not answered in `ttl`.
    pub(crate) async fn forward(&mut self, body: &[u8], ttl: Duration) -> std::io::Result<Vec<u8>> {
        match self.call_with_body(RaftRequest::Forward, body, ttl).await {
            Ok((RaftResponse::Forwarded, answer)) => Ok(answer),
            Ok((other, _)) => Err(unexpected(&other).error),
            Err(failure) if failure.unreachable => {
                Err(std::io::Error::new(std::io::ErrorKind::NotConnected, failure.error.to_string()))
            }
            Err(failure) => Err(failure.error),
        }
    }

    /// Asks the target to admit this node as a learner at `me`; `None` when it does not
    /// answer.
    pub(crate) async fn join(&mut self, me: &ControllerNode, ttl: Duration) -> Option<RaftResponse> {
        self.call(RaftRequest::Join { node: me.clone() }, &[], ttl).await.ok()
    }

    /// Whether the target has Raft state, and its last entry's index; `None` when it
    /// does not answer.
    pub(crate) async fn probe(&mut self, ttl: Duration) -> Option<(bool, Option<u64>)> {
        match self.call(RaftRequest::Probe, &[], ttl).await {
            Ok(RaftResponse::Probe { initialized, last_log_index }) => Some((initialized, last_log_index)),
            _ => None,
        }
    }

    async fn call(&mut self, request: RaftRequest, body: &[u8], ttl: Duration) -> Result<RaftResponse, Failure> {
        self.call_with_body(request, body, ttl).await.map(|(response, _)| response)
    }

    async fn call_with_body(
        &mut self,
        request: RaftRequest,
        body: &[u8],
        ttl: Duration,
    ) -> Result<(RaftResponse, Vec<u8>), Failure> {
        let envelope = Envelope { from: self.from, to: self.target, request };
        let header = serde_json::to_vec(&envelope)
            .map_err(|e| Failure { unreachable: false, error: std::io::Error::other(e) })?;
        let result = tokio::time::timeout(ttl, async {
            let stream = self.connect().await?;
            let io = |error| Failure { unreachable: false, error };
            write_frame(stream, &header, body).await.map_err(io)?;
            let frame = read_frame(stream).await.map_err(io)?;
            let (header, answer) = frame.ok_or_else(|| io(std::io::ErrorKind::UnexpectedEof.into()))?;
            let response = serde_json::from_slice::<RaftResponse>(&header).map_err(|e| io(std::io::Error::other(e)))?;
            Ok((response, answer))
        })
        .await
        .unwrap_or_else(|_| Err(Failure { unreachable: false, error: std::io::ErrorKind::TimedOut.into() }));
        match result {
            // A remote refusal (stopped node, wrong id): the target cannot serve now.
            Ok((RaftResponse::Error(reason), _)) => {
                Err(Failure { unreachable: true, error: std::io::Error::other(reason) })
            }
            Ok(response) => Ok(response),
            Err(failure) => {
                self.stream = None;
                Err(failure)
            }
        }
    }
}

fn unexpected(response: &RaftResponse) -> Failure {
    Failure { unreachable: false, error: std::io::Error::other(format!("unexpected response {response:?}")) }
}

impl RaftNetworkV2<TypeConfig> for TcpConnection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // openraft budgets one heartbeat interval; entries get at least APPEND_TIMEOUT,
        // as the follower fsyncs them before answering and a slow disk must not turn
        // every replication attempt into a timeout and a resend.
        let ttl = if rpc.entries.is_empty() { option.soft_ttl() } else { option.soft_ttl().max(APPEND_TIMEOUT) };
        match self.call(RaftRequest::AppendEntries(rpc), &[], ttl).await.map_err(Failure::rpc)? {
            RaftResponse::AppendEntries(r) => Ok(r),
            other => Err(unexpected(&other).rpc()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRequest::Vote(rpc), &[], option.soft_ttl()).await.map_err(Failure::rpc)? {
            RaftResponse::Vote(r) => Ok(r),
            other => Err(unexpected(&other).rpc()),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRequest::PreVote(rpc), &[], option.soft_ttl()).await.map_err(Failure::rpc)? {
            RaftResponse::Vote(r) => Ok(r),
            other => Err(unexpected(&other).rpc()),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let body = snapshot.snapshot.into_inner();
        let request = RaftRequest::Snapshot { vote, meta: snapshot.meta };
        // A snapshot may take longer than one heartbeat's budget.
        let ttl = option.hard_ttl().max(Duration::from_secs(30));
        let response = tokio::select! {
            response = self.call(request, &body, ttl) => response.map_err(Failure::streaming)?,
            closed = cancel => {
                self.stream = None;
                return Err(StreamingError::Closed(closed));
            }
        };
        match response {
            RaftResponse::Snapshot(r) => Ok(r),
            other => Err(unexpected(&other).streaming()),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRequest::TransferLeader(req), &[], option.soft_ttl()).await.map_err(Failure::rpc)? {
            RaftResponse::TransferLeader(r) => Ok(r),
            other => Err(unexpected(&other).rpc()),
        }
    }
}
