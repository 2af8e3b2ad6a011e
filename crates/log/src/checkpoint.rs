//! Kafka's small text files: offset checkpoints, `partition.metadata`, and the helpers
//! that write them atomically (write `.tmp`, fsync, rename, fsync the directory), so a
//! crash leaves either the old or the new file, never a torn one.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use gregor_protocol::TopicPartition;

use crate::error::{IoContext, LogError};

pub(crate) const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub(crate) const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Kafka's high-watermark checkpoint (`ReplicaManager.checkpointHighWatermarks`).
pub(crate) const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
pub(crate) const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
pub(crate) const PARTITION_METADATA_FILE: &str = "partition.metadata";
pub(crate) const TMP_SUFFIX: &str = ".tmp";
const CHECKPOINT_VERSION: i32 = 0;

/// Replaces `path` with `contents` so that readers and crashes see the old or new file whole.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), LogError> {
    let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", path.display()));
    let mut file = File::create(&tmp).ctx("create", &tmp)?;
    file.write_all(contents).ctx("write", &tmp)?;
    file.sync_all().ctx("fsync", &tmp)?;
    fs::rename(&tmp, path).ctx("rename into place", path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Makes renames and file creations in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).ctx("fsync directory", dir)
}

/// Reads a file that may not exist; `Ok(None)` when it does not.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, LogError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidData => Ok(Some(String::new())),
        Err(e) => Err(e).ctx("read", path),
    }
}

/// Kafka's checkpoint layout: version line, count line, then one entry per line.
pub(crate) fn format_checkpoint<'a>(lines: impl ExactSizeIterator<Item = String> + 'a) -> String {
    let mut out = format!("{CHECKPOINT_VERSION}\n{}\n", lines.len());
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Splits a checkpoint into its entry lines; `None` when the header or count is wrong.
pub(crate) fn checkpoint_lines(text: &str) -> Option<Vec<&str>> {
    let mut lines = text.lines();
    if lines.next()?.trim().parse::<i32>().ok()? != CHECKPOINT_VERSION {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let entries: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    (entries.len() == count).then_some(entries)
}

/// `recovery-point-offset-checkpoint` / `log-start-offset-checkpoint`: `<topic> <partition> <offset>`.
pub(crate) fn write_offset_checkpoint(path: &Path, offsets: &[(TopicPartition, i64)]) -> Result<(), LogError> {
    let lines = offsets.iter().map(|(tp, offset)| format!("{} {} {offset}", tp.topic, tp.partition));
    write_atomically(path, format_checkpoint(lines).as_bytes())
}

/// Reads an offset checkpoint. A damaged file is reported and ignored: without it every
/// log is fully recovered or starts at its first segment, which is safe.
pub(crate) fn read_offset_checkpoint(path: &Path) -> Result<HashMap<TopicPartition, i64>, LogError> {
    let Some(text) = read_optional(path)? else {
        return Ok(HashMap::new());
    };
    let parsed = checkpoint_lines(&text)
        .and_then(|lines| lines.into_iter().map(parse_offset_line).collect::<Option<HashMap<_, _>>>());
    Ok(parsed.unwrap_or_else(|| {
        tracing::warn!(path = %path.display(), "ignoring malformed offset checkpoint");
        HashMap::new()
    }))
}

fn parse_offset_line(line: &str) -> Option<(TopicPartition, i64)> {
    let mut parts = line.split_whitespace();
    let topic = parts.next()?;
    let partition = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    parts.next().is_none().then(|| (TopicPartition::new(topic, partition), offset))
}

/// `partition.metadata`: `version: 0\ntopic_id: <id>\n`.
pub(crate) fn write_partition_metadata(dir: &Path, topic_id: &str) -> Result<(), LogError> {
    let text = format!("version: 0\ntopic_id: {topic_id}\n");
    write_atomically(&dir.join(PARTITION_METADATA_FILE), text.as_bytes())
}

/// The topic id from `partition.metadata`, if the file is there and well formed.
pub(crate) fn read_partition_metadata(dir: &Path) -> Result<Option<String>, LogError> {
    let Some(text) = read_optional(&dir.join(PARTITION_METADATA_FILE))? else {
        return Ok(None);
    };
    Ok(text.lines().find_map(|l| l.strip_prefix("topic_id:")).map(|id| id.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_offsets_when_checkpointed_should_read_back_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        let offsets = vec![(TopicPartition::new("a-b", 0), 5), (TopicPartition::new("c", 3), 7)];
        write_offset_checkpoint(&path, &offsets).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "0\n2\na-b 0 5\nc 3 7\n");
        let read = read_offset_checkpoint(&path).unwrap();
        assert_eq!(read[&TopicPartition::new("c", 3)], 7);
    }

    #[test]
    fn given_garbage_checkpoint_when_read_should_be_empty_not_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_START_OFFSET_CHECKPOINT);
        fs::write(&path, "0\n5\nx 1 2\n").unwrap();
        assert!(read_offset_checkpoint(&path).unwrap().is_empty());
        fs::write(&path, [0xffu8, 0xfe, 0]).unwrap();
        assert!(read_offset_checkpoint(&path).unwrap().is_empty());
    }

    #[test]
    fn given_topic_id_when_written_should_read_back() {
        let dir = tempfile::tempdir().unwrap();
        write_partition_metadata(dir.path(), "AbCd").unwrap();
        assert_eq!(read_partition_metadata(dir.path()).unwrap().as_deref(), Some("AbCd"));
    }
}
