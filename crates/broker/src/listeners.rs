//! Kafka's listeners: `listeners=PLAINTEXT://:9092,SSL://:9093`, each name mapped to a
//! security protocol by `listener.security.protocol.map`, advertised as
//! `advertised.listeners` says for the same name. A client is told the endpoints of the
//! listener it connected on; brokers reach each other on `inter.broker.listener.name`
//! (by default the listener named after `security.inter.broker.protocol`, PLAINTEXT).

use std::collections::BTreeMap;

use gregor_metadata::BrokerEndpoint;

use crate::config::fail_closed::DEFAULT_PROTOCOL_MAP;
use crate::{BrokerConfig, BrokerError};

/// Kafka's `SecurityProtocol`, with its ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Self::Plaintext,
            "SSL" => Self::Ssl,
            "SASL_PLAINTEXT" => Self::SaslPlaintext,
            "SASL_SSL" => Self::SaslSsl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    pub fn id(self) -> i16 {
        match self {
            Self::Plaintext => 0,
            Self::Ssl => 1,
            Self::SaslPlaintext => 2,
            Self::SaslSsl => 3,
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// One client listener: what to bind, and what to advertise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Upper-case, as Kafka compares listener names.
    pub name: String,
    pub protocol: SecurityProtocol,
    /// `host:port` to bind (`:9092` binds every address).
    pub bind: String,
    /// `advertised.listeners`' entry of the same name, if any.
    pub advertised: Option<String>,
}

/// `listener.security.protocol.map`, names upper-cased; the controller listeners default
/// to PLAINTEXT when the map is not set (as Kafka does).
pub(crate) fn protocol_map(config: &BrokerConfig) -> Result<BTreeMap<String, SecurityProtocol>, BrokerError> {
    let explicit = config.broker_value("listener.security.protocol.map").value;
    let text = explicit.clone().unwrap_or_else(|| DEFAULT_PROTOCOL_MAP.to_owned());
    let mut map = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, protocol) =
            pair.split_once(':').and_then(|(n, p)| Some((n, SecurityProtocol::parse(p)?))).ok_or_else(|| {
                BrokerError::InvalidConfig(format!("'listener.security.protocol.map' has a bad entry '{pair}'"))
            })?;
        let _ = map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    for name in controller_names(config) {
        let _ = map.entry(name).or_insert(SecurityProtocol::Plaintext);
    }
    Ok(map)
}

fn controller_names(config: &BrokerConfig) -> Vec<String> {
    let names = config.broker_str("controller.listener.names");
    names.split(',').map(|n| n.trim().to_ascii_uppercase()).filter(|n| !n.is_empty()).collect()
}

/// `NAME://host:port` split into the name and the address; a bare `host:port` (Gregor's
/// `--listen` form) is named PLAINTEXT.
fn split_entry(entry: &str) -> (String, String) {
    match entry.split_once("://") {
        Some((name, addr)) => (name.trim().to_ascii_uppercase(), addr.trim().to_owned()),
        None => ("PLAINTEXT".to_owned(), entry.trim().to_owned()),
    }
}

fn entries(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.split(',').map(str::trim).filter(|e| !e.is_empty()).map(split_entry)
}

/// The listeners clients connect to (every listener but the controller ones), in the
/// order configured.
pub fn client_listeners(config: &BrokerConfig) -> Result<Vec<ListenerSpec>, BrokerError> {
    let map = protocol_map(config)?;
    let controllers = controller_names(config);
    let advertised: BTreeMap<String, String> =
        config.broker_value("advertised.listeners").value.as_deref().map(|a| entries(a).collect()).unwrap_or_default();
    let listeners = config.broker_str("listeners");
    let mut out: Vec<ListenerSpec> = Vec::new();
    for (name, bind) in entries(&listeners).filter(|(name, _)| !controllers.contains(name)) {
        let protocol = *map.get(&name).ok_or_else(|| {
            BrokerError::InvalidConfig(format!(
                "listener '{name}://{bind}' is not in 'listener.security.protocol.map', so its security protocol is unknown"
            ))
        })?;
        if out.iter().any(|l| l.name == name) {
            return Err(BrokerError::InvalidConfig(format!("'listeners' names '{name}' twice: names must be unique")));
        }
        let advertised = advertised.get(&name).cloned();
        out.push(ListenerSpec { name, protocol, bind, advertised });
    }
    if out.is_empty() {
        return Err(BrokerError::InvalidConfig(format!("'listeners' has no listener for clients: '{listeners}'")));
    }
    // Kafka: advertised listener names must be a subset of the listeners.
    if let Some(stray) =
        advertised.keys().find(|name| !out.iter().any(|l| &l.name == *name) && !controllers.contains(name))
    {
        return Err(BrokerError::InvalidConfig(format!(
            "'advertised.listeners' names '{stray}', which is not one of 'listeners': every advertised listener must be a listener"
        )));
    }
    Ok(out)
}

/// The listener other brokers connect to: `inter.broker.listener.name`, else the one
/// named after `security.inter.broker.protocol`, else (one listener only) that one.
pub fn inter_broker_listener(config: &BrokerConfig, listeners: &[ListenerSpec]) -> Result<usize, BrokerError> {
    let named = config.broker_value("inter.broker.listener.name").value.filter(|n| !n.trim().is_empty());
    let wanted = named.clone().unwrap_or_else(|| config.broker_str("security.inter.broker.protocol"));
    let wanted = wanted.trim().to_ascii_uppercase();
    if let Some(at) = listeners.iter().position(|l| l.name == wanted) {
        return Ok(at);
    }
    if named.is_none() && listeners.len() == 1 {
        return Ok(0);
    }
    Err(BrokerError::InvalidConfig(format!(
        "the inter-broker listener '{wanted}' is not one of 'listeners' ({}): set 'inter.broker.listener.name'",
        listeners.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
    )))
}

/// `host:port` split, a wildcard or empty host advertised as `localhost`, port 0 as the
/// port actually bound.
pub(crate) fn advertised_endpoint(spec: &ListenerSpec, bound_port: u16) -> Result<BrokerEndpoint, BrokerError> {
    let addr = spec.advertised.as_deref().unwrap_or(&spec.bind);
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| BrokerError::InvalidConfig(format!("listener address '{addr}' has no port")))?;
    let port: u16 =
        port.parse().map_err(|_| BrokerError::InvalidConfig(format!("listener address '{addr}' has a bad port")))?;
    let port = if port == 0 || spec.advertised.is_none() { bound_port } else { port };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() || host == "0.0.0.0" || host == "::" { "localhost" } else { host };
    Ok(BrokerEndpoint {
        name: spec.name.clone(),
        host: host.to_owned(),
        port: i32::from(port),
        security_protocol: spec.protocol.id(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BrokerConfig {
        BrokerConfig::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn given_named_listeners_should_resolve_protocols_and_advertised_addresses() {
        let c = config(&[
            ("listeners", "PLAINTEXT://127.0.0.1:0,EXTERNAL://:9093,CONTROLLER://:9094"),
            ("advertised.listeners", "EXTERNAL://broker.example:19093"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("controller.listener.names", "CONTROLLER"),
        ]);
        let listeners = client_listeners(&c).unwrap();
        assert_eq!(listeners.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["PLAINTEXT", "EXTERNAL"]);
        let external = advertised_endpoint(&listeners[1], 9093).unwrap();
        assert_eq!((external.host.as_str(), external.port), ("broker.example", 19093));
        let internal = advertised_endpoint(&listeners[0], 40000).unwrap();
        assert_eq!((internal.host.as_str(), internal.port), ("127.0.0.1", 40000));
        assert_eq!(inter_broker_listener(&c, &listeners).unwrap(), 0);
    }

    #[test]
    fn given_a_bare_address_should_name_it_plaintext() {
        let c = config(&[("listeners", "127.0.0.1:9092")]);
        let listeners = client_listeners(&c).unwrap();
        assert_eq!(listeners[0].name, "PLAINTEXT");
        assert_eq!(listeners[0].protocol, SecurityProtocol::Plaintext);
    }

    #[test]
    fn given_no_inter_broker_listener_should_say_which_to_set() {
        let c = config(&[
            ("listeners", "A://:9092,B://:9093"),
            ("listener.security.protocol.map", "A:PLAINTEXT,B:PLAINTEXT"),
        ]);
        let listeners = client_listeners(&c).unwrap();
        let err = inter_broker_listener(&c, &listeners).unwrap_err().to_string();
        assert!(err.contains("inter.broker.listener.name"), "{err}");
    }
}
