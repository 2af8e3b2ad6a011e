//! The client side of one SCRAM exchange, for Gregor's own clients (inter-broker, the
//! `gregor` CLI) and the tests. Like Kafka's `ScramSaslClient` it sends no authzid and
//! asks for no channel binding, and it checks the server's signature before trusting it.

use subtle::ConstantTimeEq;

use super::messages::{self, Grammar};
use super::{xor, ScramMechanism};
use crate::error::{Result, SecurityError};

#[derive(Debug)]
enum State {
    Initial,
    SentClientFirst { client_first_bare: String },
    SentClientFinal { server_signature: Vec<u8> },
    Complete,
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::SentClientFirst { .. } => "awaiting server-first-message",
            Self::SentClientFinal { .. } => "awaiting server-final-message",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }
}

/// One client-side SCRAM exchange.
#[derive(Debug)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    client_nonce: String,
    state: State,
}

impl ScramClient {
    /// A new exchange. `client_nonce` must be fresh random printable ASCII without `,`
    /// (see [`super::nonce_from_bytes`]).
    pub fn new(mechanism: ScramMechanism, client_nonce: String) -> Self {
        let printable = client_nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',');
        assert!(!client_nonce.is_empty() && printable, "a SCRAM client nonce must be printable ASCII without ','");
        Self { mechanism, client_nonce, state: State::Initial }
    }

    /// The client-first-message for `user`; starts the exchange over if called again.
    pub fn client_first(&mut self, user: &str) -> Vec<u8> {
        let client_first_bare = format!("n={},r={}", messages::escape_name(user), self.client_nonce);
        let message = format!("n,,{client_first_bare}").into_bytes();
        self.state = State::SentClientFirst { client_first_bare };
        message
    }

    /// Takes the server-first-message and answers the client-final-message. Iteration
    /// counts outside Kafka's bounds are refused: too few is weak, too many lets a rogue
    /// server burn the client's CPU.
    pub fn server_first(&mut self, message: &[u8], password: &str) -> Result<Vec<u8>> {
        let client_first_bare = match std::mem::replace(&mut self.state, State::Failed) {
            State::SentClientFirst { client_first_bare } => client_first_bare,
            other => return Err(SecurityError::IllegalState { state: other.name() }),
        };
        let mechanism = self.mechanism;
        let first = Grammar(mechanism).server_first(message)?;
        if first.nonce.len() <= self.client_nonce.len() || !first.nonce.starts_with(&self.client_nonce) {
            return Err(SecurityError::InvalidNonce);
        }
        let (min, max) = (mechanism.min_iterations(), mechanism.max_iterations());
        if first.iterations < min {
            return Err(SecurityError::IterationsBelowMinimum { mechanism, iterations: first.iterations, min });
        }
        if first.iterations > max {
            return Err(SecurityError::UnacceptableIterations { mechanism, iterations: first.iterations, min, max });
        }
        let salted = mechanism.salted_password(password.as_bytes(), &first.salt, first.iterations);
        let without_proof = messages::format_client_final_without_proof("n,,", first.nonce);
        let server_first = String::from_utf8_lossy(message);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_key = mechanism.client_key(&salted);
        let client_signature = mechanism.hmac(&mechanism.hash(&client_key), auth_message.as_bytes());
        let proof = xor(&client_key, &client_signature);
        let server_signature = mechanism.hmac(&mechanism.server_key(&salted), auth_message.as_bytes());
        self.state = State::SentClientFinal { server_signature };
        Ok(format!("{without_proof}{}", messages::format_proof(&proof)).into_bytes())
    }

    /// Takes the server-final-message: succeeds only if it carries the signature that
    /// proves the server holds this user's credential.
    pub fn server_final(&mut self, message: &[u8]) -> Result<()> {
        let expected = match std::mem::replace(&mut self.state, State::Failed) {
            State::SentClientFinal { server_signature } => server_signature,
            other => return Err(SecurityError::IllegalState { state: other.name() }),
        };
        match Grammar(self.mechanism).server_final(message)? {
            messages::ServerFinal::Error(error) => Err(SecurityError::ScramServerError { error: error.to_owned() }),
            messages::ServerFinal::Verifier(signature) if bool::from(signature.ct_eq(&expected)) => {
                self.state = State::Complete;
                Ok(())
            }
            messages::ServerFinal::Verifier(_) => Err(SecurityError::InvalidServerSignature),
        }
    }

    /// Whether the server proved itself.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }
}
