//! openraft's state machine: committed entries applied to the [`MetadataImage`], which
//! is published to the broker through a watch channel after every applied batch.
//!
//! The image lives in memory and is rebuilt at start from the newest checkpoint plus the
//! committed entries after it (openraft replays them because the log store keeps the
//! committed id), as KRaft rebuilds its image from a snapshot and the log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::TryStreamExt;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::watch;

use crate::blocking;
use crate::error::to_io;
use crate::{
    checkpoint, LogId, MetadataImage, QuorumError, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig,
};

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// The newest checkpoint: what it covers, and its file.
    current: Option<(SnapshotMeta, PathBuf)>,
}

/// The metadata image as openraft's state machine (clones share it).
#[derive(Debug, Clone)]
pub struct MetadataStateMachine {
    inner: Arc<Mutex<Inner>>,
    image_tx: Arc<watch::Sender<Arc<MetadataImage>>>,
}

impl MetadataStateMachine {
    /// Loads the newest checkpoint of `dir` (the `__cluster_metadata-0` directory).
    pub fn open(dir: &Path) -> Result<Self, QuorumError> {
        let mut inner = Inner {
            dir: dir.to_owned(),
            image: Arc::new(MetadataImage::new()),
            applied: None,
            membership: StoredMembership::default(),
            current: None,
        };
        if let Some(path) = checkpoint::latest(dir)? {
            let bytes = std::fs::read(&path).map_err(|e| QuorumError::io(&path, e))?;
            let loaded = checkpoint::decode(&bytes)?;
            inner.image = Arc::new(loaded.image);
            inner.applied = loaded.meta.last_log_id;
            inner.membership = loaded.meta.last_membership.clone();
            inner.current = Some((loaded.meta, path));
        }
        let (image_tx, _) = watch::channel(inner.image.clone());
        Ok(Self { inner: Arc::new(Mutex::new(inner)), image_tx: Arc::new(image_tx) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The image as of the last applied entry. Cheap: a reference count.
    pub fn image(&self) -> Arc<MetadataImage> {
        // The watch channel's read lock, not the state machine's mutex: brokers read the
        // image on every produce and fetch.
        self.image_tx.borrow().clone()
    }

    /// A receiver that sees every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_tx.subscribe()
    }

    /// The last applied log id and the voters as of it.
    pub fn applied(&self) -> (Option<LogId>, StoredMembership) {
        let inner = self.lock();
        (inner.applied, inner.membership.clone())
    }

    fn install(&self, meta: SnapshotMeta, image: MetadataImage, bytes: &[u8]) -> Result<(), QuorumError> {
        let dir = self.lock().dir.clone();
        let path = checkpoint::store(&dir, meta.last_log_id.as_ref(), bytes)?;
        let image = Arc::new(image);
        {
            let mut inner = self.lock();
            inner.image = image.clone();
            inner.applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.current = Some((meta, path));
        }
        self.image_tx.send_replace(image);
        Ok(())
    }
}

/// Builds a checkpoint of the image as it was when the builder was made; apply goes on
/// meanwhile (images are immutable, so the view is consistent).
#[derive(Debug)]
pub struct CheckpointBuilder {
    machine: MetadataStateMachine,
    meta: SnapshotMeta,
    image: Arc<MetadataImage>,
}

impl RaftSnapshotBuilder<TypeConfig> for CheckpointBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, std::io::Error> {
        // A snapshot installed meanwhile is newer than this view: it stays the current one.
        let newer = self.machine.lock().current.clone().filter(|(m, _)| m.last_log_id > self.meta.last_log_id);
        if let Some((meta, path)) = newer {
            let bytes = blocking(|| std::fs::read(&path))?;
            return Ok(Snapshot { meta, snapshot: std::io::Cursor::new(bytes) });
        }
        let bytes = blocking(|| checkpoint::encode(&self.meta, &self.image)).map_err(to_io)?;
        let dir = self.machine.lock().dir.clone();
        let path = blocking(|| checkpoint::store(&dir, self.meta.last_log_id.as_ref(), &bytes)).map_err(to_io)?;
        {
            let mut inner = self.machine.lock();
            let newer = inner.current.as_ref().is_none_or(|(m, _)| m.last_log_id <= self.meta.last_log_id);
            if newer {
                inner.current = Some((self.meta.clone(), path));
            }
        }
        tracing::debug!(last = ?self.meta.last_log_id, bytes = bytes.len(), "metadata snapshot written");
        Ok(Snapshot { meta: self.meta.clone(), snapshot: std::io::Cursor::new(bytes) })
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = CheckpointBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), std::io::Error> {
        Ok(self.applied())
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), std::io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, std::io::Error>> + Unpin + OptionalSend,
    {
        let mut image = MetadataImage::clone(&self.image());
        let mut responders = Vec::new();
        let (mut applied, mut membership) = self.applied();
        while let Some((entry, responder)) = entries.try_next().await? {
            let offset = i64::try_from(entry.log_id.index).unwrap_or(i64::MAX);
            match &entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(change) => {
                    for record in &change.records {
                        image.replay(offset, record);
                    }
                }
                EntryPayload::Membership(m) => membership = StoredMembership::new(Some(entry.log_id), m.clone()),
            }
            applied = Some(entry.log_id);
            responders.extend(responder);
        }
        let image = Arc::new(image);
        {
            let mut inner = self.lock();
            inner.image = image.clone();
            inner.applied = applied;
            inner.membership = membership;
        }
        self.image_tx.send_replace(image);
        // Answer the proposers only once the image they will read holds their change.
        for responder in responders {
            responder.send(());
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let inner = self.lock();
        let meta = SnapshotMeta { last_log_id: inner.applied, last_membership: inner.membership.clone() };
        CheckpointBuilder { machine: self.clone(), meta, image: inner.image.clone() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> Result<(), std::io::Error> {
        let bytes = snapshot.into_inner();
        let loaded = blocking(|| checkpoint::decode(&bytes)).map_err(to_io)?;
        if loaded.meta.last_log_id != meta.last_log_id {
            return Err(to_io(format!(
                "snapshot data covers {:?}, its metadata says {:?}",
                loaded.meta.last_log_id, meta.last_log_id
            )));
        }
        blocking(|| self.install(meta.clone(), loaded.image, &bytes)).map_err(to_io)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, std::io::Error> {
        let Some((meta, path)) = self.lock().current.clone() else { return Ok(None) };
        let bytes = blocking(|| std::fs::read(&path))?;
        Ok(Some(Snapshot { meta, snapshot: std::io::Cursor::new(bytes) }))
    }
}
