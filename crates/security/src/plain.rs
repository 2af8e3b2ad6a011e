//! SASL/PLAIN (RFC 4616) on the server side, as Kafka's `PlainSaslServer` does it: one
//! client message `[authzid] NUL authcid NUL passwd`, checked against a user table, with
//! Kafka's error messages. Passwords are compared as SHA-256 digests in constant time, so
//! neither the stored password's length nor the first differing byte shows in the timing.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Result, SecurityError};
use crate::jaas::{plain_users, JaasConfig};

/// Prefix of a hashed entry in a password file.
const SHA256_PREFIX: &str = "sha256:";

/// A stored PLAIN password. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum PlainPassword {
    /// As written in a JAAS `user_<name>="..."` option.
    Clear(String),
    /// SHA-256 of the password's UTF-8 bytes, from a `sha256:<hex>` entry.
    Sha256([u8; 32]),
}

impl fmt::Debug for PlainPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Clear(_) => "Clear(<redacted>)",
            Self::Sha256(_) => "Sha256(<redacted>)",
        })
    }
}

impl PlainPassword {
    /// A `sha256:<64 hex digits>` entry; `user` only names the entry in the error.
    pub fn from_hashed(user: &str, entry: &str) -> Result<Self> {
        let invalid = || SecurityError::InvalidPasswordHash { user: user.to_owned() };
        let hex = entry.strip_prefix(SHA256_PREFIX).ok_or_else(invalid)?;
        decode_hex_32(hex).map(Self::Sha256).ok_or_else(invalid)
    }

    /// The `sha256:<hex>` entry for `password`, for writing a password file.
    pub fn hashed_entry(password: &str) -> String {
        let digest = Sha256::digest(password.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{SHA256_PREFIX}{hex}")
    }

    fn digest(&self) -> [u8; 32] {
        match self {
            Self::Clear(password) => Sha256::digest(password.as_bytes()).into(),
            Self::Sha256(digest) => *digest,
        }
    }
}

fn decode_hex_32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *slot = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// The users PLAIN accepts. `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PlainUsers {
    users: BTreeMap<String, PlainPassword>,
}

impl fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.users.keys()).finish()
    }
}

impl PlainUsers {
    /// The `user_<name>` options of a `PlainLoginModule` entry, passwords in clear as
    /// Kafka keeps them (a JAAS password that starts with `sha256:` is just a password).
    pub fn from_jaas(config: &JaasConfig) -> Self {
        let mut users = Self::default();
        for (name, password) in plain_users(config) {
            users.insert(name, PlainPassword::Clear(password));
        }
        users
    }

    /// Adds or replaces `user`.
    pub fn insert(&mut self, user: impl Into<String>, password: PlainPassword) {
        let _ = self.users.insert(user.into(), password);
    }

    /// Adds or replaces `user` from a `sha256:<hex>` password-file entry.
    pub fn insert_hashed(&mut self, user: &str, entry: &str) -> Result<()> {
        let password = PlainPassword::from_hashed(user, entry)?;
        self.insert(user, password);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `user`'s. An unknown user costs the same digest and
    /// comparison as a known one.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        match self.users.get(user) {
            Some(stored) => bool::from(stored.digest().ct_eq(&given)),
            None => {
                let _ = bool::from([0u8; 32].ct_eq(&given));
                false
            }
        }
    }
}

/// The three fields of a PLAIN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlainMessage<'a> {
    authzid: &'a str,
    user: &'a str,
    password: &'a str,
}

/// Splits at NUL as Kafka's `extractTokens` does: it stops counting at four tokens, so
/// its error message never reports more than 4.
fn parse_message(message: &[u8]) -> Result<PlainMessage<'_>> {
    let text = std::str::from_utf8(message).map_err(|_| SecurityError::PlainNotUtf8)?;
    let tokens: Vec<&str> = text.splitn(4, '\0').collect();
    let [authzid, user, password] = tokens[..] else {
        return Err(SecurityError::PlainTokenCount { tokens: tokens.len() });
    };
    Ok(PlainMessage { authzid, user, password })
}

/// Authenticates one PLAIN client message against `users`; the authenticated user name.
/// Checks run in Kafka's order: empty fields, then the password, then the authzid (so an
/// authzid mismatch is reported only to a client that knows the password).
pub fn authenticate(message: &[u8], users: &PlainUsers) -> Result<String> {
    let PlainMessage { authzid, user, password } = parse_message(message)?;
    if user.is_empty() {
        return Err(SecurityError::PlainFieldMissing { field: "username" });
    }
    if password.is_empty() {
        return Err(SecurityError::PlainFieldMissing { field: "password" });
    }
    if !users.verify(user, password) {
        return Err(SecurityError::InvalidUsernameOrPassword);
    }
    if !authzid.is_empty() && authzid != user {
        return Err(SecurityError::AuthorizationIdMismatch);
    }
    Ok(user.to_owned())
}

/// The client's message, for Gregor's own clients and tests.
pub fn client_message(authzid: &str, user: &str, password: &str) -> Vec<u8> {
    [authzid, user, password].join("\0").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jaas;

    fn users() -> PlainUsers {
        let config = jaas::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret";"#,
        )
        .unwrap();
        let mut users = PlainUsers::from_jaas(&config);
        users.insert_hashed("carol", &PlainPassword::hashed_entry("carol-secret")).unwrap();
        users
    }

    #[test]
    fn given_right_passwords_when_authenticating_should_return_the_user() {
        let users = users();
        assert_eq!(authenticate(b"\0alice\0alice-secret", &users).unwrap(), "alice");
        assert_eq!(authenticate(b"admin\0admin\0admin-secret", &users).unwrap(), "admin");
        assert_eq!(authenticate(&client_message("", "carol", "carol-secret"), &users).unwrap(), "carol");
    }

    #[test]
    fn given_wrong_password_or_unknown_user_when_authenticating_should_fail_alike() {
        let users = users();
        for message in [&b"\0alice\0admin-secret"[..], b"\0mallory\0alice-secret", b"\0carol\0carol-secre"] {
            let err = authenticate(message, &users).unwrap_err();
            assert_eq!(err, SecurityError::InvalidUsernameOrPassword);
            assert_eq!(err.to_string(), "Authentication failed: Invalid username or password");
            assert_eq!(err.kafka_code(), 58);
        }
    }

    #[test]
    fn given_authzid_of_another_user_when_authenticating_should_refuse_after_the_password() {
        let users = users();
        let err = authenticate(b"admin\0alice\0alice-secret", &users).unwrap_err();
        assert_eq!(err, SecurityError::AuthorizationIdMismatch);
        let wrong_password = authenticate(b"admin\0alice\0nope", &users).unwrap_err();
        assert_eq!(wrong_password, SecurityError::InvalidUsernameOrPassword);
    }

    #[test]
    fn given_malformed_messages_when_authenticating_should_use_kafkas_messages() {
        let users = users();
        let count = |message: &[u8]| authenticate(message, &users).unwrap_err().to_string();
        assert_eq!(count(b""), "Invalid SASL/PLAIN response: expected 3 tokens, got 1");
        assert_eq!(count(b"alice\0alice-secret"), "Invalid SASL/PLAIN response: expected 3 tokens, got 2");
        assert_eq!(count(b"\0alice\0alice-secret\0"), "Invalid SASL/PLAIN response: expected 3 tokens, got 4");
        assert_eq!(count(b"\0\0\0\0\0\0"), "Invalid SASL/PLAIN response: expected 3 tokens, got 4");
        assert_eq!(count(b"\0\0pw"), "Authentication failed: username not specified");
        assert_eq!(count(b"\0alice\0"), "Authentication failed: password not specified");
        assert_eq!(authenticate(b"\0al\xffice\0pw", &users).unwrap_err(), SecurityError::PlainNotUtf8);
    }

    #[test]
    fn given_password_file_entries_when_parsed_should_accept_only_sha256_hex() {
        let entry = PlainPassword::hashed_entry("pencil");
        assert_eq!(entry.len(), 7 + 64);
        assert_eq!(PlainPassword::from_hashed("u", &entry.to_uppercase().replace("SHA256", "sha256")).unwrap(), {
            PlainPassword::from_hashed("u", &entry).unwrap()
        });
        for bad in ["pencil", "sha256:", "sha256:zz", &entry[..entry.len() - 1], &format!("{entry}0"), "md5:00"] {
            let err = PlainPassword::from_hashed("u", bad).unwrap_err();
            assert_eq!(err, SecurityError::InvalidPasswordHash { user: "u".into() }, "{bad}");
        }
        assert!(PlainPassword::from_hashed("u", &format!("sha256:{}", "é".repeat(32))).is_err());
    }

    #[test]
    fn given_users_when_debug_printed_should_show_names_only() {
        let shown = format!("{:?} {:?}", users(), PlainPassword::Clear("admin-secret".into()));
        assert!(shown.contains("alice") && !shown.contains("secret"), "{shown}");
    }
}
