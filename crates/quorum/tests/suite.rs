//! openraft's storage conformance suite against Gregor's metadata log store (segment
//! files + quorum-state) and state machine (image + checkpoint files), each test on a
//! fresh directory of a real disk. Re-run on every openraft upgrade.
#![allow(unreachable_pub)]

use gregor_quorum::{MetadataLogStore, MetadataStateMachine, TypeConfig};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;

struct DirBuilder;

impl StoreBuilder<TypeConfig, MetadataLogStore, MetadataStateMachine, tempfile::TempDir> for DirBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, MetadataLogStore, MetadataStateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = MetadataLogStore::open(dir.path(), 0).expect("log opens");
        let machine = MetadataStateMachine::open(dir.path()).expect("state machine opens");
        Ok((dir, log, machine))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_store_passes_openraft_storage_suite() {
    Suite::test_all(DirBuilder).await.expect("openraft storage suite");
}
