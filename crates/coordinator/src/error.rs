//! The coordinator's one error type: only replay can fail, on records it cannot read.

use thiserror::Error;

/// Why a `__consumer_offsets` record could not be replayed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CoordinatorError {
    #[error("{what} is truncated: needed {needed} bytes at position {position}")]
    Truncated { what: &'static str, position: usize, needed: usize },
    #[error("{what} has a negative length {length} at position {position}")]
    NegativeLength { what: &'static str, position: usize, length: i32 },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("{what} has a malformed varint")]
    InvalidVarint { what: &'static str },
    #[error("{what} is null where a value is required")]
    UnexpectedNull { what: &'static str },
    #[error("record key version {version} is not a known key")]
    InvalidKeyVersion { version: i16 },
    #[error("{what} version {version} is not supported")]
    UnsupportedValueVersion { what: &'static str, version: i16 },
}
