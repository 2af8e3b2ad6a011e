//! `meta.properties`: the identity of a data dir (cluster id, node id), as Kafka writes
//! it when a log dir is formatted. A broker refuses a data dir of another cluster or node,
//! so a mis-pointed `--data-dir` cannot mix two brokers' data.

use std::path::Path;

use crate::config::parse_properties;
use crate::BrokerError;

pub(crate) const FILE_NAME: &str = "meta.properties";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaProperties {
    pub(crate) cluster_id: String,
    pub(crate) node_id: i32,
    pub(crate) directory_id: String,
}

/// Kafka's cluster and directory ids: 16 random bytes in URL-safe base64 without padding,
/// never starting with `-` (as Kafka's `Uuid.randomUuid`: a leading dash reads as a flag
/// on a command line, `gregor storage format -t -b...`).
pub(crate) fn random_id() -> String {
    loop {
        let id = random_base64_id();
        if !id.starts_with('-') {
            return id;
        }
    }
}

fn random_base64_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::with_capacity(22);
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

/// The data dir's identity if it has one (checked against `node_id` and the operator's
/// `cluster.id`), `None` for a new data dir.
pub(crate) fn load_existing(
    dir: &Path,
    node_id: i32,
    expected_cluster: Option<&str>,
) -> Result<Option<MetaProperties>, BrokerError> {
    if dir.join(FILE_NAME).exists() {
        load_or_create(dir, node_id, expected_cluster).map(Some)
    } else {
        Ok(None)
    }
}

/// Reads the data dir's identity, or writes a new one on first start. `expected_cluster`
/// is the operator's `cluster.id`, if given.
pub(crate) fn load_or_create(
    dir: &Path,
    node_id: i32,
    expected_cluster: Option<&str>,
) -> Result<MetaProperties, BrokerError> {
    let path = dir.join(FILE_NAME);
    let refuse = |reason: String| BrokerError::DataDir { path: dir.to_owned(), reason };
    if !path.exists() {
        let meta = MetaProperties {
            cluster_id: expected_cluster.map_or_else(random_id, str::to_owned),
            node_id,
            directory_id: random_id(),
        };
        write(&path, &meta)?;
        return Ok(meta);
    }
    let meta = read(dir)?.ok_or_else(|| refuse(format!("{FILE_NAME} disappeared")))?;
    if meta.node_id != node_id {
        return Err(refuse(format!("it belongs to node {}, not node {node_id}", meta.node_id)));
    }
    if let Some(expected) = expected_cluster {
        if expected != meta.cluster_id {
            return Err(refuse(format!("it belongs to cluster {}, not cluster {expected}", meta.cluster_id)));
        }
    }
    Ok(meta)
}

/// The data dir's `meta.properties`, unchecked; `None` when it has none.
pub(crate) fn read(dir: &Path) -> Result<Option<MetaProperties>, BrokerError> {
    let path = dir.join(FILE_NAME);
    let refuse = |reason: String| BrokerError::DataDir { path: dir.to_owned(), reason };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refuse(format!("cannot read {FILE_NAME}: {e}"))),
    };
    let pairs = parse_properties(&text);
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    Ok(Some(MetaProperties {
        cluster_id: get("cluster.id").ok_or_else(|| refuse(format!("{FILE_NAME} has no cluster.id")))?,
        node_id: get("node.id")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| refuse(format!("{FILE_NAME} has no valid node.id")))?,
        directory_id: get("directory.id").unwrap_or_default(),
    }))
}

fn write(path: &Path, meta: &MetaProperties) -> Result<(), BrokerError> {
    let text = format!(
        "#\n#Written by Gregor\nnode.id={}\ndirectory.id={}\nversion=1\ncluster.id={}\n",
        meta.node_id, meta.directory_id, meta.cluster_id
    );
    let tmp = path.with_extension("properties.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_new_dir_should_write_and_then_check_identity() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), 3, None).unwrap();
        assert_eq!(first.cluster_id.len(), 22);
        assert_eq!(load_or_create(dir.path(), 3, None).unwrap(), first);
        let err = load_or_create(dir.path(), 4, None).unwrap_err().to_string();
        assert!(err.contains("belongs to node 3"), "{err}");
        assert!(load_or_create(dir.path(), 3, Some("other")).is_err());
        assert!(load_or_create(dir.path(), 3, Some(&first.cluster_id)).is_ok());
    }
}
