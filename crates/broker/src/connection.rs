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
use crate::sasl::{Authenticator, Gate, SaslSettings};

const READ_CHUNK: usize = 64 * 1024;
const PREALLOCATE_LIMIT: usize = 1024 * 1024;

/// Who is on the other end of a connection, and through which listener.
#[derive(Debug)]
pub(crate) struct ClientSession {
    pub(crate) peer: SocketAddr,
    pub(crate) listener: Arc<ListenerSpec>,
    /// `User:ANONYMOUS`, or the TLS client certificate's subject.
    transport_principal: String,
    /// On SASL listeners: the authentication state.
    pub(crate) sasl: Option<Authenticator>,
    /// The peer's address as Kafka's ACL hosts spell it (Java's notation).
    pub(crate) host: String,
}

impl ClientSession {
    pub(crate) fn new(peer: SocketAddr, listener: Arc<ListenerSpec>, sasl: Option<Arc<SaslSettings>>) -> Self {
        Self {
            peer,
            listener,
            transport_principal: ANONYMOUS.to_owned(),
            sasl: sasl.map(Authenticator::new),
            host: gregor_security::authorizer::host_address(peer.ip()),
        }
    }

    /// Kafka's principal of the connection: the SASL user once authenticated, else the
    /// TLS client's subject, else `User:ANONYMOUS`.
    pub(crate) fn principal(&self) -> &str {
        self.sasl.as_ref().and_then(Authenticator::principal).unwrap_or(&self.transport_principal)
    }
}

const ANONYMOUS: &str = "User:ANONYMOUS";

pub(crate) struct Connection {
    socket: TcpStream,
    session: ClientSession,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    pub(crate) fn new(
        socket: TcpStream,
        session: ClientSession,
        broker: Arc<Broker>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self { socket, session, broker, shutdown }
    }

    /// Serves the connection; on a TLS listener after the handshake (whose client
    /// certificate, if any, names the principal).
    pub(crate) async fn run(self, tls: Option<Arc<gregor_security::ServerTls>>) {
        let Self { socket, mut session, broker, shutdown } = self;
        let peer = session.peer;
        tracing::debug!(%peer, listener = %session.listener.name, "connection opened");
        broker.replicas.metrics.connection_opened();
        match tls {
            None => {
                let (reader, writer) = socket.into_split();
                serve(reader, writer, &mut session, &broker, shutdown).await;
            }
            Some(tls) => match handshake(socket, &tls).await {
                Ok((stream, principal)) => {
                    if let Some(principal) = principal {
                        session.transport_principal = principal;
                    }
                    let (reader, writer) = tokio::io::split(stream);
                    serve(reader, writer, &mut session, &broker, shutdown).await;
                }
                Err(reason) => tracing::info!(%peer, %reason, "closing connection: TLS handshake failed"),
            },
        }
        broker.replicas.metrics.connection_closed();
        tracing::debug!(%peer, "connection closed");
    }
}

/// A TLS handshake must not hold a connection slot forever.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// The TLS handshake, and `User:<subject DN>` of a client certificate (Kafka's DEFAULT
/// `ssl.principal.mapping.rules`).
async fn handshake(socket: TcpStream, tls: &gregor_security::ServerTls) -> Result<(TlsStream, Option<String>), String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    let stream = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(socket))
        .await
        .map_err(|_| "no handshake within 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let certificate = stream.get_ref().1.peer_certificates().and_then(|c| c.first().cloned());
    let principal = match certificate {
        Some(der) => Some(format!(
            "User:{}",
            gregor_security::principal_from_certificate(&der).map_err(|e| format!("client certificate: {e}"))?
        )),
        None => None,
    };
    Ok((stream, principal))
}

/// Reads frames and answers them in order until the peer leaves, a frame is bad, the
/// connection idles out, or the broker shuts down.
async fn serve<R, W>(
    mut reader: R,
    writer: W,
    session: &mut ClientSession,
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
        let limit = session.sasl.as_ref().map_or(max_frame, |auth| auth.max_frame(max_frame));
        if let Err(reason) = serve_buffered(broker, session, &mut buf, &mut writer, limit).await {
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
    session: &mut ClientSession,
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
        if let Some(auth) = session.sasl.as_mut() {
            let now = std::time::Instant::now();
            match auth.gate(Some(api_key), now) {
                Gate::Dispatch => {}
                Gate::Close(reason) => return Err(reason),
                Gate::RawToken => {
                    match auth.raw_token(&crate::sasl::image_credentials(broker), &frame, now) {
                        Ok(token) => write_raw_token(writer, &token).await?,
                        Err((e, delay)) => return Err(after_failure(writer, delay, e.to_string()).await),
                    }
                    continue;
                }
                Gate::Sasl => {
                    let (response, close_after) =
                        dispatch::handle_sasl_frame(broker, auth, frame).await.map_err(|e| e.to_string())?;
                    writer.write_all(&response).await.map_err(|e| e.to_string())?;
                    if let Some(delay) = close_after {
                        return Err(after_failure(writer, delay, "SASL authentication failed".into()).await);
                    }
                    continue;
                }
            }
        }
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

/// A raw SASL token answer (after a v0 SaslHandshake): a length and the bytes, no header.
async fn write_raw_token<W: AsyncWrite + Unpin>(writer: &mut BufWriter<W>, token: &[u8]) -> Result<(), String> {
    let len = i32::try_from(token.len()).map_err(|_| "SASL token too large".to_owned())?;
    writer.write_all(&len.to_be_bytes()).await.map_err(|e| e.to_string())?;
    writer.write_all(token).await.map_err(|e| e.to_string())
}

/// Kafka's `connection.failed.authentication.delay.ms`: the failure answer goes out, then
/// the connection waits before it closes, slowing down password guessing.
async fn after_failure<W: AsyncWrite + Unpin>(
    writer: &mut BufWriter<W>,
    delay: std::time::Duration,
    reason: String,
) -> String {
    let _ = writer.flush().await;
    tokio::time::sleep(delay).await;
    reason
}
