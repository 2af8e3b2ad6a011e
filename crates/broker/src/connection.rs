//! One client connection. Kafka clients pipeline requests; the broker handles them one
//! at a time in arrival order and answers in that order, reading ahead into a buffer
//! meanwhile. A frame that is oversized, truncated or undecodable closes the connection:
//! after such a frame the byte stream cannot be trusted to be re-synchronised.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use gregor_protocol::frame::{frame_length, LENGTH_PREFIX};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::dispatch;
use crate::listeners::ListenerSpec;

const READ_CHUNK: usize = 64 * 1024;
const PREALLOCATE_LIMIT: usize = 1024 * 1024;

/// Who is on the other end of a connection, and through which listener.
#[derive(Debug, Clone)]
pub(crate) struct ClientSession {
    pub(crate) peer: SocketAddr,
    pub(crate) listener: Arc<ListenerSpec>,
}

pub(crate) struct Connection {
    socket: TcpStream,
    session: ClientSession,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    pub(crate) fn new(
        socket: TcpStream,
        peer: SocketAddr,
        listener: Arc<ListenerSpec>,
        broker: Arc<Broker>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self { socket, session: ClientSession { peer, listener }, broker, shutdown }
    }

    pub(crate) async fn run(self) {
        let Self { socket, session, broker, shutdown } = self;
        let peer = session.peer;
        tracing::debug!(%peer, listener = %session.listener.name, "connection opened");
        broker.replicas.metrics.connection_opened();
        let (reader, writer) = socket.into_split();
        serve(reader, writer, &session, &broker, shutdown).await;
        broker.replicas.metrics.connection_closed();
        tracing::debug!(%peer, "connection closed");
    }
}

/// Reads frames and answers them in order until the peer leaves, a frame is bad, the
/// connection idles out, or the broker shuts down.
async fn serve<R, W>(
    mut reader: R,
    writer: W,
    session: &ClientSession,
    broker: &Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let peer = session.peer;
    let mut writer = BufWriter::new(writer);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let max_frame = broker.config.max_request_bytes();
    let idle = broker.config.connections_max_idle();
    loop {
        if let Err(reason) = serve_buffered(broker, session, &mut buf, &mut writer, max_frame).await {
            tracing::info!(%peer, %reason, "closing connection");
            break;
        }
        if writer.flush().await.is_err() {
            break;
        }
        buf.reserve(READ_CHUNK);
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => {
                    if !buf.is_empty() {
                        tracing::info!(%peer, bytes = buf.len(), "connection closed mid-frame");
                    }
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            _ = shutdown.changed() => break,
            // Kafka's connections.max.idle.ms: a client that sends nothing gives its slot back.
            () = idle_timer(idle) => {
                tracing::info!(%peer, "closing connection: idle for connections.max.idle.ms");
                break;
            }
        }
    }
    let _ = writer.shutdown().await;
}

async fn idle_timer(idle: Option<std::time::Duration>) {
    match idle {
        Some(idle) => tokio::time::sleep(idle).await,
        None => std::future::pending().await,
    }
}

/// Handles every whole frame already buffered, writing responses in order.
async fn serve_buffered<W: AsyncWrite + Unpin>(
    broker: &Arc<Broker>,
    session: &ClientSession,
    buf: &mut BytesMut,
    writer: &mut BufWriter<W>,
    max_frame: usize,
) -> Result<(), String> {
    while let Some(len) = frame_length(buf, max_frame).map_err(|e| e.to_string())? {
        if buf.len() < LENGTH_PREFIX + len {
            // Frames up to PREALLOCATE_LIMIT get their whole buffer at once (one read, no
            // regrowth); beyond it the buffer grows with the bytes that arrive, so a client
            // that announces a huge frame and stalls holds only what it sent.
            buf.reserve((LENGTH_PREFIX + len - buf.len()).min(PREALLOCATE_LIMIT));
            return Ok(());
        }
        buf.advance(LENGTH_PREFIX);
        let frame = buf.split_to(len).freeze();
        let api_key = gregor_protocol::frame::RequestPrefix::peek(&frame).map_or(-1, |p| p.api_key);
        let started = std::time::Instant::now();
        let response = dispatch::handle_frame(broker, frame, session).await;
        broker.replicas.metrics.request(api_key, started.elapsed(), response.is_err());
        let response = response.map_err(|e| e.to_string())?;
        if let Some(response) = response {
            writer.write_all(&response).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
