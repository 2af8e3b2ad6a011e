//! [`ServerTls`]: a listener's rustls `ServerConfig`, rebuilt when its PEM files change.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::{crypto_provider, pem, ClientAuth, KeystoreSource, TlsSettings, TruststoreSource};
use crate::error::{Result, SecurityError};

/// A listener's TLS: the settings and the `ServerConfig` built from them, shared by every
/// connection; [`ServerTls::reload_if_changed`] swaps in a new config when the files change.
#[derive(Debug)]
pub struct ServerTls {
    settings: TlsSettings,
    config: RwLock<Arc<ServerConfig>>,
    /// What the store files looked like when last read (successfully or not); the lock also
    /// keeps two reloads from running at once.
    stamps: Mutex<Vec<FileStamp>>,
}

/// A file's identity for change detection: modification time, length and (on Unix) inode,
/// which tells a file renamed over the old one (or a swapped symlink target) even within the
/// file system's timestamp granularity; `None` when it cannot be stat'ed, so that a file
/// coming back counts as a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    seen: Option<(SystemTime, u64, u64)>,
}

impl ServerTls {
    /// Reads the keystore and truststore now and builds the config; the errors name the
    /// setting and the file at fault.
    pub fn load(settings: &TlsSettings) -> Result<Self> {
        let stamps = stamps(settings);
        let config = build(settings)?;
        Ok(Self { settings: settings.clone(), config: RwLock::new(config), stamps: Mutex::new(stamps) })
    }

    /// The config to accept the next connection with (ALPN none, rustls' default session
    /// resumption). Connections keep the config they started with across a reload.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The settings this was loaded from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Stats the keystore and truststore files (modification time and length) and, when
    /// either changed since last read, rebuilds the config: `Ok(true)` when a new config is
    /// in place, `Ok(false)` when nothing changed (or another thread is reloading right now).
    /// When the new files are bad the old config stays and the error is returned, once per
    /// change: the next call tries again only after the files change again (a half-written
    /// file is retried when its writer finishes). Inline PEM never changes. Costs one `stat`
    /// per file when nothing changed; meant to be called every few seconds at most.
    pub fn reload_if_changed(&self) -> Result<bool> {
        let mut seen = match self.stamps.try_lock() {
            Ok(seen) => seen,
            Err(std::sync::TryLockError::WouldBlock) => return Ok(false),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        let now = stamps(&self.settings);
        if *seen == now {
            return Ok(false);
        }
        *seen = now;
        let config = build(&self.settings)?;
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(true)
    }
}

fn stamps(settings: &TlsSettings) -> Vec<FileStamp> {
    let mut paths: Vec<&Path> = Vec::new();
    if let KeystoreSource::File(path) = &settings.keystore {
        paths.push(path);
    }
    if let Some(TruststoreSource::File(path)) = &settings.truststore {
        paths.push(path);
    }
    paths
        .into_iter()
        .map(|path| FileStamp {
            path: path.to_owned(),
            seen: fs::metadata(path).ok().and_then(|meta| Some((meta.modified().ok()?, meta.len(), inode(&meta)))),
        })
        .collect()
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &fs::Metadata) -> u64 {
    0
}

/// The keystore's chain and key, with the name errors use for where they came from.
fn keystore(source: &KeystoreSource) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String)> {
    match source {
        KeystoreSource::File(path) => {
            let name = pem::file_source_name("ssl.keystore.location", path);
            let text = pem::read_file("ssl.keystore.location", path)?;
            Ok((pem::certificates(&text, &name)?, pem::private_key(&text, &name)?, name))
        }
        KeystoreSource::Inline { certificate_chain, key } => Ok((
            pem::certificates(certificate_chain, "ssl.keystore.certificate.chain")?,
            pem::private_key(key, "ssl.keystore.key")?,
            "ssl.keystore.certificate.chain and ssl.keystore.key".to_owned(),
        )),
    }
}

/// The truststore's CA certificates as a root store.
pub(super) fn root_store(certificates: &[CertificateDer<'static>], source_name: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate.clone()).map_err(|err| SecurityError::TlsConfig {
            what: "CA certificate",
            source_name: source_name.to_owned(),
            reason: err.to_string(),
        })?;
    }
    Ok(roots)
}

fn truststore(source: &TruststoreSource) -> Result<(RootCertStore, String)> {
    let (text, name) = match source {
        TruststoreSource::File(path) => {
            (pem::read_file("ssl.truststore.location", path)?, pem::file_source_name("ssl.truststore.location", path))
        }
        TruststoreSource::Inline(text) => (text.clone(), "ssl.truststore.certificates".to_owned()),
    };
    let roots = root_store(&pem::certificates(&text, &name)?, &name)?;
    Ok((roots, name))
}

fn build(settings: &TlsSettings) -> Result<Arc<ServerConfig>> {
    let provider = crypto_provider();
    let versions: Vec<_> = settings.protocols.iter().map(|version| version.rustls()).collect();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|err| SecurityError::TlsConfig {
            what: "protocol versions",
            source_name: "ssl.enabled.protocols".to_owned(),
            reason: err.to_string(),
        })?;
    let builder = match (settings.client_auth, &settings.truststore) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (client_auth, None) => {
            return Err(SecurityError::TlsMissingSetting {
                key: format!("ssl.client.auth={}", client_auth.name()),
                missing: "a truststore to verify client certificates with",
            })
        }
        (client_auth, Some(source)) => {
            let (roots, name) = truststore(source)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match client_auth {
                ClientAuth::Requested => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier.build().map_err(|err| SecurityError::TlsConfig {
                what: "truststore",
                source_name: name,
                reason: err.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let (chain, key, name) = keystore(&settings.keystore)?;
    let mut config = builder.with_single_cert(chain, key).map_err(|err| SecurityError::TlsConfig {
        what: "certificate and key",
        source_name: name,
        reason: match err {
            rustls::Error::InconsistentKeys(_) => "the private key does not match the first certificate \
                                                   (the chain must start with the key's own certificate)"
                .to_owned(),
            other => other.to_string(),
        },
    })?;
    // No TLS 1.3 session tickets: Kafka clients do not resume sessions, and kafka-python
    // mistakes the ticket that arrives right after the handshake for a response
    // (kafka-python issue 2369).
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}
