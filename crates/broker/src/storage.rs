//! `kafka-storage.sh` for Gregor: formatting a data dir with a chosen cluster id before
//! the first start, and reading a data dir's identity. A formatted node starts with that
//! id; fresh nodes of one quorum formatted with the same id form that cluster. Unformatted
//! nodes need no format step: they agree on an id through the quorum at first start.

use std::path::PathBuf;

use crate::config::BrokerConfig;
use crate::meta_properties::{self, MetaProperties};
use crate::BrokerError;

/// A new cluster id in Kafka's form (`kafka-storage.sh random-uuid`).
pub fn random_uuid() -> String {
    meta_properties::random_id()
}

/// Whether `id` is a Kafka cluster id: 16 bytes in URL-safe base64 without padding (22
/// characters), as `kafka-storage.sh format -t` requires.
pub fn check_cluster_id(id: &str) -> Result<(), BrokerError> {
    // The 4 spare bits of the last character are ignored, as Kafka's decoder does (the
    // well-known example id `MkU3OEVBNTcwNTJENDM2Qk` sets them).
    let valid = id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(BrokerError::InvalidConfig(format!(
            "cluster id '{id}' is not a Kafka cluster id (22 characters of URL-safe base64 for 16 bytes, as `gregor storage random-uuid` prints)"
        )))
    }
}

/// What `format` did to the data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatOutcome {
    Formatted {
        dir: PathBuf,
        node_id: i32,
        cluster_id: String,
    },
    /// Already formatted and `ignore_formatted` was given: left as it was.
    AlreadyFormatted {
        dir: PathBuf,
        cluster_id: String,
    },
}

/// Writes `meta.properties` (node id, cluster id, a new directory id) into the data dir
/// of `config`. A data dir that has one already is refused, or skipped with
/// `ignore_formatted`, as Kafka's `--ignore-formatted`.
pub fn format(config: &BrokerConfig, cluster_id: &str, ignore_formatted: bool) -> Result<FormatOutcome, BrokerError> {
    check_cluster_id(cluster_id)?;
    let dir = config.data_dir();
    let node_id = config.node_id();
    if let Some(existing) = info(config)? {
        if ignore_formatted {
            return Ok(FormatOutcome::AlreadyFormatted { dir, cluster_id: existing.cluster_id });
        }
        return Err(BrokerError::DataDir {
            path: dir,
            reason: format!(
                "it is already formatted (cluster {}, node {}); use --ignore-formatted to leave it as it is",
                existing.cluster_id, existing.node_id
            ),
        });
    }
    std::fs::create_dir_all(&dir).map_err(|e| BrokerError::DataDir { path: dir.clone(), reason: e.to_string() })?;
    let meta = meta_properties::load_or_create(&dir, node_id, Some(cluster_id))?;
    Ok(FormatOutcome::Formatted { dir, node_id: meta.node_id, cluster_id: meta.cluster_id })
}

/// The identity of the data dir of `config`, if it has one.
pub fn info(config: &BrokerConfig) -> Result<Option<StorageInfo>, BrokerError> {
    let dir = config.data_dir();
    let Some(meta) = meta_properties::read(&dir)? else { return Ok(None) };
    let MetaProperties { cluster_id, node_id, directory_id } = meta;
    Ok(Some(StorageInfo { dir, cluster_id, node_id, directory_id }))
}

/// A data dir's `meta.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInfo {
    pub dir: PathBuf,
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, node: i32) -> BrokerConfig {
        BrokerConfig::from_pairs([("log.dirs", dir.display().to_string()), ("node.id", node.to_string())]).unwrap()
    }

    #[test]
    fn given_random_uuids_should_be_valid_cluster_ids() {
        for _ in 0..100 {
            check_cluster_id(&random_uuid()).unwrap();
        }
        for bad in ["", "abc", "MkU3OEVBNTcwNTJENDM2Q!", "MkU3OEVBNTcwNTJENDM2QkE"] {
            assert!(check_cluster_id(bad).is_err(), "{bad}");
        }
        check_cluster_id("MkU3OEVBNTcwNTJENDM2Qk").unwrap();
    }

    #[test]
    fn given_a_formatted_dir_should_refuse_a_second_format_unless_told_to_ignore_it() {
        let dir = tempfile::tempdir().unwrap();
        let id = random_uuid();
        let outcome = format(&config(dir.path(), 2), &id, false).unwrap();
        assert!(matches!(outcome, FormatOutcome::Formatted { node_id: 2, ref cluster_id, .. } if *cluster_id == id));
        let info = info(&config(dir.path(), 2)).unwrap().unwrap();
        assert_eq!((info.cluster_id.as_str(), info.node_id), (id.as_str(), 2));
        let err = format(&config(dir.path(), 2), &random_uuid(), false).unwrap_err().to_string();
        assert!(err.contains("already formatted"), "{err}");
        let skipped = format(&config(dir.path(), 2), &random_uuid(), true).unwrap();
        assert_eq!(skipped, FormatOutcome::AlreadyFormatted { dir: dir.path().to_owned(), cluster_id: id });
    }
}
