//! Kafka's segment swap protocol, file by file.
//!
//! ```text
//!  1. write + fsync   <base>.log.cleaned  (.index.cleaned, .timeindex.cleaned)
//!  2. rename          *.cleaned -> *.swap   oldest segment first, the .log last in each
//!     fsync dir       ── commit point: from here recovery finishes the swap ──
//!  3. rename          old <base>.log (+ indexes) -> *.deleted  (readers keep their handles)
//!  4. rename          *.swap -> <base>.log / .index / .timeindex
//!     fsync dir
//! ```
//!
//! On open, `complete_swaps` runs before anything else: a `<base>.log.swap` means step 2
//! reached that segment, so it replaces whatever `<base>.log` is there. Index `.swap`
//! files without their log are from an unfinished step 2 and are discarded with the
//! `.cleaned` files. Segments are committed oldest first, so a crash leaves a prefix of
//! the segments cleaned and the rest as they were: a record is only ever removed in
//! favour of a later one, which is in a later (cleaned or untouched) segment, and a
//! tombstone is only removed together with every older record of its key.

use std::fs;
use std::path::{Path, PathBuf};

use crate::checkpoint::sync_dir;
use crate::error::{IoContext, LogError};
use crate::segment::{file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
pub(crate) const SWAP_SUFFIX: &str = ".swap";
/// The log goes last: its rename is what commits (or completes) a segment.
const SEGMENT_FILES: [&str; 3] = [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX];

fn path(dir: &Path, base: i64, suffix: &str, extra: &str) -> PathBuf {
    dir.join(format!("{}{extra}", file_name(base, suffix)))
}

/// Step 2 for every segment in `bases` (ascending), then the directory fsync that makes
/// the swap durable. On error, the caller abandons the clean with `remove_transient`.
pub(crate) fn cleaned_to_swap(dir: &Path, bases: &[i64]) -> Result<(), LogError> {
    for &base in bases {
        for suffix in SEGMENT_FILES {
            let from = path(dir, base, suffix, CLEANED_SUFFIX);
            fs::rename(&from, path(dir, base, suffix, SWAP_SUFFIX)).ctx("rename cleaned segment to swap", &from)?;
        }
    }
    sync_dir(dir)
}

/// Step 4 for one segment whose old files are already gone (renamed to `.deleted`).
pub(crate) fn swap_to_final(dir: &Path, base: i64) -> Result<(), LogError> {
    for suffix in SEGMENT_FILES {
        let from = path(dir, base, suffix, SWAP_SUFFIX);
        fs::rename(&from, path(dir, base, suffix, "")).ctx("rename swap segment into place", &from)?;
    }
    Ok(())
}

/// Removes the `.cleaned` and `.swap` files of `bases` after an abandoned clean. Missing
/// files are fine: the clean may have failed before writing them.
pub(crate) fn remove_transient(dir: &Path, bases: &[i64]) -> Result<(), LogError> {
    for &base in bases {
        for suffix in SEGMENT_FILES {
            for extra in [CLEANED_SUFFIX, SWAP_SUFFIX] {
                let file = path(dir, base, suffix, extra);
                match fs::remove_file(&file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).ctx("remove abandoned cleaned file", &file)
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Recovery: finishes every committed swap in `dir`. Returns the base offsets completed.
pub(crate) fn complete_swaps(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let log_swap = format!("{LOG_SUFFIX}{SWAP_SUFFIX}");
    for entry in fs::read_dir(dir).ctx("list partition directory", dir)? {
        let name = entry.ctx("list partition directory", dir)?.file_name();
        let base = name.to_str().and_then(|n| n.strip_suffix(log_swap.as_str())).and_then(|digits| {
            (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse::<i64>().ok())?
        });
        bases.extend(base);
    }
    bases.sort_unstable();
    for &base in &bases {
        tracing::info!(dir = %dir.display(), base_offset = base, "completing an interrupted segment swap");
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let swap = path(dir, base, suffix, SWAP_SUFFIX);
            let target = path(dir, base, suffix, "");
            if swap.exists() {
                fs::rename(&swap, &target).ctx("complete index swap", &swap)?;
            } else if target.exists() {
                // An old index must never describe the new log: without a swap, rebuild.
                fs::remove_file(&target).ctx("remove stale index", &target)?;
            }
        }
        let swap = path(dir, base, LOG_SUFFIX, SWAP_SUFFIX);
        fs::rename(&swap, path(dir, base, LOG_SUFFIX, "")).ctx("complete segment swap", &swap)?;
    }
    if !bases.is_empty() {
        sync_dir(dir)?;
    }
    Ok(bases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn given_log_swap_without_index_swap_when_completed_should_replace_log_and_drop_old_index() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(path(dir.path(), 5, LOG_SUFFIX, ""), b"old").unwrap();
        fs::write(path(dir.path(), 5, INDEX_SUFFIX, ""), b"old-index").unwrap();
        fs::write(path(dir.path(), 5, TIME_INDEX_SUFFIX, SWAP_SUFFIX), b"new-time").unwrap();
        fs::write(path(dir.path(), 5, LOG_SUFFIX, SWAP_SUFFIX), b"new").unwrap();
        fs::write(path(dir.path(), 9, INDEX_SUFFIX, SWAP_SUFFIX), b"uncommitted").unwrap();
        assert_eq!(complete_swaps(dir.path()).unwrap(), vec![5]);
        assert_eq!(fs::read(path(dir.path(), 5, LOG_SUFFIX, "")).unwrap(), b"new");
        assert_eq!(fs::read(path(dir.path(), 5, TIME_INDEX_SUFFIX, "")).unwrap(), b"new-time");
        assert_eq!(
            names(dir.path()),
            vec!["00000000000000000005.log", "00000000000000000005.timeindex", "00000000000000000009.index.swap"]
        );
    }
}
