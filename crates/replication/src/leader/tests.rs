use super::*;

const LAG: i64 = 30_000;
const ANY: &dyn Fn(i32, i64) -> bool = &|_, _| true;

fn assignment(isr: &[i32]) -> Assignment {
    Assignment { leader_epoch: 3, partition_epoch: 7, replicas: vec![1, 2, 3], isr: isr.to_vec() }
}

/// Broker 1 leads from offset 10 (high watermark 10), min.insync.replicas 2.
fn leader(isr: &[i32]) -> LeaderState {
    LeaderState::new(1, &assignment(isr), (10, 10), (2, LAG), 0)
}

#[test]
fn given_followers_fetching_should_advance_high_watermark_to_the_lowest_isr_offset() {
    let mut state = leader(&[1, 2, 3]);
    // The leader appended up to 20; only follower 2 has fetched in this epoch.
    assert!(!state.follower_fetched(2, 102, 20, 20, 5));
    assert_eq!(state.high_watermark(), 10, "follower 3's position in this epoch is unknown");
    assert!(state.follower_fetched(3, 103, 15, 20, 6));
    assert_eq!(state.high_watermark(), 15);
    assert!(state.follower_fetched(3, 103, 20, 20, 7));
    assert_eq!(state.high_watermark(), 20);
    // A follower behind the high watermark (a retried old fetch) never moves it back.
    assert!(!state.follower_fetched(3, 103, 12, 20, 8));
    assert_eq!(state.high_watermark(), 20);
}

#[test]
fn given_isr_below_min_insync_should_not_advance_high_watermark() {
    // KIP-966 part 1: with only the leader in sync nothing is acknowledged for acks=all.
    let mut state = leader(&[1]);
    assert!(state.is_under_min_isr());
    assert!(!state.maybe_advance_high_watermark(30, 1));
    assert_eq!(state.ack(30), AckOutcome::Pending);
    assert_eq!(state.high_watermark(), 10);
}

#[test]
fn given_lagging_follower_should_propose_shrink_and_hold_hw_until_committed() {
    let mut state = leader(&[1, 2, 3]);
    state.follower_fetched(2, 102, 20, 20, 1_000);
    state.follower_fetched(3, 103, 10, 20, 1_000);
    // Follower 3 stops fetching.
    state.follower_fetched(2, 102, 40, 40, LAG + 2_000);
    let change = state.isr_change(40, (LAG + 2_000, 5_000), ANY).expect("3 lags");
    assert_eq!(change.new_isr, vec![(1, -1), (2, 102)]);
    assert_eq!((change.leader_epoch, change.partition_epoch), (3, 7));
    // The maximal ISR still has 3 until the controller agrees.
    assert!(!state.maybe_advance_high_watermark(40, LAG + 2_001));
    assert_eq!(state.isr_change(40, (LAG + 2_002, 5_000), ANY), None, "one change in flight");
    state.update(&Assignment { partition_epoch: 8, ..assignment(&[1, 2]) }, (2, LAG));
    assert!(state.maybe_advance_high_watermark(40, LAG + 2_003));
    assert_eq!(state.high_watermark(), 40);
}

#[test]
fn given_follower_reaching_hw_and_epoch_start_should_propose_expand() {
    let mut state = leader(&[1, 2]);
    state.follower_fetched(2, 102, 10, 10, 1);
    // Below the start of the leader's epoch (10) it may still hold a diverging tail.
    state.follower_fetched(3, 103, 8, 10, 2);
    assert_eq!(state.isr_change(10, (3, 5_000), ANY), None);
    state.follower_fetched(3, 103, 10, 10, 4);
    // Not while the controller would refuse it (fenced, or another incarnation).
    assert_eq!(state.isr_change(10, (5, 5_000), &|b, _| b != 3), None);
    let change = state.isr_change(10, (5, 5_000), ANY).expect("3 caught up");
    assert_eq!(change.new_isr, vec![(1, -1), (2, 102), (3, 103)]);
    // A follower that stopped fetching long ago does not rejoin on an old position.
    state.isr_change_failed();
    assert_eq!(state.isr_change(10, (LAG + 10, 5_000), ANY), None);
}

#[test]
fn given_unanswered_proposal_should_propose_again_after_retry_interval() {
    let mut state = leader(&[1, 2]);
    state.follower_fetched(2, 102, 10, 10, 1);
    state.follower_fetched(3, 103, 10, 10, 1);
    assert!(state.isr_change(10, (2, 5_000), ANY).is_some());
    assert!(state.isr_change(10, (3, 5_000), ANY).is_none());
    assert!(state.isr_change(10, (5_003, 5_000), ANY).is_some());
    state.isr_change_failed();
    assert!(state.isr_change(10, (5_004, 5_000), ANY).is_some());
}

#[test]
fn given_produce_should_be_acknowledged_once_hw_passes_it() {
    let mut state = leader(&[1, 2]);
    assert_eq!(state.ack(15), AckOutcome::Pending);
    state.follower_fetched(2, 102, 15, 15, 1);
    assert_eq!(state.ack(15), AckOutcome::Done);
    // The ISR shrank below min.insync.replicas after the records were replicated.
    state.update(&Assignment { partition_epoch: 8, ..assignment(&[1]) }, (2, LAG));
    assert_eq!(state.ack(15), AckOutcome::NotEnoughReplicasAfterAppend);
}

#[test]
fn given_zombie_leader_whose_followers_moved_on_should_never_acknowledge() {
    // A stopped (SIGSTOP) leader resumes in its old epoch; its followers fetch from the
    // new leader now (its epoch fences their fetches), so its HW cannot pass its appends.
    let mut state = leader(&[1, 2, 3]);
    assert!(!state.maybe_advance_high_watermark(25, LAG * 10));
    assert_eq!(state.ack(25), AckOutcome::Pending);
}

#[test]
fn given_unrelated_metadata_update_should_keep_the_pending_expansion_in_the_maximal_isr() {
    // Follower 3 is proposed into the ISR; until the controller decides, the high
    // watermark must wait for it, or it could join missing acknowledged records.
    let mut state = leader(&[1, 2]);
    state.follower_fetched(2, 102, 10, 10, 1);
    state.follower_fetched(3, 103, 10, 10, 1);
    assert!(state.isr_change(10, (2, 5_000), ANY).is_some());
    state.update(&assignment(&[1, 2]), (2, LAG)); // the same partition epoch again
    state.follower_fetched(2, 102, 20, 20, 3);
    assert_eq!(state.high_watermark(), 10, "3 is still in the maximal ISR");
    state.follower_fetched(3, 103, 20, 20, 4);
    assert_eq!(state.high_watermark(), 20);
}

/// Finding 3 of the replication simulation (crates/sim, seed 2906): an expansion whose
/// answer was lost may have been applied by the controller, so it is sent again as it
/// was, and its member keeps holding the high watermark back, even once that member has
/// fallen behind (it truncated, say); only newer metadata ends it.
#[test]
fn given_unanswered_expansion_should_resend_it_and_keep_its_member_in_the_maximal_isr() {
    let mut state = leader(&[1, 2]);
    state.follower_fetched(2, 102, 10, 10, 1);
    state.follower_fetched(3, 103, 10, 10, 1);
    let first = state.isr_change(10, (2, 5_000), ANY).expect("3 caught up");
    // 3 truncates and fetches from behind; 2 moves ahead with the leader.
    state.follower_fetched(3, 103, 4, 20, 3);
    state.follower_fetched(2, 102, 20, 20, 3);
    assert_eq!(state.high_watermark(), 10, "3 is in the maximal ISR: the HW waits for it");
    let resent = state.isr_change(20, (5_010, 5_000), ANY).expect("resent after the retry interval");
    assert_eq!(resent, first, "the same proposal, not one recomputed without 3");
    state.update(&Assignment { partition_epoch: 10, ..assignment(&[1, 2]) }, (2, LAG));
    assert_eq!(state.isr(), &[1, 2], "the metadata decides");
}
