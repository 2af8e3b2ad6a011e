//! One client connection. Kafka clients pipeline requests; the broker handles them one
//! at a time in arrival order and answers in that order, reading ahead into a buffer
//! meanwhile. A frame that is oversized, truncated or undecodable closes the connection:
//! after such a frame the byte stream cannot be trusted to be re-synchronised.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use gregor_protocol::frame::{frame_length, LENGTH_PREFIX};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::dispatch;

const READ_CHUNK: usize = 64 * 1024;
const PREALLOCATE_LIMIT: usize = 1024 * 1024;

pub(crate) struct Connection {
    socket: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    pub(crate) fn new(
        socket: TcpStream,
        peer: SocketAddr,
        broker: Arc<Broker>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self { socket, peer, broker, shutdown }
    }

    pub(crate) async fn run(self) {
        let Self { socket, peer, broker, mut shutdown } = self;
        tracing::debug!(%peer, "connection opened");
        broker.replicas.metrics.connection_opened();
        let (mut reader, writer) = socket.into_split();
        let mut writer = BufWriter::new(writer);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let max_frame = broker.config.max_request_bytes();
        let idle = broker.config.connections_max_idle();
        loop {
            if let Err(reason) = serve_buffered(&broker, peer, &mut buf, &mut writer, max_frame).await {
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
        broker.replicas.metrics.connection_closed();
        tracing::debug!(%peer, "connection closed");
    }
}

async fn idle_timer(idle: Option<std::time::Duration>) {
    match idle {
        Some(idle) => tokio::time::sleep(idle).await,
        None => std::future::pending().await,
    }
}

/// Handles every whole frame already buffered, writing responses in order.
async fn serve_buffered(
    broker: &Arc<Broker>,
    peer: SocketAddr,
    buf: &mut BytesMut,
    writer: &mut BufWriter<OwnedWriteHalf>,
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
        let response = dispatch::handle_frame(broker, frame, peer).await;
        broker.replicas.metrics.request(api_key, started.elapsed(), response.is_err());
        let response = response.map_err(|e| e.to_string())?;
        if let Some(response) = response {
            writer.write_all(&response).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
