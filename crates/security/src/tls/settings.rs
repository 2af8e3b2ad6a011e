//! [`TlsSettings`]: a listener's TLS settings out of Kafka's `ssl.*` keys, checked, with
//! every key Gregor cannot honour refused by a sentence that says what to do instead.

use std::path::PathBuf;

use super::{ClientAuth, KeystoreSource, TlsVersion, TruststoreSource};
use crate::error::{Result, SecurityError};

const KEYSTORE_TYPE: &str = "ssl.keystore.type";
const KEYSTORE_LOCATION: &str = "ssl.keystore.location";
const KEYSTORE_CHAIN: &str = "ssl.keystore.certificate.chain";
const KEYSTORE_KEY: &str = "ssl.keystore.key";
const KEYSTORE_PASSWORD: &str = "ssl.keystore.password";
const KEY_PASSWORD: &str = "ssl.key.password";
const TRUSTSTORE_TYPE: &str = "ssl.truststore.type";
const TRUSTSTORE_LOCATION: &str = "ssl.truststore.location";
const TRUSTSTORE_CERTIFICATES: &str = "ssl.truststore.certificates";
const TRUSTSTORE_PASSWORD: &str = "ssl.truststore.password";
const CLIENT_AUTH: &str = "ssl.client.auth";
const ENABLED_PROTOCOLS: &str = "ssl.enabled.protocols";
const PROTOCOL: &str = "ssl.protocol";
const CIPHER_SUITES: &str = "ssl.cipher.suites";
const PRINCIPAL_MAPPING_RULES: &str = "ssl.principal.mapping.rules";

/// A listener's TLS settings: plain data, checked by [`TlsSettings::from_config`]; the files
/// are read by [`super::ServerTls::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The private key and certificate chain the listener presents.
    pub keystore: KeystoreSource,
    /// The CA certificates client certificates are verified against; needed unless
    /// `client_auth` is [`ClientAuth::None`] (and unused then).
    pub truststore: Option<TruststoreSource>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`, without duplicates, oldest first; never empty.
    pub protocols: Vec<TlsVersion>,
}

impl TlsSettings {
    /// Settings presenting `keystore`, without client certificates, TLS 1.2 and 1.3.
    pub fn new(keystore: KeystoreSource) -> Self {
        Self { keystore, truststore: None, client_auth: ClientAuth::None, protocols: TlsVersion::ALL.to_vec() }
    }

    /// Reads Kafka's `ssl.*` keys through `get`, which the broker points at a listener
    /// (applying the `listener.name.<name>.` prefix). `Ok(None)` when no keystore is
    /// configured (none of `ssl.keystore.location`, `ssl.keystore.certificate.chain`,
    /// `ssl.keystore.key`): the listener has no TLS settings, and whether that is an error is
    /// the caller's to say. Empty values count as unset, as Kafka's blank defaults.
    ///
    /// `ssl.keystore.type` and `ssl.truststore.type` unset mean PEM (Kafka's default is JKS);
    /// `ssl.protocol` is only checked (TLS, TLSv1.2 or TLSv1.3: on a server it picks nothing,
    /// `ssl.enabled.protocols` does). Client-side keys (`ssl.endpoint.identification.algorithm`)
    /// are not read.
    ///
    /// Refused: a store type other than PEM (`ssl.keystore.type`, `ssl.truststore.type`), a
    /// key password (encrypted keys), store passwords (Kafka refuses them for PEM too),
    /// `ssl.cipher.suites`, `ssl.principal.mapping.rules` other than `DEFAULT`, versions other
    /// than TLSv1.2 and TLSv1.3, a store given both as a file and inline, and
    /// `ssl.client.auth=required|requested` without a truststore.
    pub fn from_config(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let value = |key: &str| get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let location = value(KEYSTORE_LOCATION);
        let chain = value(KEYSTORE_CHAIN);
        let key = value(KEYSTORE_KEY);
        if location.is_none() && chain.is_none() && key.is_none() {
            return Ok(None);
        }
        check_store_type(KEYSTORE_TYPE, value(KEYSTORE_TYPE))?;
        check_store_type(TRUSTSTORE_TYPE, value(TRUSTSTORE_TYPE))?;
        if value(KEY_PASSWORD).is_some() {
            return Err(SecurityError::TlsKeyPassword);
        }
        for key in [KEYSTORE_PASSWORD, TRUSTSTORE_PASSWORD] {
            if value(key).is_some() {
                return Err(SecurityError::TlsStorePassword { key });
            }
        }
        if value(CIPHER_SUITES).is_some() {
            return Err(SecurityError::TlsCipherSuites);
        }
        if let Some(rules) = value(PRINCIPAL_MAPPING_RULES) {
            if rules != "DEFAULT" {
                return Err(SecurityError::TlsPrincipalMappingRules { rules });
            }
        }
        if let Some(protocol) = value(PROTOCOL) {
            if !["TLS", "TLSv1.2", "TLSv1.3"].iter().any(|p| p.eq_ignore_ascii_case(&protocol)) {
                return Err(SecurityError::TlsInvalidValue {
                    key: PROTOCOL,
                    value: protocol,
                    expected: "TLS, TLSv1.2 or TLSv1.3",
                });
            }
        }

        let keystore = keystore(location, chain, key)?;
        let truststore = truststore(value(TRUSTSTORE_LOCATION), value(TRUSTSTORE_CERTIFICATES))?;
        let client_auth = match value(CLIENT_AUTH) {
            None => ClientAuth::None,
            Some(name) => ClientAuth::from_name(&name).ok_or(SecurityError::TlsInvalidValue {
                key: CLIENT_AUTH,
                value: name,
                expected: "required, requested or none",
            })?,
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(SecurityError::TlsMissingSetting {
                key: format!("{CLIENT_AUTH}={}", client_auth.name()),
                missing: "a truststore to verify client certificates with: set ssl.truststore.location \
                          (a PEM file of CA certificates) or ssl.truststore.certificates",
            });
        }
        let protocols = match value(ENABLED_PROTOCOLS) {
            None => TlsVersion::ALL.to_vec(),
            Some(list) => protocols(&list)?,
        };
        Ok(Some(Self { keystore, truststore, client_auth, protocols }))
    }
}

fn check_store_type(key: &'static str, value: Option<String>) -> Result<()> {
    match value {
        Some(store_type) if !store_type.eq_ignore_ascii_case("PEM") => {
            Err(SecurityError::TlsStoreType { key, value: store_type })
        }
        _ => Ok(()),
    }
}

fn keystore(location: Option<String>, chain: Option<String>, key: Option<String>) -> Result<KeystoreSource> {
    match (location, chain, key) {
        (Some(_), Some(_), _) => {
            Err(SecurityError::TlsConflictingSettings { file_key: KEYSTORE_LOCATION, inline_key: KEYSTORE_CHAIN })
        }
        (Some(_), None, Some(_)) => {
            Err(SecurityError::TlsConflictingSettings { file_key: KEYSTORE_LOCATION, inline_key: KEYSTORE_KEY })
        }
        (Some(location), None, None) => Ok(KeystoreSource::File(PathBuf::from(location))),
        (None, Some(certificate_chain), Some(key)) => Ok(KeystoreSource::Inline { certificate_chain, key }),
        (None, Some(_), None) => Err(SecurityError::TlsMissingSetting {
            key: KEYSTORE_CHAIN.to_owned(),
            missing: "ssl.keystore.key (the certificate chain's unencrypted private key, PEM)",
        }),
        (None, None, _) => Err(SecurityError::TlsMissingSetting {
            key: KEYSTORE_KEY.to_owned(),
            missing: "ssl.keystore.certificate.chain (the key's certificate chain, PEM, leaf first)",
        }),
    }
}

fn truststore(location: Option<String>, certificates: Option<String>) -> Result<Option<TruststoreSource>> {
    match (location, certificates) {
        (Some(_), Some(_)) => Err(SecurityError::TlsConflictingSettings {
            file_key: TRUSTSTORE_LOCATION,
            inline_key: TRUSTSTORE_CERTIFICATES,
        }),
        (Some(location), None) => Ok(Some(TruststoreSource::File(PathBuf::from(location)))),
        (None, Some(certificates)) => Ok(Some(TruststoreSource::Inline(certificates))),
        (None, None) => Ok(None),
    }
}

/// `ssl.enabled.protocols`: a comma-separated list of TLSv1.2 and TLSv1.3.
fn protocols(list: &str) -> Result<Vec<TlsVersion>> {
    let mut protocols = Vec::new();
    for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let version = TlsVersion::from_name(name).ok_or_else(|| SecurityError::TlsInvalidValue {
            key: ENABLED_PROTOCOLS,
            value: name.to_owned(),
            expected: "TLSv1.2 and/or TLSv1.3 (older versions are not served)",
        })?;
        if !protocols.contains(&version) {
            protocols.push(version);
        }
    }
    if protocols.is_empty() {
        return Ok(TlsVersion::ALL.to_vec());
    }
    protocols.sort();
    Ok(protocols)
}
