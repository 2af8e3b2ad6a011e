//! The transaction state machine: lifecycle, fencing, timeouts and replay.

use super::*;

const TXN: &str = "app-1";

fn shard() -> TransactionCoordinatorShard {
    TransactionCoordinatorShard::new(TxnConfig::default())
}

fn none() -> ProducerIdAndEpoch {
    ProducerIdAndEpoch { producer_id: -1, producer_epoch: -1 }
}

fn init(s: &mut TransactionCoordinatorShard, now: i64) -> (Result<ProducerIdAndEpoch, ResponseError>, TxnStep) {
    let mut next = 1000;
    s.init_producer_id(
        TXN,
        60_000,
        none(),
        &mut || {
            next += 1;
            Ok(next)
        },
        now,
    )
}

fn tp(p: i32) -> (String, i32) {
    ("orders".to_owned(), p)
}

/// Replays every record of `steps` into a fresh shard.
fn replayed(steps: &[TxnStep]) -> TransactionCoordinatorShard {
    let mut s = shard();
    for r in steps.iter().flat_map(|s| &s.records) {
        s.replay(&r.key, r.value.as_deref()).unwrap();
    }
    s
}

#[test]
fn given_new_id_when_committing_should_go_through_prepare_to_complete() {
    let mut s = shard();
    let (id, step0) = init(&mut s, 1);
    let id = id.unwrap();
    assert_eq!((id.producer_id, id.producer_epoch), (1001, 0));
    let step1 = s.add_partitions(TXN, 1001, 0, &[tp(0), tp(1)], 2).unwrap();
    assert_eq!(s.get(TXN).unwrap().state, TxnState::Ongoing);
    assert!(s.add_partitions(TXN, 1001, 0, &[tp(1)], 3).unwrap().records.is_empty(), "already in");
    assert_eq!(s.verify(TXN, 1001, 0, &tp(1)), Ok(()));
    assert_eq!(s.verify(TXN, 1001, 0, &tp(2)), Err(ResponseError::InvalidTxnState));
    let step2 = s.end_txn(TXN, 1001, 0, true, 4).unwrap();
    let markers = step2.markers.clone().unwrap();
    assert!(markers.commit);
    assert_eq!(markers.partitions, vec![tp(0), tp(1)]);
    assert_eq!(s.end_txn(TXN, 1001, 0, true, 5), Err(ResponseError::ConcurrentTransactions));
    let step3 = s.markers_written(TXN, 0, 6);
    assert_eq!(s.get(TXN).unwrap().state, TxnState::CompleteCommit);
    assert!(s.end_txn(TXN, 1001, 0, true, 7).unwrap().records.is_empty(), "a retried commit succeeds");
    assert_eq!(s.end_txn(TXN, 1001, 0, false, 7), Err(ResponseError::InvalidTxnState));
    let loaded = replayed(&[step0, step1, step2, step3]);
    assert_eq!(loaded.get(TXN), s.get(TXN).map(|m| TxnMetadata { last_producer_epoch: -1, ..m.clone() }).as_ref());
    assert!(loaded.on_loaded().is_empty());
}

#[test]
fn given_second_producer_when_initialised_should_fence_and_abort_the_first() {
    let mut s = shard();
    let first = init(&mut s, 1).0.unwrap();
    s.add_partitions(TXN, first.producer_id, 0, &[tp(0)], 2).unwrap();
    let (outcome, step) = init(&mut s, 3);
    assert_eq!(outcome, Err(ResponseError::ConcurrentTransactions));
    let markers = step.markers.unwrap();
    assert!(!markers.commit);
    assert_eq!(markers.producer_epoch, 1, "the abort is written with the bumped epoch");
    assert_eq!(s.add_partitions(TXN, first.producer_id, 0, &[tp(1)], 4), Err(ResponseError::ProducerFenced));
    s.markers_written(TXN, 1, 5);
    let second = init(&mut s, 6).0.unwrap();
    assert_eq!((second.producer_id, second.producer_epoch), (first.producer_id, 2));
    assert_eq!(s.end_txn(TXN, first.producer_id, 0, true, 7), Err(ResponseError::ProducerFenced));
}

#[test]
fn given_timed_out_transaction_when_ticked_should_abort_it() {
    let mut s = shard();
    let id = init(&mut s, 0).0.unwrap();
    s.add_partitions(TXN, id.producer_id, 0, &[tp(0)], 1_000).unwrap();
    assert!(s.on_tick(60_000).is_empty());
    let steps = s.on_tick(61_001);
    assert_eq!(steps.len(), 1);
    assert!(!steps[0].markers.as_ref().unwrap().commit);
    assert_eq!(s.get(TXN).unwrap().state, TxnState::PrepareAbort);
    assert_eq!(s.on_tick(61_002)[0].markers.as_ref().map(|m| m.commit), Some(false), "markers asked again");
    s.markers_written(TXN, 1, 61_003);
    assert_eq!(s.end_txn(TXN, id.producer_id, 0, true, 61_004), Err(ResponseError::ProducerFenced));
}

#[test]
fn given_prepare_state_when_loaded_should_ask_for_markers() {
    let mut s = shard();
    let id = init(&mut s, 0).0.unwrap();
    let a = s.add_partitions(TXN, id.producer_id, 0, &[tp(0)], 1).unwrap();
    let b = s.end_txn(TXN, id.producer_id, 0, false, 2).unwrap();
    let loaded = replayed(&[a, b]);
    let plans = loaded.on_loaded();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].partitions, vec![tp(0)]);
}

#[test]
fn given_bad_requests_should_answer_kafka_errors() {
    let mut s = shard();
    let mut alloc = || Ok(1);
    let (out, _) = s.init_producer_id(TXN, 900_001, none(), &mut alloc, 0);
    assert_eq!(out, Err(ResponseError::InvalidTransactionTimeout));
    assert_eq!(s.end_txn(TXN, 1, 0, true, 0), Err(ResponseError::InvalidProducerIdMapping));
    init(&mut s, 0).0.unwrap();
    assert_eq!(s.end_txn(TXN, 1001, 0, true, 0), Err(ResponseError::InvalidTxnState), "nothing to commit");
    assert_eq!(s.add_partitions(TXN, 7, 0, &[tp(0)], 0), Err(ResponseError::InvalidProducerIdMapping));
    let expired = s.on_tick(604_800_001);
    assert_eq!(expired[0].records[0].value, None);
    assert!(s.get(TXN).is_none());
}

#[test]
fn given_garbage_records_when_replayed_should_error_not_panic() {
    let mut s = shard();
    for len in 0..40u8 {
        let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
        let _ = s.replay(&bytes, Some(&bytes));
        let _ = s.replay(&records::key("x"), Some(&bytes));
    }
}
