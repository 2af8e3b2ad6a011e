//! The `quorum-state` file in `__cluster_metadata-0/`, as KRaft keeps one: this node's
//! vote (epoch and whom it voted for), plus what openraft asks to be durable beside the
//! log: the last committed and last purged log ids. Written whole to a temporary file,
//! fsynced and renamed over the old one, so a crash leaves the old or the new state.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{log_id, LogId, QuorumError, Vote};

pub(crate) const FILE_NAME: &str = "quorum-state";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogIdJson {
    pub(crate) epoch: u64,
    pub(crate) offset: u64,
}

impl LogIdJson {
    pub(crate) fn of(id: &LogId) -> Self {
        Self { epoch: id.leader_id.term, offset: id.index }
    }

    pub(crate) fn log_id(self) -> LogId {
        log_id(self.epoch, self.offset)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QuorumStateFile {
    /// The current epoch (Raft term) of this node's vote.
    pub(crate) leader_epoch: u64,
    /// Whom this node voted for in that epoch (-1: nobody yet, as KRaft writes it).
    pub(crate) voted_id: i64,
    /// Whether a quorum granted that vote (this node knows the epoch's leader).
    pub(crate) vote_committed: bool,
    pub(crate) committed: Option<LogIdJson>,
    pub(crate) purged: Option<LogIdJson>,
    pub(crate) data_version: u32,
}

impl QuorumStateFile {
    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    /// The stored state, or `None` when the file does not exist (a new log).
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>, QuorumError> {
        let path = Self::path(dir);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| QuorumError::io(&path, std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(QuorumError::io(path, e)),
        }
    }

    pub(crate) fn store(&self, dir: &Path) -> Result<(), QuorumError> {
        let path = Self::path(dir);
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let bytes = serde_json::to_vec(self).map_err(|e| QuorumError::io(&path, std::io::Error::other(e)))?;
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| QuorumError::io(&path, e))
    }

    pub(crate) fn vote(&self) -> Option<Vote> {
        let voted_for = u64::try_from(self.voted_id).ok()?;
        let mut vote = Vote::new(self.leader_epoch, voted_for);
        if self.vote_committed {
            vote = Vote::new_committed(self.leader_epoch, voted_for);
        }
        Some(vote)
    }

    pub(crate) fn set_vote(&mut self, vote: &Vote) {
        self.leader_epoch = vote.leader_id.term;
        self.voted_id = i64::try_from(vote.leader_id.voted_for).unwrap_or(-1);
        self.vote_committed = vote.committed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_state_when_stored_should_load_the_same_vote_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(QuorumStateFile::load(dir.path()).unwrap(), None);
        let mut state = QuorumStateFile { voted_id: -1, ..QuorumStateFile::default() };
        assert_eq!(state.vote(), None);
        state.set_vote(&Vote::new_committed(4, 2));
        state.committed = Some(LogIdJson::of(&log_id(4, 17)));
        state.store(dir.path()).unwrap();
        let loaded = QuorumStateFile::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.vote(), Some(Vote::new_committed(4, 2)));
        assert_eq!(loaded.committed.map(LogIdJson::log_id), Some(log_id(4, 17)));
        let text = fs::read_to_string(QuorumStateFile::path(dir.path())).unwrap();
        assert!(text.contains("\"leaderEpoch\":4") && text.contains("\"votedId\":2"), "{text}");
    }
}
