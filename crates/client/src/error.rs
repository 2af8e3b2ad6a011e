//! The client's one error type: every variant reads as one plain sentence.

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No TCP connection could be opened.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The connection broke or a read or write failed.
    #[error("connection to {addr} failed: {reason}")]
    Io { addr: String, reason: String },
    /// No answer within the request timeout.
    #[error("{addr} did not answer {api} within {timeout_ms} ms")]
    Timeout { addr: String, api: String, timeout_ms: u128 },
    /// A request or response could not be encoded or decoded.
    #[error("cannot {what}: {reason}")]
    Codec { what: String, reason: String },
    /// The broker serves no version of an API this client can speak.
    #[error("the broker at {addr} does not support {api}")]
    Unsupported { addr: String, api: String },
    /// The broker answered with an error code.
    #[error("{context}: {}", describe_code(*.code, .message.as_deref()))]
    Broker { context: String, code: i16, message: Option<String> },
    /// A topic is not in the cluster.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// A partition is not in the topic.
    #[error("topic '{topic}' has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    /// A node id is not in the cluster metadata.
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),
    /// Anything else, already phrased as a sentence.
    #[error("{0}")]
    Other(String),
}

/// `Result` with [`ClientError`].
pub type Result<T> = std::result::Result<T, ClientError>;

impl ClientError {
    /// The broker error code carried, if any.
    pub fn code(&self) -> Option<i16> {
        match self {
            Self::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn codec(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Codec { what: what.into(), reason: reason.to_string() }
    }
}

/// Fails with [`ClientError::Broker`] when `code` is not 0.
pub(crate) fn check(code: i16, message: Option<&str>, context: impl FnOnce() -> String) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    Err(ClientError::Broker { context: context(), code, message: message.map(str::to_owned) })
}

/// `UNKNOWN_TOPIC_OR_PARTITION (3)`, with the broker's message when it sent one.
pub fn describe_code(code: i16, message: Option<&str>) -> String {
    let name = error_name(code);
    match message {
        Some(m) if !m.is_empty() => format!("{name} ({m})"),
        _ => name,
    }
}

/// Kafka's name of an error code, `UNKNOWN_TOPIC_OR_PARTITION` style.
pub use gregor_protocol::error_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_follow_kafka() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(
            describe_code(36, Some("Topic 'a' already exists.")),
            "TOPIC_ALREADY_EXISTS (Topic 'a' already exists.)"
        );
    }
}
