//! Contract: the log manager reopens every partition of a log dir with the recovery
//! points, log start offsets and high watermarks it checkpointed, marks clean shutdowns, and deletes
//! partitions by renaming their directory to `*-delete` before removing it.

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use gregor_log::{LogConfig, LogManager};
use gregor_protocol::TopicPartition;

fn config(_: &TopicPartition) -> LogConfig {
    LogConfig { retention_ms: 3_600_000, ..small_segments() }
}

#[test]
fn given_partitions_when_shut_down_and_reopened_should_restore_offsets_from_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let a = TopicPartition::new("orders", 0);
    let b = TopicPartition::new("my-topic", 3);
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    assert!(!manager.had_clean_shutdown());
    for (tp, batches) in [(&a, 30), (&b, 3)] {
        let log = manager.get_or_create(tp, config(tp), "topic-id-1", 0).unwrap();
        let mut log = log.lock().unwrap();
        for i in 0..batches {
            log.append_as_leader(&mut plain(2, 1_000 + i), 0, 1_000).unwrap();
        }
        let end = log.log_end_offset();
        log.update_high_watermark(end);
    }
    assert!(Arc::ptr_eq(&manager.get_or_create(&a, config(&a), "x", 0).unwrap(), &manager.get(&a).unwrap()));
    manager.get(&a).unwrap().lock().unwrap().increment_log_start_offset(4).unwrap();
    manager.shutdown().unwrap();
    let recovery = fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(recovery, "0\n2\nmy-topic 3 6\norders 0 60\n");
    let starts = fs::read_to_string(dir.path().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(starts, "0\n2\nmy-topic 3 0\norders 0 4\n");
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    drop(manager);

    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    assert!(manager.had_clean_shutdown());
    assert!(!dir.path().join(".kafka_cleanshutdown").exists());
    assert_eq!(manager.partitions(), vec![b.clone(), a.clone()]);
    let log = manager.get(&a).unwrap();
    let log = log.lock().unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.recovery_point()), (4, 60, 60));
    assert_eq!(log.topic_id().unwrap().as_deref(), Some("topic-id-1"));
    assert_eq!(read_all(&log, 4).len(), 56);
}

#[test]
fn given_crash_without_checkpoint_when_reopened_should_recover_everything() {
    let dir = tempfile::tempdir().unwrap();
    let a = TopicPartition::new("orders", 1);
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    let log = manager.get_or_create(&a, config(&a), "id", 0).unwrap();
    log.lock().unwrap().append_as_leader(&mut plain(3, 1), 0, 0).unwrap();
    drop(log);
    drop(manager);
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    assert_eq!(manager.get(&a).unwrap().lock().unwrap().log_end_offset(), 3);
}

#[test]
fn given_partition_when_deleted_should_remove_its_directory_and_refuse_appends() {
    let dir = tempfile::tempdir().unwrap();
    let a = TopicPartition::new("orders", 0);
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    let log = manager.get_or_create(&a, config(&a), "id", 0).unwrap();
    log.lock().unwrap().append_as_leader(&mut plain(1, 1), 0, 0).unwrap();
    let plan = log.lock().unwrap().read(0, 100, i64::MAX).unwrap();
    manager.delete(&a).unwrap();
    assert!(manager.get(&a).is_none());
    assert!(!dir.path().join("orders-0").exists());
    assert_eq!(decode_offsets(&plan.read_bytes().unwrap()).len(), 1, "a planned read still works");
    assert!(log.lock().unwrap().append_as_leader(&mut plain(1, 1), 0, 0).is_err());
    manager.delete(&a).unwrap();
    manager.shutdown().unwrap();
}

#[test]
fn given_leftover_delete_dirs_and_stray_files_when_opened_should_clean_and_ignore() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("orders-0.0123abcd-delete")).unwrap();
    fs::write(dir.path().join("orders-0.0123abcd-delete/00000000000000000000.log"), b"x").unwrap();
    fs::create_dir_all(dir.path().join("not a partition")).unwrap();
    fs::write(dir.path().join("recovery-point-offset-checkpoint"), "garbage").unwrap();
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    assert!(manager.partitions().is_empty());
    assert!(!dir.path().join("orders-0.0123abcd-delete").exists());
    manager.checkpoint().unwrap();
}

#[test]
fn given_expired_data_when_manager_runs_retention_and_flush_should_apply_to_all() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    for p in 0..3 {
        let tp = TopicPartition::new("t", p);
        let log = manager.get_or_create(&tp, config(&tp), "id", 0).unwrap();
        let mut log = log.lock().unwrap();
        for i in 0..30 {
            log.append_as_leader(&mut plain(2, i), 0, 0).unwrap();
        }
        log.update_high_watermark(60);
    }
    assert!(manager.run_retention(10 * 3_600_000) >= 3);
    manager.flush_due(10 * 3_600_000);
    for tp in manager.partitions() {
        assert_eq!(manager.get(&tp).unwrap().lock().unwrap().log_start_offset(), 60);
    }
}

#[test]
fn given_high_watermarks_below_log_end_when_reopened_should_restore_them_not_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (TopicPartition::new("replicated", 0), TopicPartition::new("replicated", 1));
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    for (tp, hw) in [(&a, 6), (&b, 20)] {
        let log = manager.get_or_create(tp, config(tp), "id", 0).unwrap();
        let mut log = log.lock().unwrap();
        for i in 0..10 {
            log.append_as_leader(&mut plain(2, 1_000 + i), 0, 1_000).unwrap();
        }
        // What a follower knows committed lags its log end; `b` asks for more than it has.
        log.update_high_watermark(hw);
    }
    manager.checkpoint_high_watermarks().unwrap();
    let hws = fs::read_to_string(dir.path().join("replication-offset-checkpoint")).unwrap();
    assert_eq!(hws, "0\n2\nreplicated 0 6\nreplicated 1 20\n");
    // A partition created after the last checkpoint reopens at its log start.
    let c = TopicPartition::new("replicated", 2);
    let log = manager.get_or_create(&c, config(&c), "id", 0).unwrap();
    log.lock().unwrap().append_as_leader(&mut plain(2, 1_000), 0, 1_000).unwrap();
    drop((log, manager));

    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    let hw = |tp: &TopicPartition| manager.get(tp).unwrap().lock().unwrap().high_watermark();
    assert_eq!((hw(&a), hw(&b), hw(&c)), (6, 20, 0));
}

#[test]
fn given_a_dir_without_high_watermark_checkpoint_when_reopened_should_keep_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let a = TopicPartition::new("old", 0);
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    let log = manager.get_or_create(&a, config(&a), "id", 0).unwrap();
    log.lock().unwrap().append_as_leader(&mut plain(3, 1_000), 0, 1_000).unwrap();
    drop((log, manager));
    let manager = LogManager::open(dir.path().to_path_buf(), config, 0).unwrap();
    assert_eq!(manager.get(&a).unwrap().lock().unwrap().high_watermark(), 3);
}
