//! The crate's one error type. Authentication failures read as Kafka's own messages where
//! Kafka has one, because clients print them to the operator verbatim; the error code a
//! variant answers with is decided in one place, [`SecurityError::kafka_code`].

use crate::scram::ScramMechanism;

/// Kafka's SASL_AUTHENTICATION_FAILED.
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// Kafka's UNSUPPORTED_SASL_MECHANISM.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// Kafka's ILLEGAL_SASL_STATE.
pub const ILLEGAL_SASL_STATE: i16 = 34;
/// Kafka's UNACCEPTABLE_CREDENTIAL (AlterUserScramCredentials).
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
/// Kafka's INVALID_REQUEST (CreateAcls, DescribeAcls, DeleteAcls refusals).
pub const INVALID_REQUEST: i16 = 42;
/// Kafka's UNKNOWN_SERVER_ERROR: configuration problems never reach a client as such.
pub const UNKNOWN_SERVER_ERROR: i16 = -1;

/// Why a SASL exchange, a credential, a JAAS config or a TLS setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    // ---- SASL/PLAIN (messages of Kafka's PlainSaslServer) ----
    /// The PLAIN message is not `authzid NUL authcid NUL passwd`.
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {tokens}")]
    PlainTokenCount { tokens: usize },
    /// The PLAIN message is not UTF-8.
    #[error("Invalid SASL/PLAIN response: not valid UTF-8")]
    PlainNotUtf8,
    /// The user name or the password is empty.
    #[error("Authentication failed: {field} not specified")]
    PlainFieldMissing { field: &'static str },
    /// Unknown user or wrong password; which of the two is never told.
    #[error("Authentication failed: Invalid username or password")]
    InvalidUsernameOrPassword,
    /// A password table entry is neither clear text nor `sha256:<64 hex digits>`.
    #[error("invalid hashed password for user '{user}': expected sha256:<64 hex digits>")]
    InvalidPasswordHash { user: String },

    // ---- both mechanisms ----
    /// The client asked to act as someone other than the user it authenticated as.
    #[error("Authentication failed: Client requested an authorization id that is different from username")]
    AuthorizationIdMismatch,
    /// The handshake named a mechanism this listener does not enable.
    #[error("Unsupported SASL mechanism {mechanism}")]
    UnsupportedMechanism { mechanism: String },
    /// A message arrived in a state that does not expect it (out of order, or after
    /// the exchange completed or failed).
    #[error("Unexpected SASL message in state {state}")]
    IllegalState { state: &'static str },

    // ---- SCRAM ----
    /// A SCRAM message does not follow RFC 5802's grammar.
    #[error("Invalid {mechanism} message: {reason}")]
    ScramMalformed { mechanism: ScramMechanism, reason: &'static str },
    /// The client asked for channel binding (`p=` or `y`), which Gregor does not offer.
    #[error("Authentication failed: channel binding is not supported")]
    ChannelBindingNotSupported,
    /// `tokenauth=true`: Kafka's delegation tokens, which Gregor does not issue.
    #[error("Authentication failed: delegation token authentication is not supported")]
    DelegationTokenNotSupported,
    /// The final message's nonce is not the one the server sent.
    #[error("Invalid client nonce in the final client message.")]
    InvalidNonce,
    /// Wrong proof, or a user without a credential for this mechanism.
    #[error("Authentication failed: Invalid user credentials")]
    InvalidUserCredentials,
    /// KIP-368: a re-authentication logged in as someone else (Kafka's sentence, with
    /// principals as `type.name`).
    #[error("Cannot change principals during re-authentication from {from}: {to}")]
    PrincipalChanged { from: String, to: String },
    /// A stored credential iterates less than the mechanism's minimum.
    #[error("Iterations {iterations} is less than the minimum {min} for {mechanism}")]
    IterationsBelowMinimum { mechanism: ScramMechanism, iterations: u32, min: u32 },
    /// A new credential's iteration count is outside Kafka's bounds.
    #[error("Too {} iterations for {mechanism}: {iterations} (allowed {min}..={max})", if .iterations < .min { "few" } else { "many" })]
    UnacceptableIterations { mechanism: ScramMechanism, iterations: u32, min: u32, max: u32 },
    /// A new credential's salt or salted password is empty or of the wrong length.
    #[error("unacceptable {mechanism} credential: {reason}")]
    UnacceptableCredential { mechanism: ScramMechanism, reason: &'static str },
    /// A stored credential string is not `salt=..,stored_key=..,server_key=..,iterations=N`.
    #[error("invalid {mechanism} credential: {reason}")]
    InvalidCredential { mechanism: ScramMechanism, reason: &'static str },
    /// Client side: the server answered `e=<error>` in its final message.
    #[error("the SCRAM server refused authentication: {error}")]
    ScramServerError { error: String },
    /// Client side: the server's signature does not prove it knows the credential.
    #[error("the SCRAM server signature is invalid")]
    InvalidServerSignature,

    // ---- JAAS config (JaasConfig's messages where it has one) ----
    /// The value holds no login module, or more than one.
    #[error("JAAS config property contains {count} login modules, should be 1 module")]
    JaasModuleCount { count: usize },
    /// The login module class is not followed by a control flag.
    #[error("Login module control flag not specified in JAAS config")]
    JaasControlFlagMissing,
    /// The control flag is not required, requisite, sufficient or optional.
    #[error("Invalid login module control flag '{flag}' in JAAS config")]
    JaasInvalidControlFlag { flag: String },
    /// An option has no `=value`.
    #[error("Value not specified for key '{key}' in JAAS config")]
    JaasValueMissing { key: String },
    /// The entry does not end with `;`.
    #[error("JAAS config entry not terminated by semi-colon")]
    JaasNotTerminated,
    /// Something that cannot start a word, a quoted value, `=` or `;`.
    #[error("unexpected '{found}' at byte {position} in JAAS config")]
    JaasUnexpected { found: char, position: usize },
    /// A quoted value or a `/* */` comment runs to the end of the text.
    #[error("unterminated {what} starting at byte {position} in JAAS config")]
    JaasUnterminated { what: &'static str, position: usize },

    // ---- TLS settings and files (crate::tls); `key` is the Kafka setting at fault ----
    /// `ssl.keystore.type` or `ssl.truststore.type` names a store format other than PEM.
    #[error("{key}={value} is not supported: Gregor reads PEM keystores and truststores only; convert a PKCS12 store with `openssl pkcs12 -in store.p12 -nodes -out store.pem` (a JKS one first with `keytool -importkeystore -srckeystore store.jks -destkeystore store.p12 -deststoretype PKCS12`) and set {key}=PEM")]
    TlsStoreType { key: &'static str, value: String },
    /// `ssl.key.password` is set: the private key would be encrypted.
    #[error("ssl.key.password is set but Gregor does not read encrypted private keys: give an unencrypted PKCS#8 key (`openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-plain.pem`) and remove ssl.key.password")]
    TlsKeyPassword,
    /// `ssl.keystore.password` or `ssl.truststore.password` is set for a PEM store.
    #[error("{key} cannot be set with a PEM store (as in Kafka): PEM files have no store password, remove {key}")]
    TlsStorePassword { key: &'static str },
    /// `ssl.cipher.suites` is set.
    #[error("ssl.cipher.suites is not supported: rustls' default cipher suites apply, remove the setting")]
    TlsCipherSuites,
    /// `ssl.principal.mapping.rules` is something else than `DEFAULT`.
    #[error("ssl.principal.mapping.rules={rules} is not supported: only DEFAULT (the client certificate's subject distinguished name) is")]
    TlsPrincipalMappingRules { rules: String },
    /// A setting has a value outside the ones Gregor serves (`expected` lists them).
    #[error("{key}={value} is not supported: expected {expected}")]
    TlsInvalidValue { key: &'static str, value: String, expected: &'static str },
    /// A setting needs another one (`ssl.keystore.key` without `ssl.keystore.certificate.chain`,
    /// `ssl.client.auth=required` without a truststore).
    #[error("{key} needs {missing}")]
    TlsMissingSetting { key: String, missing: &'static str },
    /// The same store is given both as a file and inline.
    #[error("{file_key} and {inline_key} are both set: give the store as a file or inline, not both")]
    TlsConflictingSettings { file_key: &'static str, inline_key: &'static str },
    /// A keystore or truststore file cannot be read.
    #[error("cannot read {source_name}: {reason}")]
    TlsRead { source_name: String, reason: String },
    /// The PEM text of a store is malformed or lacks what it must hold; `source_name` names the
    /// setting and the file (`ssl.keystore.location file /etc/gregor/broker.pem`).
    #[error("invalid PEM in {source_name}: {reason}")]
    TlsPem { source_name: String, reason: String },
    /// rustls refused the certificates or the key (a key that does not match the certificate,
    /// a CA certificate it cannot parse, ...).
    #[error("unusable TLS {what} from {source_name}: {reason}")]
    TlsConfig { what: &'static str, source_name: String, reason: String },
    /// A peer certificate whose subject cannot be read.
    #[error("cannot read the subject of the client certificate: {reason}")]
    TlsCertificate { reason: String },

    // ---- ACLs (crate::authorizer) ----
    /// An ACL binding or filter that CreateAcls, DescribeAcls or DeleteAcls refuses, with
    /// Kafka's message (`Invalid operation ANY`, `Unknown patternFilter.`, ...).
    #[error("{message}")]
    InvalidAcl { message: String },
    /// A `super.users` entry that is not `Type:name` (Kafka's message).
    #[error("super.users: expected a string in format principalType:principalName but got {value}")]
    InvalidSuperUser { value: String },
}

/// `Result` with [`SecurityError`].
pub type Result<T, E = SecurityError> = std::result::Result<T, E>;

impl SecurityError {
    /// The Kafka error code to answer SaslHandshake, SaslAuthenticate,
    /// AlterUserScramCredentials, CreateAcls, DescribeAcls or DeleteAcls with.
    pub fn kafka_code(&self) -> i16 {
        use SecurityError::*;
        match self {
            UnsupportedMechanism { .. } => UNSUPPORTED_SASL_MECHANISM,
            IllegalState { .. } => ILLEGAL_SASL_STATE,
            UnacceptableIterations { .. } | UnacceptableCredential { .. } => UNACCEPTABLE_CREDENTIAL,
            InvalidAcl { .. } => INVALID_REQUEST,
            InvalidPasswordHash { .. }
            | JaasModuleCount { .. }
            | JaasControlFlagMissing
            | JaasInvalidControlFlag { .. }
            | JaasValueMissing { .. }
            | JaasNotTerminated
            | JaasUnexpected { .. }
            | JaasUnterminated { .. }
            | TlsStoreType { .. }
            | TlsKeyPassword
            | TlsStorePassword { .. }
            | TlsCipherSuites
            | TlsPrincipalMappingRules { .. }
            | TlsInvalidValue { .. }
            | TlsMissingSetting { .. }
            | TlsConflictingSettings { .. }
            | TlsRead { .. }
            | TlsPem { .. }
            | TlsConfig { .. }
            | TlsCertificate { .. }
            | InvalidSuperUser { .. } => UNKNOWN_SERVER_ERROR,
            PlainTokenCount { .. }
            | PlainNotUtf8
            | PlainFieldMissing { .. }
            | InvalidUsernameOrPassword
            | AuthorizationIdMismatch
            | ScramMalformed { .. }
            | ChannelBindingNotSupported
            | DelegationTokenNotSupported
            | InvalidNonce
            | InvalidUserCredentials
            | PrincipalChanged { .. }
            | IterationsBelowMinimum { .. }
            | InvalidCredential { .. }
            | ScramServerError { .. }
            | InvalidServerSignature => SASL_AUTHENTICATION_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_each_kind_of_error_when_mapped_should_answer_kafkas_code() {
        assert_eq!(SecurityError::UnsupportedMechanism { mechanism: "GSSAPI".into() }.kafka_code(), 33);
        assert_eq!(SecurityError::IllegalState { state: "complete" }.kafka_code(), 34);
        assert_eq!(SecurityError::InvalidUsernameOrPassword.kafka_code(), 58);
        assert_eq!(SecurityError::InvalidUserCredentials.kafka_code(), 58);
        let too_many = SecurityError::UnacceptableIterations {
            mechanism: ScramMechanism::ScramSha256,
            iterations: 20_000,
            min: 4096,
            max: 16384,
        };
        assert_eq!(too_many.kafka_code(), 93);
        assert_eq!(too_many.to_string(), "Too many iterations for SCRAM-SHA-256: 20000 (allowed 4096..=16384)");
        assert_eq!(SecurityError::JaasNotTerminated.kafka_code(), -1);
    }
}
