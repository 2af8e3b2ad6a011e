//! Fuzz targets over everything a client can send to Gregor, and over what a crash can
//! leave on disk. Each target is one function taking arbitrary bytes; it must return for
//! every input and panics only when an invariant of the code under test breaks.
//!
//! ```text
//!  request_frame      length prefix, request header (both versions), every served api
//!                     key and version through the broker's own decoder table
//!  record_batch       RecordBatch v2 bytes of a Produce: header view, CRC, varints,
//!                     headers, every codec, then a real append (plain and compacted)
//!  log_recovery       a real partition directory, damaged, then recovered and read
//!  group_coordinator  request sequences and clock advances against a coordinator shard,
//!                     whose records must replay into an equal shard
//!  sasl_exchanges     SASL/PLAIN messages, JAAS config text, and SCRAM client-first and
//!                     client-final messages (raw, or a real client's edited)
//! ```
//!
//! `fuzz/` runs them under libFuzzer (`cargo fuzz run <target>`); `tests/corpus.rs`
//! replays the seed corpus, the crash regressions and a seeded mutation smoke on stable
//! Rust in `cargo test`. See docs/fuzzing.md.
#![forbid(unsafe_code)]

mod group_coordinator;
mod input;
mod log_recovery;
mod record_batch;
mod request_frame;
mod sasl_exchanges;
mod scratch;

pub use group_coordinator::group_coordinator;
pub use log_recovery::log_recovery;
pub use record_batch::record_batch;
pub use request_frame::request_frame;
pub use sasl_exchanges::sasl_exchanges;

/// A fuzz target: returns for every input, panics only on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/` and the corpus directories name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("request_frame", request_frame),
    ("record_batch", record_batch),
    ("log_recovery", log_recovery),
    ("group_coordinator", group_coordinator),
    ("sasl_exchanges", sasl_exchanges),
];

/// Seeds a target makes itself, named, beside the files of `fuzz/corpus/<target>/`: a
/// SCRAM proof that verifies has to be computed, it cannot be captured once and edited.
pub fn builtin_seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "sasl_exchanges" => sasl_exchanges::seeds(),
        _ => Vec::new(),
    }
}
