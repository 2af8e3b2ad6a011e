//! The listener: accepts connections until shutdown, one task per connection.
//! Shutdown stops accepting, tells every connection to finish its current request,
//! waits for them, and only then lets the broker close its logs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::connection::{ClientSession, Connection};
use crate::connection_quotas::{ConnectionQuotas, ConnectionSlot};
use crate::listeners::ListenerSpec;
use crate::sasl::SaslSettings;

/// What a listener's connections need beyond the socket: TLS and SASL settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListenerSecurity {
    pub(crate) tls: Option<Arc<gregor_security::ServerTls>>,
    pub(crate) sasl: Option<Arc<SaslSettings>>,
}

/// How often at most the accept path looks at the keystore and truststore files.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Certificates renewed on disk are served from the next connection on, without a
/// restart; a broken new file keeps the old ones (logged once per change).
fn reload_certificates(tls: &gregor_security::ServerTls, last_check: &mut std::time::Instant) {
    if last_check.elapsed() < RELOAD_CHECK_INTERVAL {
        return;
    }
    *last_check = std::time::Instant::now();
    match tls.reload_if_changed() {
        Ok(true) => tracing::info!("TLS keystore or truststore changed: reloaded"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "TLS files changed but cannot be loaded: serving the previous ones"),
    }
}

/// Runs the accept loop on `listener` until `shutdown` becomes true.
pub(crate) async fn run(
    listener: TcpListener,
    spec: ListenerSpec,
    security: ListenerSecurity,
    broker: Arc<Broker>,
    quotas: Arc<ConnectionQuotas>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let listener_info = Arc::new(spec);
    let mut last_reload_check = std::time::Instant::now();
    loop {
        tokio::select! {
            (accepted, mut slot) = accept(&listener, &quotas) => match accepted {
                Ok((socket, peer)) => {
                    if !slot.admit(peer.ip()) {
                        tracing::info!(%peer, "closing connection: max.connections.per.ip reached");
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    let session = ClientSession::new(peer, listener_info.clone(), security.sasl.clone());
                    let conn = Connection::new(socket, session, broker.clone(), shutdown.clone());
                    let tls = security.tls.clone();
                    if let Some(tls) = &tls {
                        reload_certificates(tls, &mut last_reload_check);
                    }
                    let _ = connections.spawn(async move {
                        conn.run(tls).await;
                        drop(slot);
                    });
                }
                // Out of file descriptors and similar: back off instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Connections see the same shutdown signal; give in-flight requests a moment.
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
        connections.abort_all();
    }
}

/// Accepts once the broker-wide connection limit leaves room.
async fn accept(
    listener: &TcpListener,
    quotas: &Arc<ConnectionQuotas>,
) -> (std::io::Result<(tokio::net::TcpStream, SocketAddr)>, ConnectionSlot) {
    let slot = quotas.reserve().await;
    (listener.accept().await, slot)
}

/// Binds the listener on every address the host name resolves to (`localhost` is both
/// 127.0.0.1 and ::1, and clients may try either), all on the port the first one got,
/// so that port 0 still yields one port to advertise.
pub(crate) async fn bind(addr: &str) -> std::io::Result<Vec<TcpListener>> {
    let addrs: Vec<SocketAddr> = match addr.rsplit_once(':') {
        // Clients resolve `localhost` as their resolver likes (often ::1 first), whatever
        // this host's /etc/hosts says: serve both loopbacks.
        Some(("localhost", port)) => {
            let port: u16 = port.parse().map_err(|_| std::io::Error::other(format!("bad port in '{addr}'")))?;
            vec![SocketAddr::from(([127, 0, 0, 1], port)), SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))]
        }
        // Kafka's `PLAINTEXT://:9092`: no host binds every interface.
        Some(("", port)) => {
            let port: u16 = port.parse().map_err(|_| std::io::Error::other(format!("bad port in '{addr}'")))?;
            vec![SocketAddr::from(([0, 0, 0, 0], port))]
        }
        _ => tokio::net::lookup_host(addr).await?.collect(),
    };
    let mut addrs = addrs.into_iter();
    let first = addrs.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "the host name resolves to no address")
    })?;
    let first = TcpListener::bind(first).await?;
    let port = first.local_addr()?.port();
    let mut listeners = vec![first];
    for mut a in addrs {
        a.set_port(port);
        // A second family may be missing (no IPv6 on the host): serve what we have.
        match TcpListener::bind(a).await {
            Ok(l) => listeners.push(l),
            Err(e) => tracing::debug!(addr = %a, error = %e, "skipping listener address"),
        }
    }
    Ok(listeners)
}
