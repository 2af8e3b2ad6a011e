//! Fail closed: a configuration written for a secured Kafka never starts a weaker Gregor.
//!
//! Keys of protections Gregor does not have (a custom principal builder, delegation
//! tokens, Kerberos, OAUTHBEARER, Java policy classes, ...) are refused (at start, through
//! `--set`, and through AlterConfigs) with one sentence naming the key, instead of being
//! ignored with an "unknown config" warning: an operator moving a secured deployment
//! over must notice. The TLS, SASL and authorizer settings Gregor honours are checked
//! where they are used (`listeners`, `sasl`, `authz`), which refuse what they cannot do.

use std::collections::BTreeMap;

use crate::BrokerError;

/// What a refused key asks for, and what would happen if Gregor ignored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Tls,
    Sasl,
    PrincipalBuilder,
    DelegationTokens,
    PasswordEncoder,
    SecurityProviders,
    Policies,
}

impl Missing {
    fn what(self) -> &'static str {
        match self {
            Self::Tls => "TLS",
            Self::Sasl => "SASL authentication",
            Self::PrincipalBuilder => "a custom principal builder",
            Self::DelegationTokens => "delegation tokens",
            Self::PasswordEncoder => "encrypted dynamic passwords",
            Self::SecurityProviders => "Java security providers",
            Self::Policies => "a Java request policy class",
        }
    }

    fn consequence(self) -> &'static str {
        match self {
            Self::Tls => "traffic would travel unencrypted",
            Self::Sasl | Self::DelegationTokens => "clients would connect unauthenticated",
            Self::PrincipalBuilder => "clients would not get the principals it assigns",
            Self::PasswordEncoder => "secrets would not be encrypted",
            Self::SecurityProviders => "the algorithms it provides would be missing",
            Self::Policies => "requests the policy rejects would be accepted",
        }
    }
}

/// How a key is matched: the whole name, or a family by its prefix.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    Exact(&'static str),
    Prefix(&'static str),
}

/// Kafka's keys for authentication, authorization and encryption (docs/configuration.md
/// lists them under "Refused until supported").
const REFUSED: &[(Pattern, Missing)] = &[
    (Pattern::Prefix("ssl."), Missing::Tls),
    (Pattern::Prefix("sasl."), Missing::Sasl),
    (Pattern::Exact("principal.builder.class"), Missing::PrincipalBuilder),
    (Pattern::Prefix("delegation.token."), Missing::DelegationTokens),
    (Pattern::Prefix("password.encoder."), Missing::PasswordEncoder),
    (Pattern::Exact("security.providers"), Missing::SecurityProviders),
    (Pattern::Exact("create.topic.policy.class.name"), Missing::Policies),
    (Pattern::Exact("alter.config.policy.class.name"), Missing::Policies),
];

/// The listener security protocols Gregor implements.
const SUPPORTED_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// What brokers speak to each other: their replica fetchers and forwarding clients do
/// not authenticate yet.
const INTER_BROKER_PROTOCOLS: &[&str] = &["PLAINTEXT"];

/// Kafka's protocols; a listener name mapped to anything else is a configuration error.
const KAFKA_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// Kafka's default `listener.security.protocol.map`.
pub(crate) const DEFAULT_PROTOCOL_MAP: &str =
    "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";

/// The `ssl.` and `sasl.` keys Gregor honours (the TLS settings and the SASL listener
/// setup check their values); the rest of those families is refused. Java-only tuning
/// (`ssl.keymanager.algorithm`...) changes nothing Gregor does and is accepted.
const HONOURED: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.protocol",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
    "ssl.endpoint.identification.algorithm",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.jaas.config",
    "sasl.plain.users.file",
    "sasl.server.max.receive.size",
];

fn missing_for(key: &str) -> Option<Missing> {
    if HONOURED.contains(&key) {
        return None;
    }
    let direct = REFUSED.iter().find_map(|(pattern, missing)| {
        let hit = match pattern {
            Pattern::Exact(name) => key == *name,
            Pattern::Prefix(prefix) => key.starts_with(prefix),
        };
        hit.then_some(*missing)
    });
    direct.or_else(|| {
        // Kafka's per-listener forms: `listener.name.<listener>.<key>` and, for SASL,
        // `listener.name.<listener>.<mechanism>.<key>` (`...sasl_ssl.plain.sasl.jaas.config`).
        let rest = key.strip_prefix("listener.name.")?;
        let (_listener, rest) = rest.split_once('.')?;
        missing_for(rest).or_else(|| rest.split_once('.').and_then(|(_mechanism, rest)| missing_for(rest)))
    })
}

/// Why `key=value` cannot be honoured, as one sentence without a leading verb, or `None`
/// when Gregor can honour it. An empty value means "not set" to Kafka and is accepted.
pub(crate) fn refusal(key: &str, value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return None;
    }
    let missing = missing_for(key)?;
    Some(format!(
        "'{key}' configures {}, which Gregor does not support yet, and {}",
        missing.what(),
        missing.consequence()
    ))
}

/// The first key of `pairs` Gregor must refuse, as the sentence the start fails with.
pub(crate) fn check_keys<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), BrokerError> {
    for (key, value) in pairs {
        if let Some(reason) = refusal(key, value) {
            return Err(refused(reason));
        }
    }
    Ok(())
}

fn refused(reason: String) -> BrokerError {
    BrokerError::InvalidConfig(format!("refusing to start: {reason}"))
}

/// The settings that decide which security protocol each listener speaks.
#[derive(Debug)]
pub(crate) struct ListenerSettings<'a> {
    pub(crate) listeners: &'a str,
    pub(crate) advertised_listeners: Option<&'a str>,
    /// `listener.security.protocol.map` when set explicitly.
    pub(crate) protocol_map: Option<&'a str>,
    pub(crate) controller_listener_names: Option<&'a str>,
    pub(crate) inter_broker_listener_name: Option<&'a str>,
    pub(crate) security_inter_broker_protocol: Option<&'a str>,
}

/// Every listener (and the inter-broker protocol) must resolve to a protocol Gregor
/// implements: `SASL_SSL://:9094`, or `EXTERNAL://:9094` with `EXTERNAL:SSL` in the map,
/// is refused rather than served as plaintext.
pub(crate) fn check_listeners(settings: &ListenerSettings<'_>) -> Result<(), BrokerError> {
    let map = protocol_map(settings)?;
    let entries =
        settings.listeners.split(',').chain(settings.advertised_listeners.into_iter().flat_map(|a| a.split(',')));
    for entry in entries.map(str::trim).filter(|e| !e.is_empty()) {
        // A bare `host:port` is PLAINTEXT (Gregor's `--listen` form).
        let Some((name, _address)) = entry.split_once("://") else { continue };
        let name = name.to_ascii_uppercase();
        let protocol = map.get(&name).ok_or_else(|| {
            refused(format!(
                "listener '{entry}' names '{name}', which 'listener.security.protocol.map' does not map to a security protocol"
            ))
        })?;
        if !SUPPORTED_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(refused(format!(
                "listener '{entry}' uses security protocol {protocol}, which Gregor does not support yet (only {}), and {}",
                SUPPORTED_PROTOCOLS.join(", "),
                protocol_consequence(protocol)
            )));
        }
    }
    // Both keys are checked: a secured protocol named by either is refused, and a listener
    // name with no known protocol cannot be vouched for.
    let mut inter_broker = Vec::new();
    if let Some(name) = settings.inter_broker_listener_name.map(str::trim).filter(|n| !n.is_empty()) {
        let name = name.to_ascii_uppercase();
        let protocol =
            map.get(&name).cloned().or_else(|| KAFKA_PROTOCOLS.contains(&name.as_str()).then(|| name.clone()));
        let Some(protocol) = protocol else {
            return Err(refused(format!(
                "'inter.broker.listener.name={name}' names no listener of 'listener.security.protocol.map', so its security protocol is unknown"
            )));
        };
        inter_broker.push(("inter.broker.listener.name", protocol));
    }
    if let Some(protocol) = settings.security_inter_broker_protocol.map(str::trim).filter(|p| !p.is_empty()) {
        inter_broker.push(("security.inter.broker.protocol", protocol.to_ascii_uppercase()));
    }
    for (key, protocol) in inter_broker {
        if !INTER_BROKER_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(refused(format!(
                "'{key}' asks for security protocol {protocol} between brokers, which Gregor does not support yet (only PLAINTEXT), and {}",
                protocol_consequence(&protocol)
            )));
        }
    }
    Ok(())
}

fn protocol_consequence(protocol: &str) -> &'static str {
    match protocol {
        "SSL" => Missing::Tls.consequence(),
        "SASL_PLAINTEXT" => Missing::Sasl.consequence(),
        _ => "traffic would travel unencrypted and clients would connect unauthenticated",
    }
}

/// Listener name to protocol, upper-cased. As in Kafka, the controller listeners default
/// to PLAINTEXT when the map is not set explicitly.
fn protocol_map(settings: &ListenerSettings<'_>) -> Result<BTreeMap<String, String>, BrokerError> {
    let text = settings.protocol_map.unwrap_or(DEFAULT_PROTOCOL_MAP);
    let mut map = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, protocol)) = pair.split_once(':') else {
            return Err(BrokerError::InvalidConfig(format!(
                "invalid value '{text}' for 'listener.security.protocol.map': expected NAME:PROTOCOL pairs"
            )));
        };
        let protocol = protocol.trim().to_ascii_uppercase();
        if !KAFKA_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(BrokerError::InvalidConfig(format!(
                "invalid value '{text}' for 'listener.security.protocol.map': '{protocol}' is not a security protocol (expected one of {})",
                KAFKA_PROTOCOLS.join(", ")
            )));
        }
        let _ = map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    if settings.protocol_map.is_none() {
        for name in settings.controller_listener_names.unwrap_or_default().split(',').map(str::trim) {
            if !name.is_empty() {
                let _ = map.entry(name.to_ascii_uppercase()).or_insert_with(|| "PLAINTEXT".to_owned());
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listeners(listeners: &str) -> ListenerSettings<'_> {
        ListenerSettings {
            listeners,
            advertised_listeners: None,
            protocol_map: None,
            controller_listener_names: None,
            inter_broker_listener_name: None,
            security_inter_broker_protocol: None,
        }
    }

    #[test]
    fn given_security_keys_should_refuse_them_with_the_key_named() {
        for key in [
            "ssl.engine.factory.class",
            "ssl.provider",
            "sasl.kerberos.service.name",
            "sasl.server.callback.handler.class",
            "sasl.oauthbearer.jwks.endpoint.url",
            "principal.builder.class",
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class",
            "listener.name.external.ssl.engine.factory.class",
            "listener.name.internal.principal.builder.class",
            "delegation.token.secret.key",
        ] {
            let reason = refusal(key, "x").unwrap_or_else(|| panic!("{key} accepted"));
            assert!(reason.contains(&format!("'{key}'")), "{reason}");
        }
    }

    #[test]
    fn given_the_honoured_tls_and_sasl_keys_should_accept_them() {
        for key in [
            "ssl.keystore.location",
            "ssl.client.auth",
            "sasl.enabled.mechanisms",
            "sasl.jaas.config",
            "listener.name.sasl_ssl.plain.sasl.jaas.config",
            "listener.name.external.ssl.keystore.location",
            "listener.name.internal.sasl.enabled.mechanisms",
            "connections.max.reauth.ms",
        ] {
            assert_eq!(refusal(key, "x"), None, "{key}");
        }
    }

    #[test]
    fn given_tuning_keys_or_empty_values_should_accept_them() {
        for key in ["num.partitions", "listener.name.internal.max.connections", "listeners", "zookeeper.connect"] {
            assert_eq!(refusal(key, "1"), None, "{key}");
        }
        assert_eq!(refusal("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"), None);
        assert_eq!(refusal("super.users", "User:admin"), None);
        let sentence =
            check_keys([("num.partitions", "3"), ("principal.builder.class", "x.Y")]).unwrap_err().to_string();
        assert!(sentence.starts_with("refusing to start: 'principal.builder.class' configures"), "{sentence}");
    }

    #[test]
    fn given_listeners_should_serve_every_kafka_protocol() {
        for text in [
            "PLAINTEXT://127.0.0.1:9092",
            "127.0.0.1:9092",
            "PLAINTEXT://:9092,SASL_PLAINTEXT://127.0.0.1:9093",
            "PLAINTEXT://:9092,SSL://:9093,SASL_SSL://:9094",
        ] {
            assert!(check_listeners(&listeners(text)).is_ok(), "{text}");
        }
    }

    #[test]
    fn given_a_protocol_map_should_resolve_listener_names_through_it() {
        let mut mapped = listeners("EXTERNAL://:9094,INTERNAL://:9092");
        mapped.protocol_map = Some("INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL");
        assert!(check_listeners(&mapped).is_ok());
        mapped.protocol_map = Some("INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT");
        assert!(check_listeners(&mapped).is_ok());
        mapped.protocol_map = Some("INTERNAL:PLAINTEXT");
        assert!(check_listeners(&mapped).unwrap_err().to_string().contains("does not map"));
        mapped.protocol_map = Some("INTERNAL:TLS");
        assert!(check_listeners(&mapped).unwrap_err().to_string().contains("'TLS' is not a security protocol"));
    }

    #[test]
    fn given_a_controller_listener_should_default_it_to_plaintext() {
        let mut kraft = listeners("PLAINTEXT://:9092,CONTROLLER://:9093");
        assert!(check_listeners(&kraft).is_err());
        kraft.controller_listener_names = Some("CONTROLLER");
        assert!(check_listeners(&kraft).is_ok());
    }

    #[test]
    fn given_a_secured_inter_broker_protocol_should_refuse_it() {
        let mut settings = listeners("PLAINTEXT://:9092");
        settings.security_inter_broker_protocol = Some("SSL");
        assert!(check_listeners(&settings).unwrap_err().to_string().contains("'security.inter.broker.protocol'"));
        settings.protocol_map = Some("PLAINTEXT:PLAINTEXT,REPLICATION:SASL_SSL");
        settings.inter_broker_listener_name = Some("REPLICATION");
        assert!(check_listeners(&settings).unwrap_err().to_string().contains("'inter.broker.listener.name'"));
        settings.inter_broker_listener_name = Some("PLAINTEXT");
        assert!(check_listeners(&settings).is_err(), "a secured security.inter.broker.protocol beside it");
        settings.security_inter_broker_protocol = None;
        assert!(check_listeners(&settings).is_ok());
        settings.inter_broker_listener_name = Some("UNMAPPED");
        settings.security_inter_broker_protocol = Some("SSL");
        assert!(check_listeners(&settings).unwrap_err().to_string().contains("names no listener"));
    }
}
