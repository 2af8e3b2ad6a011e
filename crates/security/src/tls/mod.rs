//! TLS for `SSL` and `SASL_SSL` listeners, with rustls on ring (no OpenSSL). Blocking file
//! reads only, no async: the broker wraps [`ServerTls::config`] in its own TLS acceptor.
//!
//! ```text
//!  server.properties (listener.name.<l>. prefix applied by the broker)
//!        │
//!        ▼
//!  TlsSettings::from_config(get) ──► Option<TlsSettings>      (plain data, checked)
//!        │
//!        ▼
//!  ServerTls::load(&settings) ──► config() ──► Arc<rustls::ServerConfig> per accept
//!        └── reload_if_changed(): stat the PEM files, rebuild when they changed
//!
//!  handshake done ─► peer certificate ─► principal_from_certificate(der)
//!                                        "CN=alice,OU=eng,O=Example,C=US" (the broker adds "User:")
//!
//!  client_config(truststore, identity, verify_hostname) ─► Arc<rustls::ClientConfig>
//! ```
//!
//! Stores are PEM, as Kafka's `ssl.keystore.type=PEM`: a keystore is one private key
//! (PKCS#8, PKCS#1 or SEC1, unencrypted) and its certificate chain, leaf first; a truststore
//! is one or more CA certificates. Inline values may arrive on one line, as a
//! `server.properties` continuation makes them; see [`pem`].

mod client;
pub mod pem;
mod principal;
mod server;
mod settings;

#[cfg(test)]
mod tests;

pub use client::client_config;
pub use principal::principal_from_certificate;
pub use server::ServerTls;
pub use settings::TlsSettings;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// `ssl.client.auth`: whether the server asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientAuth {
    /// `required`: a client without a certificate the truststore vouches for is refused.
    Required,
    /// `requested`: a certificate is asked for; a client without one connects anonymously,
    /// one with a certificate the truststore does not vouch for is refused.
    Requested,
    /// `none` (Kafka's default): no certificate is asked for.
    #[default]
    None,
}

impl ClientAuth {
    /// The value of `ssl.client.auth`, case-insensitive as Kafka reads it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "required" => Some(Self::Required),
            "requested" => Some(Self::Requested),
            "none" => Some(Self::None),
            _ => Option::None,
        }
    }

    /// The name as `ssl.client.auth` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Requested => "requested",
            Self::None => "none",
        }
    }
}

/// A TLS version of `ssl.enabled.protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

impl TlsVersion {
    /// Both, as Kafka's default `ssl.enabled.protocols=TLSv1.2,TLSv1.3`.
    pub const ALL: [TlsVersion; 2] = [Self::Tls12, Self::Tls13];

    /// The version a `ssl.enabled.protocols` entry names (`TLSv1.2`, `TLSv1.3`; case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "tlsv1.2" => Some(Self::Tls12),
            "tlsv1.3" => Some(Self::Tls13),
            _ => None,
        }
    }

    /// The name as Java spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tls12 => "TLSv1.2",
            Self::Tls13 => "TLSv1.3",
        }
    }

    fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            Self::Tls12 => &rustls::version::TLS12,
            Self::Tls13 => &rustls::version::TLS13,
        }
    }
}

/// Where the keystore is: one PEM file holding the private key and the certificate chain
/// (`ssl.keystore.location`), or the two inline (`ssl.keystore.certificate.chain` and
/// `ssl.keystore.key`). `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub enum KeystoreSource {
    /// `ssl.keystore.location`.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key`.
    Inline {
        /// The certificates, leaf first.
        certificate_chain: String,
        /// The unencrypted private key.
        key: String,
    },
}

impl fmt::Debug for KeystoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Inline { certificate_chain, .. } => f
                .debug_struct("Inline")
                .field("certificate_chain", certificate_chain)
                .field("key", &"<redacted>")
                .finish(),
        }
    }
}

/// Where the truststore (the CA certificates client certificates must chain to) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TruststoreSource {
    /// `ssl.truststore.location`.
    File(PathBuf),
    /// `ssl.truststore.certificates`.
    Inline(String),
}

/// The crypto provider every config of this module is built with: ring, named explicitly so
/// that another provider compiled into the binary (aws-lc-rs through a dependency's default
/// features) cannot make rustls' process-wide default ambiguous. rustls 0.23.48 deprecates
/// ring's provider for lacking post-quantum key exchange; aws-lc-rs, which has it, needs
/// cmake and a C toolchain to build, so ring stays until that is worth it.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
