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
