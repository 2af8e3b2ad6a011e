use thiserror::Error;

/// Everything that can be wrong with bytes a client sent.
#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("corrupt record batch: {0}")]
    CorruptBatch(&'static str),
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    #[error("record batch magic {0} is not supported (only v2)")]
    UnsupportedMagic(i8),
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    FrameTooLarge { size: usize, max: usize },
    #[error("frame length {0} is negative")]
    NegativeFrameLength(i32),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("malformed {what}: {source}")]
    Malformed {
        what: &'static str,
        #[source]
        source: anyhow::Error,
    },
}

/// Kafka's name of an error code, `UNKNOWN_TOPIC_OR_PARTITION` style ("NONE" for 0).
pub fn error_name(code: i16) -> String {
    use kafka_protocol::ResponseError;
    match ResponseError::try_from_code(code) {
        None => "NONE".to_owned(),
        Some(ResponseError::Unknown(c)) => format!("error code {c}"),
        Some(e) => screaming_snake(&format!("{e}")),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}
