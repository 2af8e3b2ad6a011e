//! SASL on a connection of a `SASL_PLAINTEXT` (or `SASL_SSL`) listener, as Kafka's
//! `SaslServerAuthenticator`: until authenticated a client may send only ApiVersions,
//! SaslHandshake and SaslAuthenticate (or, after a v0 handshake, raw SASL tokens); a
//! failure answers Kafka's error, waits `connection.failed.authentication.delay.ms` and
//! closes. With `connections.max.reauth.ms` the session has a lifetime (KIP-368): the
//! client re-authenticates on the same connection, or it is closed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_protocol::kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_security::{PlainUsers, SaslMechanism, ScramCredential, ScramServer, SecurityError};
use rand::RngCore;

use crate::broker::Broker;
use crate::listeners::ListenerSpec;
use crate::{BrokerConfig, BrokerError};

/// What a SASL listener accepts, decided once at start.
#[derive(Debug)]
pub(crate) struct SaslSettings {
    pub(crate) mechanisms: Vec<SaslMechanism>,
    pub(crate) plain_users: PlainUsers,
    /// `connections.max.reauth.ms`; zero: sessions do not expire.
    pub(crate) reauth: Duration,
    pub(crate) failure_delay: Duration,
    pub(crate) max_token: usize,
    /// Keys the fake salts of unknown SCRAM users, so that two probes of one unknown
    /// name see the same salt (as a known user's would be).
    fake_salt_key: [u8; 32],
}

impl SaslSettings {
    /// The listener's mechanisms and users, or the sentence that refuses the start.
    pub(crate) fn of(config: &BrokerConfig, listener: &ListenerSpec) -> Result<Self, BrokerError> {
        let name = &listener.name;
        let refuse = |why: String| BrokerError::InvalidConfig(format!("refusing to start: listener {name}: {why}"));
        let enabled = config.listener_value(name, "sasl.enabled.mechanisms").unwrap_or_default();
        let mut mechanisms = Vec::new();
        for m in enabled.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let mechanism = SaslMechanism::from_name(m).map_err(|_| {
                refuse(format!(
                    "SASL mechanism {m} of 'sasl.enabled.mechanisms' is not supported (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are), and clients would not authenticate as configured"
                ))
            })?;
            mechanisms.push(mechanism);
        }
        if mechanisms.is_empty() {
            return Err(refuse("'sasl.enabled.mechanisms' names no mechanism".into()));
        }
        let plain_users = if mechanisms.contains(&SaslMechanism::Plain) {
            plain_users(config, name).map_err(refuse)?
        } else {
            PlainUsers::default()
        };
        let mut fake_salt_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fake_salt_key);
        Ok(Self {
            mechanisms,
            plain_users,
            reauth: Duration::from_millis(config.broker_i64("connections.max.reauth.ms").max(0) as u64),
            failure_delay: Duration::from_millis(
                config.broker_i64("connection.failed.authentication.delay.ms").max(0) as u64
            ),
            max_token: usize::try_from(config.broker_i64("sasl.server.max.receive.size")).unwrap_or(usize::MAX),
            fake_salt_key,
        })
    }
}

/// PLAIN's users: the `user_<name>` options of the listener's PLAIN JAAS config
/// (`listener.name.<l>.plain.sasl.jaas.config`, else `sasl.jaas.config`), and the
/// `name:sha256:<hex>` lines of `sasl.plain.users.file`.
fn plain_users(config: &BrokerConfig, listener: &str) -> Result<PlainUsers, String> {
    let jaas = config
        .listener_value(listener, "plain.sasl.jaas.config")
        .or_else(|| config.listener_value(listener, "sasl.jaas.config"));
    let mut users = match jaas {
        Some(text) => {
            let parsed = gregor_security::jaas::parse(&text).map_err(|e| format!("the PLAIN JAAS config: {e}"))?;
            if !parsed.login_module.ends_with("PlainLoginModule") {
                return Err(format!(
                    "the PLAIN JAAS config uses login module {}, not PlainLoginModule",
                    parsed.login_module
                ));
            }
            PlainUsers::from_jaas(&parsed)
        }
        None => PlainUsers::default(),
    };
    if let Some(path) = config.listener_value(listener, "sasl.plain.users.file") {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read sasl.plain.users.file {path}: {e}"))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (user, entry) =
                line.split_once(':').ok_or_else(|| format!("{path}: a line is not name:sha256:<hex>"))?;
            users.insert_hashed(user, entry).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    if users.is_empty() {
        return Err("PLAIN is enabled but no user is configured: give user_<name>=\"<password>\" options in listener.name.<listener>.plain.sasl.jaas.config, or sasl.plain.users.file".into());
    }
    Ok(users)
}

#[derive(Debug)]
enum Phase {
    /// Nothing yet: ApiVersions and SaslHandshake only.
    Handshake,
    /// A mechanism was chosen; tokens come in SaslAuthenticate, or raw after a v0 handshake.
    Token { mechanism: SaslMechanism, raw: bool },
    /// SCRAM's second round.
    ScramFinal { server: Box<ScramServer>, raw: bool },
    /// Authenticated as `principal` until `expires` (KIP-368), if sessions expire.
    Done { expires: Option<Instant> },
}

/// What the connection does with a frame of a SASL connection.
#[derive(Debug)]
pub(crate) enum Gate {
    /// An ordinary request: dispatch it.
    Dispatch,
    /// SaslHandshake or SaslAuthenticate: the authenticator answers it.
    Sasl,
    /// A raw SASL token (after a v0 handshake): the authenticator answers it.
    RawToken,
    /// Close the connection, with the reason to log.
    Close(String),
}

/// A SCRAM user's stored credential from the metadata image.
pub(crate) fn image_credentials(broker: &Broker) -> impl Fn(&str, i8) -> Option<String> + '_ {
    move |user, mechanism| broker.image().scram_credentials.get(&(user.to_owned(), mechanism)).cloned()
}

/// One connection's SASL state.
#[derive(Debug)]
pub(crate) struct Authenticator {
    settings: Arc<SaslSettings>,
    phase: Phase,
    principal: Option<String>,
    /// The mechanism of the last handshake: re-authentication must keep it (KIP-368).
    mechanism: Option<SaslMechanism>,
}

/// An answer, and whether the connection closes after it (a failed authentication).
#[derive(Debug)]
pub(crate) struct Answer<T> {
    pub(crate) response: T,
    pub(crate) close_after: Option<Duration>,
}

impl Authenticator {
    pub(crate) fn new(settings: Arc<SaslSettings>) -> Self {
        Self { settings, phase: Phase::Handshake, principal: None, mechanism: None }
    }

    /// `User:<name>` once authenticated.
    pub(crate) fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// Decides what happens to the next frame, whose api key is `api_key` (`None`: the
    /// frame has no readable header).
    pub(crate) fn gate(&self, api_key: Option<i16>, now: Instant) -> Gate {
        match &self.phase {
            Phase::Token { raw: true, .. } | Phase::ScramFinal { raw: true, .. } => Gate::RawToken,
            Phase::Done { expires: Some(at) } if now >= *at && !is_sasl(api_key) => {
                Gate::Close("the SASL session expired (connections.max.reauth.ms) without re-authentication".into())
            }
            Phase::Done { .. } if is_sasl(api_key) => Gate::Sasl,
            Phase::Done { .. } => Gate::Dispatch,
            _ if api_key == Some(ApiKey::ApiVersions as i16) => Gate::Dispatch,
            _ if is_sasl(api_key) => Gate::Sasl,
            _ => Gate::Close(format!("unexpected Kafka request of api key {api_key:?} during SASL authentication")),
        }
    }

    pub(crate) fn handshake(&mut self, request: &SaslHandshakeRequest, version: i16) -> Answer<SaslHandshakeResponse> {
        let enabled: Vec<StrBytes> =
            self.settings.mechanisms.iter().map(|m| StrBytes::from_static_str(m.name())).collect();
        let response = SaslHandshakeResponse::default().with_mechanisms(enabled);
        let reauthenticating = matches!(self.phase, Phase::Done { .. });
        if !matches!(self.phase, Phase::Handshake) && !reauthenticating {
            return refuse(response.with_error_code(ResponseError::IllegalSaslState.code()), Duration::ZERO);
        }
        match SaslMechanism::from_name(request.mechanism.as_str()) {
            Ok(m) if reauthenticating && self.mechanism != Some(m) => {
                // Kafka: a re-authentication keeps the connection's mechanism.
                refuse(response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()), Duration::ZERO)
            }
            Ok(m) if self.settings.mechanisms.contains(&m) => {
                self.phase = Phase::Token { mechanism: m, raw: version == 0 };
                self.mechanism = Some(m);
                Answer { response, close_after: None }
            }
            _ => refuse(response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()), Duration::ZERO),
        }
    }

    /// One SaslAuthenticate round (v0 to v2).
    pub(crate) fn authenticate(
        &mut self,
        credentials: &dyn Fn(&str, i8) -> Option<String>,
        request: &SaslAuthenticateRequest,
        version: i16,
        now: Instant,
    ) -> Answer<SaslAuthenticateResponse> {
        let step = self.step(credentials, &request.auth_bytes, now);
        let mut response = SaslAuthenticateResponse::default();
        match step {
            Ok(bytes) => {
                response.auth_bytes = bytes.into();
                if version >= 1 {
                    response.session_lifetime_ms = self.session_lifetime_ms(now);
                }
                Answer { response, close_after: None }
            }
            Err(e) => {
                response.error_code = e.kafka_code();
                response.error_message = Some(StrBytes::from_string(self.failure_message(&e)));
                refuse(response, self.settings.failure_delay)
            }
        }
    }

    /// A raw token after a v0 handshake: the answer's bytes, or the error that closes.
    pub(crate) fn raw_token(
        &mut self,
        credentials: &dyn Fn(&str, i8) -> Option<String>,
        token: &[u8],
        now: Instant,
    ) -> Result<Vec<u8>, (SecurityError, Duration)> {
        self.step(credentials, token, now).map_err(|e| (e, self.settings.failure_delay))
    }

    /// `credentials(user, mechanism type)`: a SCRAM user's stored credential.
    fn step(
        &mut self,
        credentials: &dyn Fn(&str, i8) -> Option<String>,
        token: &[u8],
        now: Instant,
    ) -> Result<Vec<u8>, SecurityError> {
        if token.len() > self.settings.max_token {
            return Err(illegal("authentication: a token larger than sasl.server.max.receive.size"));
        }
        match std::mem::replace(&mut self.phase, Phase::Handshake) {
            Phase::Token { mechanism: SaslMechanism::Plain, .. } => {
                let user = gregor_security::plain::authenticate(token, &self.settings.plain_users)?;
                self.authenticated(&user, now)?;
                Ok(Vec::new())
            }
            Phase::Token { mechanism: SaslMechanism::Scram(m), raw } => {
                let mut nonce = [0u8; 24];
                rand::thread_rng().fill_bytes(&mut nonce);
                let mut server = ScramServer::new(m, gregor_security::nonce_from_bytes(&nonce))
                    .with_fake_salt_key(&self.settings.fake_salt_key);
                let lookup = |user: &str| {
                    let stored = credentials(user, m.type_code())?;
                    ScramCredential::from_storage_string(m, &stored).ok()
                };
                let first = server.client_first(token, lookup)?;
                self.phase = Phase::ScramFinal { server: Box::new(server), raw };
                Ok(first)
            }
            Phase::ScramFinal { mut server, .. } => {
                let (last, user) = server.client_final(token)?;
                self.authenticated(&user, now)?;
                Ok(last)
            }
            Phase::Handshake | Phase::Done { .. } => Err(illegal("handshake: SaslAuthenticate before SaslHandshake")),
        }
    }

    fn authenticated(&mut self, user: &str, now: Instant) -> Result<(), SecurityError> {
        let principal = format!("User:{user}");
        if let Some(before) = self.principal.as_deref().filter(|p| *p != principal) {
            // KIP-368: re-authentication may not change who the connection is.
            let dotted = |p: &str| p.replacen(':', ".", 1);
            return Err(SecurityError::PrincipalChanged { from: dotted(before), to: dotted(&principal) });
        }
        let expires = (!self.settings.reauth.is_zero()).then(|| now + self.settings.reauth);
        self.phase = Phase::Done { expires };
        self.principal = Some(principal);
        Ok(())
    }

    /// Kafka's sentence for a failed login: SCRAM's names the mechanism, as
    /// `SaslServerAuthenticator` words it; the others are the mechanism's own.
    fn failure_message(&self, e: &SecurityError) -> String {
        match (self.mechanism, e.kafka_code()) {
            (_, _) if matches!(e, SecurityError::PrincipalChanged { .. }) => e.to_string(),
            (Some(SaslMechanism::Scram(m)), gregor_security::error::SASL_AUTHENTICATION_FAILED) => format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                m.name()
            ),
            _ => e.to_string(),
        }
    }

    /// The largest frame to read now: before authentication, `sasl.server.max.receive.size`
    /// (Kafka's bound), so an unauthenticated client cannot make the broker buffer more.
    pub(crate) fn max_frame(&self, authenticated_max: usize) -> usize {
        match self.phase {
            Phase::Done { .. } => authenticated_max,
            _ => self.settings.max_token.min(authenticated_max),
        }
    }

    fn session_lifetime_ms(&self, now: Instant) -> i64 {
        match self.phase {
            Phase::Done { expires: Some(at) } => at.saturating_duration_since(now).as_millis() as i64,
            _ => 0,
        }
    }
}

fn is_sasl(api_key: Option<i16>) -> bool {
    matches!(api_key, Some(k) if k == ApiKey::SaslHandshake as i16 || k == ApiKey::SaslAuthenticate as i16)
}

fn illegal(state: &'static str) -> SecurityError {
    SecurityError::IllegalState { state }
}

fn refuse<T>(response: T, delay: Duration) -> Answer<T> {
    Answer { response, close_after: Some(delay) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(reauth_ms: u64) -> Arc<SaslSettings> {
        let mut plain_users = PlainUsers::default();
        plain_users.insert("alice", gregor_security::PlainPassword::Clear("alice-secret".into()));
        plain_users.insert("bob", gregor_security::PlainPassword::Clear("bob-secret".into()));
        Arc::new(SaslSettings {
            mechanisms: vec![SaslMechanism::Plain],
            plain_users,
            reauth: Duration::from_millis(reauth_ms),
            failure_delay: Duration::from_millis(100),
            max_token: 1024,
            fake_salt_key: [7; 32],
        })
    }

    fn no_scram(_: &str, _: i8) -> Option<String> {
        None
    }

    fn handshake(auth: &mut Authenticator, mechanism: &'static str, version: i16) -> Answer<SaslHandshakeResponse> {
        auth.handshake(&SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)), version)
    }

    fn login(auth: &mut Authenticator, user: &str, password: &str, now: Instant) -> Answer<SaslAuthenticateResponse> {
        let token = gregor_security::plain::client_message("", user, password);
        auth.authenticate(&no_scram, &SaslAuthenticateRequest::default().with_auth_bytes(token.into()), 1, now)
    }

    const METADATA: Option<i16> = Some(ApiKey::Metadata as i16);

    #[test]
    fn given_no_login_should_allow_only_api_versions_and_sasl() {
        let auth = Authenticator::new(settings(0));
        let now = Instant::now();
        assert!(matches!(auth.gate(Some(ApiKey::ApiVersions as i16), now), Gate::Dispatch));
        assert!(matches!(auth.gate(Some(ApiKey::SaslHandshake as i16), now), Gate::Sasl));
        assert!(matches!(auth.gate(METADATA, now), Gate::Close(_)));
    }

    #[test]
    fn given_plain_login_should_name_the_principal_and_refuse_a_wrong_password() {
        let now = Instant::now();
        let mut auth = Authenticator::new(settings(0));
        assert!(handshake(&mut auth, "PLAIN", 1).close_after.is_none());
        let refused = login(&mut auth, "alice", "nope", now);
        assert_eq!(refused.response.error_code, ResponseError::SaslAuthenticationFailed.code());
        assert_eq!(refused.close_after, Some(Duration::from_millis(100)));

        let mut auth = Authenticator::new(settings(0));
        let _ = handshake(&mut auth, "PLAIN", 1);
        let ok = login(&mut auth, "alice", "alice-secret", now);
        assert_eq!((ok.response.error_code, ok.close_after), (0, None));
        assert_eq!(auth.principal(), Some("User:alice"));
        assert!(matches!(auth.gate(METADATA, now), Gate::Dispatch));
    }

    #[test]
    fn given_an_unknown_or_disabled_mechanism_should_list_the_enabled_ones_and_close() {
        let mut auth = Authenticator::new(settings(0));
        let answer = handshake(&mut auth, "SCRAM-SHA-256", 1);
        assert_eq!(answer.response.error_code, ResponseError::UnsupportedSaslMechanism.code());
        assert_eq!(answer.response.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
        assert!(answer.close_after.is_some());
    }

    #[test]
    fn given_a_session_lifetime_should_expire_and_not_let_reauthentication_change_the_user() {
        let start = Instant::now();
        let mut auth = Authenticator::new(settings(1000));
        let _ = handshake(&mut auth, "PLAIN", 1);
        let ok = login(&mut auth, "alice", "alice-secret", start);
        assert!(ok.response.session_lifetime_ms > 0 && ok.response.session_lifetime_ms <= 1000);
        let later = start + Duration::from_millis(1500);
        assert!(matches!(auth.gate(METADATA, later), Gate::Close(_)), "expired");
        assert!(matches!(auth.gate(Some(ApiKey::SaslHandshake as i16), later), Gate::Sasl), "may re-authenticate");
        let _ = handshake(&mut auth, "PLAIN", 1);
        let other = login(&mut auth, "bob", "bob-secret", later);
        assert_eq!(other.response.error_code, ResponseError::SaslAuthenticationFailed.code());
        let _ = handshake(&mut auth, "PLAIN", 1);
        let again = login(&mut auth, "alice", "alice-secret", later);
        assert_eq!(again.response.error_code, 0);
        assert!(matches!(auth.gate(METADATA, later), Gate::Dispatch));
    }

    #[test]
    fn given_a_v0_handshake_should_take_raw_tokens() {
        let now = Instant::now();
        let mut auth = Authenticator::new(settings(0));
        let _ = handshake(&mut auth, "PLAIN", 0);
        assert!(matches!(auth.gate(None, now), Gate::RawToken));
        let token = gregor_security::plain::client_message("", "alice", "alice-secret");
        assert_eq!(auth.raw_token(&no_scram, &token, now).unwrap(), Vec::<u8>::new());
        assert!(matches!(auth.gate(METADATA, now), Gate::Dispatch));
    }

    #[test]
    fn given_an_oversized_token_should_refuse_it() {
        let now = Instant::now();
        let mut auth = Authenticator::new(settings(0));
        let _ = handshake(&mut auth, "PLAIN", 1);
        let huge = SaslAuthenticateRequest::default().with_auth_bytes(vec![0u8; 4096].into());
        let answer = auth.authenticate(&no_scram, &huge, 1, now);
        assert_ne!(answer.response.error_code, 0);
        assert!(answer.close_after.is_some());
    }
}
