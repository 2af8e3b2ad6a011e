//! What the broker stores per user and mechanism: never the password, only the salt, the
//! iteration count and the two keys derived from the salted password (RFC 5802 §3). The
//! storage string is Kafka's `ScramCredentialUtils` form, so credentials exported from
//! Kafka read as they are.

use std::fmt;

use base64::Engine;

use super::{ScramMechanism, BASE64};
use crate::error::{Result, SecurityError};

/// One user's credential for one mechanism. `Debug` hides the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    /// `H(ClientKey)`: checks the client's proof.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server's final message.
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// Derives the credential of `password` (as `gregor users create` and
    /// `kafka-configs --add-config 'SCRAM-SHA-256=[password=...]'` do).
    pub fn from_password(mechanism: ScramMechanism, password: &str, salt: &[u8], iterations: u32) -> Result<Self> {
        check_new(mechanism, salt, iterations)?;
        let salted = mechanism.salted_password(password.as_bytes(), salt, iterations);
        Ok(Self::derive(mechanism, &salted, salt, iterations))
    }

    /// The credential of a salted password, as AlterUserScramCredentials carries it
    /// (clients salt the password themselves so the broker never sees it).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self> {
        check_new(mechanism, salt, iterations)?;
        if salted_password.len() != mechanism.hash_len() {
            let reason = "the salted password is not one hash long";
            return Err(SecurityError::UnacceptableCredential { mechanism, reason });
        }
        Ok(Self::derive(mechanism, salted_password, salt, iterations))
    }

    fn derive(mechanism: ScramMechanism, salted: &[u8], salt: &[u8], iterations: u32) -> Self {
        Self {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&mechanism.client_key(salted)),
            server_key: mechanism.server_key(salted),
            iterations,
        }
    }

    /// `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=N`.
    pub fn to_storage_string(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            BASE64.encode(&self.salt),
            BASE64.encode(&self.stored_key),
            BASE64.encode(&self.server_key),
            self.iterations
        )
    }

    /// Reads [`to_storage_string`](Self::to_storage_string)'s form, fields in any order,
    /// each exactly once. Keys must be `mechanism`'s hash length.
    pub fn from_storage_string(mechanism: ScramMechanism, text: &str) -> Result<Self> {
        let invalid = |reason| SecurityError::InvalidCredential { mechanism, reason };
        let mut fields: [Option<&str>; 4] = [None; 4];
        for field in text.split(',') {
            let (key, value) = field.split_once('=').ok_or(invalid("a field is not key=value"))?;
            let slot = match key {
                "salt" => 0,
                "stored_key" => 1,
                "server_key" => 2,
                "iterations" => 3,
                _ => return Err(invalid("unknown field")),
            };
            if fields[slot].replace(value).is_some() {
                return Err(invalid("repeated field"));
            }
        }
        let [Some(salt), Some(stored_key), Some(server_key), Some(iterations)] = fields else {
            return Err(invalid("salt, stored_key, server_key and iterations are all required"));
        };
        let decode = |value: &str| BASE64.decode(value).map_err(|_| invalid("a value is not base64"));
        let credential = Self {
            salt: decode(salt)?,
            stored_key: decode(stored_key)?,
            server_key: decode(server_key)?,
            iterations: iterations.parse().map_err(|_| invalid("iterations is not a number"))?,
        };
        credential.check_shape(mechanism).map_err(invalid)?;
        Ok(credential)
    }

    /// Whether the fields fit `mechanism`, so a credential stored for the other mechanism
    /// fails loudly rather than as a wrong password.
    pub(super) fn check_shape(&self, mechanism: ScramMechanism) -> Result<(), &'static str> {
        if self.salt.is_empty() {
            return Err("the salt is empty");
        }
        if self.stored_key.len() != mechanism.hash_len() || self.server_key.len() != mechanism.hash_len() {
            return Err("a key is not one hash long");
        }
        if self.iterations == 0 {
            return Err("iterations is 0");
        }
        Ok(())
    }
}

/// Kafka's checks on a new credential (ScramControlManager): a salt, and iterations
/// within the mechanism's bounds.
fn check_new(mechanism: ScramMechanism, salt: &[u8], iterations: u32) -> Result<()> {
    let (min, max) = (mechanism.min_iterations(), mechanism.max_iterations());
    if !(min..=max).contains(&iterations) {
        return Err(SecurityError::UnacceptableIterations { mechanism, iterations, min, max });
    }
    if salt.is_empty() {
        return Err(SecurityError::UnacceptableCredential { mechanism, reason: "the salt is empty" });
    }
    Ok(())
}
