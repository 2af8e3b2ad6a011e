//! Where a follower cuts its log when a leader epoch begins (KIP-101, KIP-279; Kafka's
//! `AbstractFetcherThread.getOffsetTruncationState`).
//!
//! The follower asks the leader (OffsetForLeaderEpoch) where its latest epoch ends in the
//! leader's log. The leader answers with the largest epoch it has at or below that one
//! and the offset where it ends. The follower keeps what both logs agree on:
//!
//! ```text
//!  leader:   e1 e1 e1 e3 e3            answer for e2: (e1, end 3)
//!  follower: e1 e1 e1 e2 e2 e2         its own end of e1 is 3 → truncate to 3
//! ```
//!
//! When the leader's epoch is one the follower never had, the follower cuts to the end
//! of its own largest epoch below it and asks again with that epoch.

use crate::{UNDEFINED_EPOCH, UNDEFINED_OFFSET};

/// The follower's next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Cut the log at this offset (nothing to cut when it is the log end offset), then
    /// fetch from there.
    Complete(i64),
    /// Cut here, then ask the leader again with the latest epoch left.
    Retry(i64),
}

/// The follower's state for the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerLog {
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// `(epoch, end offset)` of the follower's largest epoch at or below the leader's
    /// answered epoch, from its own epoch cache; `None` when it has none.
    pub end_for_leader_epoch: Option<(i32, i64)>,
}

/// Decides the truncation from the leader's `(epoch, end offset)` answer.
pub fn decide(leader_answer: (i32, i64), follower: FollowerLog) -> Truncation {
    let (leader_epoch, leader_end) = leader_answer;
    let end = follower.log_end_offset;
    if leader_end == UNDEFINED_OFFSET {
        // The leader has no epoch at or below the follower's: only what was committed
        // (below the follower's high watermark) is sure to be on the leader; the fetch
        // from there finds out the rest (OFFSET_OUT_OF_RANGE if the leader has less).
        return Truncation::Complete(follower.high_watermark.min(end));
    }
    if leader_epoch == UNDEFINED_EPOCH {
        return Truncation::Complete(leader_end.min(end));
    }
    match follower.end_for_leader_epoch {
        Some((epoch, own_end)) if epoch != leader_epoch => Truncation::Retry(own_end.min(end)),
        Some((_, own_end)) => Truncation::Complete(own_end.min(leader_end).min(end)),
        None => Truncation::Complete(leader_end.min(end)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follower(end: i64, hw: i64, own: Option<(i32, i64)>) -> FollowerLog {
        FollowerLog { log_end_offset: end, high_watermark: hw, end_for_leader_epoch: own }
    }

    #[test]
    fn given_kip101_divergence_should_cut_the_tail_the_leader_never_had() {
        // KIP-101's example: the follower wrote offsets 3..6 in epoch 2, the leader (who
        // never saw epoch 2) has epoch 1 up to 3, then epoch 3.
        assert_eq!(decide((1, 3), follower(6, 2, Some((1, 3)))), Truncation::Complete(3));
    }

    #[test]
    fn given_matching_logs_should_keep_everything() {
        assert_eq!(decide((4, 10), follower(10, 8, Some((4, 10)))), Truncation::Complete(10));
        // The leader wrote more in that epoch: nothing to cut, fetch the rest.
        assert_eq!(decide((4, 15), follower(10, 8, Some((4, 10)))), Truncation::Complete(10));
    }

    #[test]
    fn given_kip279_fast_failovers_should_retry_with_an_older_epoch() {
        // KIP-279: the leader's answer names epoch 2, which the follower never had (it
        // has 1 then 3): cut to where its epoch 1 ends and ask again with epoch 1.
        assert_eq!(decide((2, 7), follower(9, 4, Some((1, 5)))), Truncation::Retry(5));
    }

    #[test]
    fn given_leader_without_epochs_should_fall_back_to_the_high_watermark() {
        assert_eq!(decide((UNDEFINED_EPOCH, UNDEFINED_OFFSET), follower(9, 4, None)), Truncation::Complete(4));
    }

    #[test]
    fn given_follower_without_epochs_should_cut_to_the_leader_end() {
        assert_eq!(decide((3, 5), follower(9, 4, None)), Truncation::Complete(5));
        assert_eq!(decide((3, 12), follower(9, 4, None)), Truncation::Complete(9));
    }
}
