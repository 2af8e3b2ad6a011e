//! Gregor's SASL mechanisms as pure code: no I/O, no async, no clock and no randomness of
//! their own (the caller passes nonces). The broker's connection code drives them from
//! SaslHandshake (17) and SaslAuthenticate (36), and answers a failure with
//! [`SecurityError::kafka_code`].
//!
//! ```text
//!  server.properties ─► jaas::parse ─► plain::PlainUsers ─┐
//!                                                        ▼
//!  SaslHandshake ──► SaslMechanism::from_name ─┬─► plain::authenticate(msg, users) ─► user
//!                                              │
//!                                              └─► ScramServer::new(mech, nonce)
//!  SaslAuthenticate #1 ─► client_first(msg, lookup) ─► server-first
//!  SaslAuthenticate #2 ─► client_final(msg)         ─► server-final, user
//!
//!  credentials: ScramCredential::{from_password, from_salted_password}
//!               ⇄ "salt=..,stored_key=..,server_key=..,iterations=N" (metadata records)
//! ```
//!
//! [`scram::ScramClient`] is the other side, for the inter-broker client, the CLI and tests.
//!
//! [`tls`] holds the TLS side of `SSL` and `SASL_SSL` listeners (rustls): Kafka's `ssl.*`
//! settings, server and client configs with certificate reload, and the client certificate's
//! principal. It is the one module that does I/O: it reads the PEM files of the keystore and
//! truststore (blocking, at load and reload; still no async). With the cargo feature `testing`,
//! `testing::TestPki` makes a throwaway CA and certificates for other crates' tests.
//!
//! [`authorizer`] is Kafka's StandardAuthorizer as pure code: ACL bindings and filters, and
//! the allow/deny decisions over them.
#![forbid(unsafe_code)]

pub mod authorizer;
pub mod error;
pub mod jaas;
pub mod plain;
pub mod scram;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;

pub use authorizer::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, Authorizer, Decision, PatternType, ResourceType,
};
pub use error::{Result, SecurityError};
pub use jaas::{plain_users, ControlFlag, JaasConfig};
pub use plain::{PlainPassword, PlainUsers};
pub use scram::{nonce_from_bytes, ScramClient, ScramCredential, ScramMechanism, ScramServer};
pub use tls::{client_config, principal_from_certificate, ClientAuth, ServerTls, TlsSettings, TlsVersion};

/// A SASL mechanism Gregor can serve, by its SaslHandshake name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    Scram(ScramMechanism),
}

impl SaslMechanism {
    /// Every mechanism, in the order a handshake lists them.
    pub const ALL: [SaslMechanism; 3] =
        [Self::Plain, Self::Scram(ScramMechanism::ScramSha256), Self::Scram(ScramMechanism::ScramSha512)];

    /// The mechanism a SaslHandshake names (exact, case-sensitive, as Kafka compares).
    pub fn from_name(name: &str) -> Result<Self> {
        if name == "PLAIN" {
            return Ok(Self::Plain);
        }
        ScramMechanism::from_name(name)
            .map(Self::Scram)
            .ok_or_else(|| SecurityError::UnsupportedMechanism { mechanism: name.to_owned() })
    }

    /// The name as SaslHandshake and `sasl.enabled.mechanisms` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(mechanism) => mechanism.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_handshake_names_when_parsed_should_know_only_served_mechanisms() {
        for mechanism in SaslMechanism::ALL {
            assert_eq!(SaslMechanism::from_name(mechanism.name()), Ok(mechanism));
        }
        let err = SaslMechanism::from_name("GSSAPI").unwrap_err();
        assert_eq!(err.kafka_code(), 33);
        assert_eq!(err.to_string(), "Unsupported SASL mechanism GSSAPI");
        assert!(SaslMechanism::from_name("plain").is_err());
    }
}
