//! TLS and SASL for Gregor's own client (the `gregor` CLI with `--command-config`), from
//! the keys a Kafka client's properties file carries: `security.protocol`,
//! `sasl.mechanism`, `sasl.jaas.config` (or librdkafka's `sasl.username` and
//! `sasl.password`), `ssl.truststore.location` / `ssl.ca.location` (PEM),
//! `ssl.keystore.location` (PEM key and chain) or `ssl.certificate.location` +
//! `ssl.key.location`, and `ssl.endpoint.identification.algorithm` (empty: no host name
//! check).

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_security::{SaslMechanism, ScramClient};
use rand::RngCore;

use crate::error::{ClientError, Result};

/// How a connection protects itself; the default is PLAINTEXT.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslLogin>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity").field("tls", &self.tls.is_some()).field("sasl", &self.sasl).finish()
    }
}

/// A SASL login.
#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a password in a log line.
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism.name())
            .field("username", &self.username)
            .finish()
    }
}

fn config_error(message: impl Into<String>) -> ClientError {
    ClientError::Other(message.into())
}

impl ClientSecurity {
    /// From a Kafka client's properties.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self> {
        let get = |k: &str| props.get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let protocol = get("security.protocol").unwrap_or_else(|| "PLAINTEXT".into()).to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => return Err(config_error(format!("security.protocol '{other}' is not a Kafka security protocol"))),
        };
        Ok(Self {
            tls: if tls { Some(tls_config(&get, verify_hostname(props))?) } else { None },
            sasl: if sasl { Some(sasl_login(&get)?) } else { None },
        })
    }
}

fn read(key: &str, path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| config_error(format!("cannot read {key} {path}: {e}")))
}

fn tls_config(get: &dyn Fn(&str) -> Option<String>, verify: bool) -> Result<Arc<rustls::ClientConfig>> {
    let truststore = match (get("ssl.truststore.location"), get("ssl.ca.location")) {
        (Some(path), _) => read("ssl.truststore.location", &path)?,
        (None, Some(path)) => read("ssl.ca.location", &path)?,
        (None, None) => {
            return Err(config_error("TLS needs the broker's CA: set ssl.truststore.location (PEM) or ssl.ca.location"))
        }
    };
    let identity = match (get("ssl.keystore.location"), get("ssl.certificate.location"), get("ssl.key.location")) {
        (Some(path), _, _) => {
            let pem = read("ssl.keystore.location", &path)?;
            Some((pem.clone(), pem))
        }
        (None, Some(cert), Some(key)) => {
            Some((read("ssl.certificate.location", &cert)?, read("ssl.key.location", &key)?))
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(config_error("give both ssl.certificate.location and ssl.key.location"))
        }
        (None, None, None) => None,
    };
    gregor_security::client_config(&truststore, identity.as_ref().map(|(c, k)| (c.as_str(), k.as_str())), verify)
        .map_err(|e| config_error(e.to_string()))
}

/// `ssl.endpoint.identification.algorithm`: Kafka's default `https` checks the broker's
/// host name against its certificate; an empty value (set, but empty) turns that off.
fn verify_hostname(props: &BTreeMap<String, String>) -> bool {
    props.get("ssl.endpoint.identification.algorithm").is_none_or(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn sasl_login(get: &dyn Fn(&str) -> Option<String>) -> Result<SaslLogin> {
    let name = get("sasl.mechanism").unwrap_or_else(|| "GSSAPI".into());
    let mechanism = SaslMechanism::from_name(&name.to_ascii_uppercase()).map_err(|_| {
        config_error(format!("sasl.mechanism {name} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"))
    })?;
    let (username, password) = match get("sasl.jaas.config") {
        Some(text) => {
            let jaas =
                gregor_security::jaas::parse(&text).map_err(|e| config_error(format!("sasl.jaas.config: {e}")))?;
            let option = |k: &str| jaas.option(k).map(str::to_owned);
            (option("username"), option("password"))
        }
        None => (get("sasl.username"), get("sasl.password")),
    };
    match (username, password) {
        (Some(username), Some(password)) => Ok(SaslLogin { mechanism, username, password }),
        _ => Err(config_error(
            "SASL needs a user: sasl.jaas.config with username and password, or sasl.username and sasl.password",
        )),
    }
}

/// The messages of one SASL exchange, as the client sends them.
pub(crate) enum SaslExchange {
    Plain(Option<Vec<u8>>),
    /// SCRAM: client-first, then client-final once server-first came, then the check of
    /// server-final.
    Scram {
        client: Box<ScramClient>,
        password: String,
        round: u8,
        first: Vec<u8>,
    },
}

impl SaslExchange {
    pub(crate) fn start(login: &SaslLogin) -> Self {
        match login.mechanism {
            SaslMechanism::Plain => {
                Self::Plain(Some(gregor_security::plain::client_message("", &login.username, &login.password)))
            }
            SaslMechanism::Scram(m) => {
                let mut nonce = [0u8; 24];
                rand::thread_rng().fill_bytes(&mut nonce);
                let mut client = ScramClient::new(m, gregor_security::nonce_from_bytes(&nonce));
                let first = client.client_first(&login.username);
                Self::Scram { client: Box::new(client), password: login.password.clone(), round: 0, first }
            }
        }
    }

    /// The next token to send, given the broker's last answer (`None` at the start).
    /// `Ok(None)`: the exchange is complete.
    pub(crate) fn next(&mut self, answer: Option<&[u8]>) -> Result<Option<Vec<u8>>> {
        let failed = |e: gregor_security::SecurityError| config_error(format!("SASL authentication failed: {e}"));
        match self {
            Self::Plain(first) => Ok(first.take()),
            Self::Scram { client, password, round, first } => {
                *round += 1;
                match (*round, answer) {
                    (1, _) => Ok(Some(std::mem::take(first))),
                    (2, Some(server_first)) => client.server_first(server_first, password).map(Some).map_err(failed),
                    (3, Some(server_final)) => client.server_final(server_final).map(|()| None).map_err(failed),
                    _ => Err(config_error("SASL authentication failed: the broker answered out of order")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn given_an_empty_endpoint_identification_algorithm_should_not_check_the_host_name() {
        assert!(verify_hostname(&props(&[])));
        assert!(verify_hostname(&props(&[("ssl.endpoint.identification.algorithm", "https")])));
        assert!(!verify_hostname(&props(&[("ssl.endpoint.identification.algorithm", "")])));
        assert!(verify_hostname(&props(&[("enable.ssl.certificate.verification", "true")])));
    }

    #[test]
    fn given_sasl_properties_should_read_the_login_from_jaas_or_librdkafka_keys() {
        let jaas = props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="pw";"#,
            ),
        ]);
        let login = ClientSecurity::from_properties(&jaas).unwrap().sasl.unwrap();
        assert_eq!((login.username.as_str(), login.password.as_str()), ("alice", "pw"));
        let rdkafka = props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "bob"),
            ("sasl.password", "pw2"),
        ]);
        assert_eq!(ClientSecurity::from_properties(&rdkafka).unwrap().sasl.unwrap().username, "bob");
        let missing = props(&[("security.protocol", "SASL_SSL"), ("ssl.ca.location", "/nonexistent/ca.pem")]);
        assert!(ClientSecurity::from_properties(&missing).is_err());
    }
}
