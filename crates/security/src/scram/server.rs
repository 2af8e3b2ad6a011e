//! The server side of one SCRAM exchange, as a state machine the connection drives with
//! the two SaslAuthenticate tokens:
//!
//! ```text
//!  AwaitingClientFirst ──client_first──► AwaitingClientFinal ──client_final──► Complete
//!          │                                     │
//!          └──────────── any error ──────────────┴──► Failed (every later call: IllegalState)
//! ```

use subtle::ConstantTimeEq;

use super::messages::{self, Grammar};
use super::{xor, ScramCredential, ScramMechanism};
use crate::error::{Result, SecurityError};

/// Salt length of the fake credential answered for unknown users. Give real credentials
/// salts of this length too, so the salt's length does not tell them apart.
pub const FAKE_SALT_LEN: usize = 32;

/// What the server keeps between the two client messages.
#[derive(Debug)]
struct Exchange {
    user: String,
    gs2_header: String,
    /// Client nonce followed by the server nonce.
    nonce: String,
    client_first_bare: String,
    server_first: String,
    credential: ScramCredential,
    /// False when `credential` is the fake one of an unknown user: the proof then fails
    /// whatever it is.
    known_user: bool,
}

#[derive(Debug)]
enum State {
    AwaitingClientFirst,
    AwaitingClientFinal(Box<Exchange>),
    Complete,
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::AwaitingClientFirst => "awaiting client-first-message",
            Self::AwaitingClientFinal(_) => "awaiting client-final-message",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }
}

/// One server-side SCRAM exchange (Kafka's `ScramSaslServer`).
#[derive(Debug)]
pub struct ScramServer {
    mechanism: ScramMechanism,
    server_nonce: String,
    fake_salt_key: Option<Vec<u8>>,
    state: State,
}

impl ScramServer {
    /// A new exchange. `server_nonce` must be fresh random printable ASCII without `,`
    /// (see [`super::nonce_from_bytes`]); anything else is a bug in the caller, not input.
    pub fn new(mechanism: ScramMechanism, server_nonce: String) -> Self {
        let printable = server_nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',');
        assert!(!server_nonce.is_empty() && printable, "a SCRAM server nonce must be printable ASCII without ','");
        Self { mechanism, server_nonce, fake_salt_key: None, state: State::AwaitingClientFirst }
    }

    /// A broker-wide secret from which unknown users' fake salts are derived, so an
    /// unknown user gets the same salt at every attempt, as a known one does. Without it
    /// the fake salt derives from the server nonce and changes per attempt, which tells
    /// a patient prober that the user does not exist.
    pub fn with_fake_salt_key(mut self, key: &[u8]) -> Self {
        self.fake_salt_key = Some(key.to_vec());
        self
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Whether the exchange ended in success.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// Takes the client-first-message and answers the server-first-message. `lookup`
    /// finds the user's credential for this mechanism; for an unknown user the exchange
    /// goes on with a fake credential and fails at the proof, so a client cannot learn
    /// which users exist.
    pub fn client_first(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>> {
        // Any error below, and a message out of order, ends the exchange for good.
        match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitingClientFirst => {}
            other => return Err(SecurityError::IllegalState { state: other.name() }),
        }
        let grammar = Grammar(self.mechanism);
        let first = grammar.client_first(message)?;
        if first.authzid.as_ref().is_some_and(|authzid| *authzid != first.user) {
            return Err(SecurityError::AuthorizationIdMismatch);
        }
        let (credential, known_user) = match lookup(&first.user) {
            Some(credential) => (self.check_credential(credential)?, true),
            None => (self.fake_credential(&first.user), false),
        };
        let nonce = format!("{}{}", first.nonce, self.server_nonce);
        let server_first = messages::format_server_first(&nonce, &credential.salt, credential.iterations);
        self.state = State::AwaitingClientFinal(Box::new(Exchange {
            user: first.user,
            gs2_header: first.gs2_header.to_owned(),
            nonce,
            client_first_bare: first.bare.to_owned(),
            server_first: String::from_utf8_lossy(&server_first).into_owned(),
            credential,
            known_user,
        }));
        Ok(server_first)
    }

    /// Takes the client-final-message; on a valid proof answers the server-final-message
    /// and the authenticated user name.
    pub fn client_final(&mut self, message: &[u8]) -> Result<(Vec<u8>, String)> {
        let exchange = match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitingClientFinal(exchange) => exchange,
            other => return Err(SecurityError::IllegalState { state: other.name() }),
        };
        let grammar = Grammar(self.mechanism);
        let last = grammar.client_final(message)?;
        if last.channel_binding != exchange.gs2_header.as_bytes() {
            let reason = "the channel binding (c=) does not repeat the GS2 header";
            return Err(SecurityError::ScramMalformed { mechanism: self.mechanism, reason });
        }
        // Kafka's ScramSaslServer checks that the final nonce ends with the server's
        // (client nonce + server part): librdkafka before 2.x prepends its own nonce again.
        if !last.nonce.ends_with(exchange.nonce.as_str()) {
            return Err(SecurityError::InvalidNonce);
        }
        let auth_message = format!("{},{},{}", exchange.client_first_bare, exchange.server_first, last.without_proof);
        if !self.proof_is_valid(&exchange, &auth_message, &last.proof) {
            return Err(SecurityError::InvalidUserCredentials);
        }
        let signature = self.mechanism.hmac(&exchange.credential.server_key, auth_message.as_bytes());
        self.state = State::Complete;
        Ok((messages::format_server_final(&signature), exchange.user))
    }

    /// `H(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey`, compared in constant time.
    fn proof_is_valid(&self, exchange: &Exchange, auth_message: &str, proof: &[u8]) -> bool {
        let stored_key = &exchange.credential.stored_key;
        if proof.len() != self.mechanism.hash_len() {
            return false;
        }
        let signature = self.mechanism.hmac(stored_key, auth_message.as_bytes());
        let client_key = xor(proof, &signature);
        let matches = bool::from(self.mechanism.hash(&client_key).ct_eq(stored_key));
        matches && exchange.known_user
    }

    /// Refuses a stored credential that does not fit the mechanism or iterates too little
    /// (Kafka refuses the latter at login too).
    fn check_credential(&self, credential: ScramCredential) -> Result<ScramCredential> {
        let mechanism = self.mechanism;
        credential.check_shape(mechanism).map_err(|reason| SecurityError::InvalidCredential { mechanism, reason })?;
        let min = mechanism.min_iterations();
        if credential.iterations < min {
            return Err(SecurityError::IterationsBelowMinimum { mechanism, iterations: credential.iterations, min });
        }
        Ok(credential)
    }

    /// A credential nobody's proof matches, shaped like a real one.
    fn fake_credential(&self, user: &str) -> ScramCredential {
        let key = self.fake_salt_key.as_deref().unwrap_or(self.server_nonce.as_bytes());
        let seed = self.mechanism.hmac(key, format!("{}\0{user}", self.mechanism.name()).as_bytes());
        let mut salt = seed.clone();
        salt.truncate(FAKE_SALT_LEN);
        ScramCredential {
            salt,
            stored_key: self.mechanism.hmac(&seed, b"stored"),
            server_key: self.mechanism.hmac(&seed, b"server"),
            iterations: self.mechanism.min_iterations(),
        }
    }
}
