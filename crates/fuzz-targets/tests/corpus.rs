//! The fuzz targets on the stable toolchain, in `cargo test`: every seed of
//! `fuzz/corpus/<target>/` and every crash reproducer of `regressions/<target>/` must run
//! clean, and a deterministic mutation smoke (seeded PRNG over the seeds: bit flips,
//! interesting values, truncations, insertions, splices) runs each target for a few
//! seconds. A smoke failure writes its input under `target/fuzz-smoke/` for triage.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gregor_fuzz_targets::TARGETS;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn seeds(target: &str) -> Vec<PathBuf> {
    files_in(&crate_dir().join("../../fuzz/corpus").join(target))
}

fn regressions(target: &str) -> Vec<PathBuf> {
    files_in(&crate_dir().join("regressions").join(target))
}

fn read_all(files: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    files.iter().map(|p| (p.display().to_string(), std::fs::read(p).unwrap())).collect()
}

/// The seed files plus the seeds the target makes itself (`builtin_seeds`).
fn seed_inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut inputs = read_all(&seeds(target));
    inputs.extend(gregor_fuzz_targets::builtin_seeds(target));
    inputs
}

fn target_fn(name: &str) -> fn(&[u8]) {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).expect("a known target")
}

/// Runs every input through the target, naming the one that panics.
fn replay(target: &str, inputs: &[(String, Vec<u8>)]) {
    let run = target_fn(target);
    for (name, data) in inputs {
        if panic::catch_unwind(|| run(data)).is_err() {
            panic!("{target} panics on {name}");
        }
    }
}

/// xorshift64*: deterministic, and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [&[u8]; 8] = [
    &[0],
    &[0xff],
    &[0x7f],
    &[0x80],
    &[0xff, 0xff, 0xff, 0xff],
    &[0x7f, 0xff, 0xff, 0xff],
    &[0, 0, 0, 0],
    &[0x80, 0, 0, 0],
];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        let byte = at.min(data.len().saturating_sub(1));
        match rng.below(6) {
            0 if !data.is_empty() => data[byte] ^= 1 << rng.below(8),
            1 => {
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let end = (at + value.len()).min(data.len());
                data.splice(at..end, value.iter().copied());
            }
            2 => data.truncate(at),
            3 => {
                let junk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, junk);
            }
            4 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ if !data.is_empty() => data[byte] = rng.next() as u8,
            _ => data.push(rng.next() as u8),
        }
    }
}

/// Mutates seeds for at most `runs` inputs or `budget`, whichever ends first.
fn smoke(target: &str, runs: usize, budget: Duration) {
    let run = target_fn(target);
    let mut pool: Vec<Vec<u8>> =
        seed_inputs(target).into_iter().chain(read_all(&regressions(target))).map(|(_, data)| data).collect();
    pool.push(Vec::new());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    let started = Instant::now();
    for i in 0..runs {
        if started.elapsed() > budget {
            break;
        }
        let mut data = pool[rng.below(pool.len())].clone();
        mutate(&mut rng, &mut data, &pool);
        if panic::catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            let dir = crate_dir().join("../../target/fuzz-smoke");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{target}-{i}"));
            std::fs::write(&path, &data).unwrap();
            panic!("{target} panics on mutated input {i}, saved to {}", path.display());
        }
    }
}

/// Some reproducers are decompression bombs: fixed, they fail at once; broken, they
/// allocate gigabytes and finish anyway. The process's peak RSS (Linux) tells them apart.
fn assert_memory_stayed_small() {
    const LIMIT_KIB: u64 = 1_536 * 1_024;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return };
    let peak_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    if let Some(peak) = peak_kib {
        assert!(peak < LIMIT_KIB, "the tests peaked at {} MiB of memory", peak / 1_024);
    }
}

macro_rules! target_tests {
    ($($target:ident: $runs:expr;)*) => {$(
        mod $target {
            use super::*;

            #[test]
            fn seed_corpus_runs_clean() {
                let inputs = seed_inputs(stringify!($target));
                assert!(!inputs.is_empty(), "fuzz/corpus/{} has no seeds", stringify!($target));
                replay(stringify!($target), &inputs);
            }

            #[test]
            fn crash_regressions_stay_fixed() {
                replay(stringify!($target), &read_all(&regressions(stringify!($target))));
                assert_memory_stayed_small();
            }

            #[test]
            fn mutated_seeds_run_clean() {
                smoke(stringify!($target), $runs, Duration::from_secs(4));
            }
        }
    )*};
}

target_tests! {
    request_frame: 4_000;
    record_batch: 3_000;
    log_recovery: 400;
    group_coordinator: 2_000;
    sasl_exchanges: 2_000;
}

/// Targets whose cargo-fuzz binary (`fuzz/fuzz_targets/<name>.rs` and its `[[bin]]` in
/// `fuzz/Cargo.toml`) is not written yet: they run here on stable only. Empty it once
/// the binary exists.
const WITHOUT_FUZZ_BINARY: &[&str] = &[];

#[test]
fn every_target_has_a_test_module_and_a_fuzz_target() {
    for (name, _) in TARGETS {
        assert!(["request_frame", "record_batch", "log_recovery", "group_coordinator", "sasl_exchanges"].contains(name));
        let source = crate_dir().join("../../fuzz/fuzz_targets").join(format!("{name}.rs"));
        assert!(source.is_file() || WITHOUT_FUZZ_BINARY.contains(name), "{} is missing", source.display());
    }
}

/// Triage on stable: `GREGOR_FUZZ_TARGET=<target> GREGOR_FUZZ_INPUT=<file> cargo test -p
/// gregor-fuzz-targets --test corpus replay_one -- --nocapture` runs one input with a
/// debug build's overflow checks and full backtraces. Does nothing without the variables.
#[test]
fn replay_one() {
    let (Some(target), Some(input)) = (std::env::var_os("GREGOR_FUZZ_TARGET"), std::env::var_os("GREGOR_FUZZ_INPUT"))
    else {
        return;
    };
    let data = std::fs::read(&input).expect("GREGOR_FUZZ_INPUT is readable");
    target_fn(target.to_str().expect("a target name"))(&data);
}

/// Writes every target's built-in seeds to `fuzz/corpus/<target>/` so libFuzzer starts
/// from them too: `GREGOR_FUZZ_WRITE_SEEDS=1 cargo test -p gregor-fuzz-targets --test
/// corpus write_builtin_seeds`. Does nothing without the variable.
#[test]
fn write_builtin_seeds() {
    if std::env::var_os("GREGOR_FUZZ_WRITE_SEEDS").is_none() {
        return;
    }
    for (target, _) in TARGETS {
        let dir = crate_dir().join("../../fuzz/corpus").join(target);
        for (name, data) in gregor_fuzz_targets::builtin_seeds(target) {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), data).unwrap();
        }
    }
}

/// The captured traffic is valid: every client frame decodes with the broker's decoder,
/// and every client batch validates and decodes. A decoder grown too strict (a size cap,
/// a patched codec) fails here before it refuses a real client.
#[test]
fn captured_client_traffic_decodes() {
    use bytes::Bytes;
    use gregor_protocol::frame::decode_request_header;
    use gregor_protocol::record_batch::RecordBatchHeader;
    use gregor_protocol::records::decode_records_and_markers;

    for path in seeds("request_frame") {
        let data = std::fs::read(&path).unwrap();
        let mut frame = Bytes::copy_from_slice(&data[4..]);
        let (key, header) = decode_request_header(&mut frame).expect("a captured header decodes");
        let api = gregor_broker::supported_apis().iter().find(|a| a.api_key == key).expect("a served api");
        let decoded = api.decode_request(header.request_api_version, &mut frame);
        assert!(decoded.is_ok(), "{}: {decoded:?}", path.display());
    }
    for path in seeds("record_batch") {
        let data = std::fs::read(&path).unwrap();
        let view = RecordBatchHeader::parse(&data).expect("a captured batch parses");
        assert!(view.validate_from_producer().is_ok(), "{} does not validate", path.display());
        let decoded = decode_records_and_markers(Bytes::from(data));
        assert!(decoded.is_ok(), "{}: {decoded:?}", path.display());
    }
}
