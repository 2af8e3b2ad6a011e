//! The fetching side of a fetch session (KIP-227; Kafka's client `FetchSessionHandler`),
//! which a follower's fetcher keeps per connection to a leader so that an idle follower
//! costs little: the first Fetch (epoch 0) names every partition and opens a session;
//! the next ones (epochs 1, 2, ...) name only the partitions that are new or whose
//! position changed, and list the ones no longer wanted as forgotten. The leader keeps
//! the rest at the position last sent, reads them on every request, and answers only
//! partitions with news.
//!
//! Any top-level error (`FETCH_SESSION_ID_NOT_FOUND`, `INVALID_FETCH_SESSION_EPOCH`, a
//! lost connection) drops the session: the next request is a full one again. A leader
//! that answers a full request with session id 0 keeps no session for us (its cache is
//! full); every request then stays full.

use std::collections::BTreeMap;

/// What a Fetch tells the leader about one partition; a change is resent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    pub fetch_offset: i64,
    pub log_start_offset: i64,
    pub current_leader_epoch: i32,
    pub max_bytes: i32,
}

/// One Fetch to send: its session fields, and which partitions it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPlan<K> {
    pub session_id: i32,
    pub epoch: i32,
    /// Partitions the request names, with their positions (all of them in a full request).
    pub send: Vec<(K, FetchPosition)>,
    /// Partitions of the session no longer wanted (`forgotten_topics_data`).
    pub forgotten: Vec<K>,
}

impl<K> FetchPlan<K> {
    /// Whether the request names every partition (epoch 0).
    pub fn is_full(&self) -> bool {
        self.epoch == 0
    }
}

/// The session of one connection, as its fetcher knows it.
#[derive(Debug, Clone)]
pub struct FetchSessionHandler<K> {
    session_id: i32,
    /// 0: no session, the next request is full (and opens one).
    next_epoch: i32,
    /// The partitions of the session at the positions the leader holds.
    session: BTreeMap<K, FetchPosition>,
    /// What the session becomes if the request in flight is answered without error.
    in_flight: Option<BTreeMap<K, FetchPosition>>,
}

impl<K: Ord + Clone> Default for FetchSessionHandler<K> {
    fn default() -> Self {
        Self { session_id: 0, next_epoch: 0, session: BTreeMap::new(), in_flight: None }
    }
}

impl<K: Ord + Clone> FetchSessionHandler<K> {
    /// The next request for the partitions `wanted` now, at their positions.
    pub fn build(&mut self, wanted: BTreeMap<K, FetchPosition>) -> FetchPlan<K> {
        let plan = if self.next_epoch == 0 {
            FetchPlan {
                session_id: 0,
                epoch: 0,
                send: wanted.iter().map(|(k, p)| (k.clone(), *p)).collect(),
                forgotten: Vec::new(),
            }
        } else {
            let changed = wanted.iter().filter(|(k, p)| self.session.get(*k) != Some(*p));
            FetchPlan {
                session_id: self.session_id,
                epoch: self.next_epoch,
                send: changed.map(|(k, p)| (k.clone(), *p)).collect(),
                forgotten: self.session.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect(),
            }
        };
        self.in_flight = Some(wanted);
        plan
    }

    /// The leader's answer to the last request: its top-level error code and session id.
    /// Returns whether the session goes on (false: the next request is full).
    pub fn handle_response(&mut self, error_code: i16, session_id: i32) -> bool {
        let Some(sent) = self.in_flight.take() else { return false };
        if error_code != 0 {
            self.reset();
            return false;
        }
        if self.next_epoch == 0 {
            if session_id == 0 {
                return false; // the leader keeps no session for us: stay full
            }
            self.session_id = session_id;
        }
        self.next_epoch = next_epoch(self.next_epoch);
        self.session = sent;
        true
    }

    /// Forgets the session (a failed request, a new connection).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Kafka's `FetchMetadata.nextEpoch`: 1, 2, ... and back to 1 after `i32::MAX`.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(fetch_offset: i64) -> FetchPosition {
        FetchPosition { fetch_offset, log_start_offset: 0, current_leader_epoch: 3, max_bytes: 1 << 20 }
    }

    fn wanted(parts: &[(&'static str, i64)]) -> BTreeMap<&'static str, FetchPosition> {
        parts.iter().map(|(k, o)| (*k, at(*o))).collect()
    }

    #[test]
    fn given_no_session_should_send_everything_then_only_changes() {
        let mut s = FetchSessionHandler::default();
        let first = s.build(wanted(&[("a", 10), ("b", 20)]));
        assert!(first.is_full());
        assert_eq!((first.session_id, first.send.len()), (0, 2));
        assert!(s.handle_response(0, 77));

        // Nothing moved: an empty incremental request keeps the long poll.
        let idle = s.build(wanted(&[("a", 10), ("b", 20)]));
        assert_eq!((idle.session_id, idle.epoch), (77, 1));
        assert!(idle.send.is_empty() && idle.forgotten.is_empty());
        assert!(s.handle_response(0, 77));

        // `a` appended, `b` no longer followed, `c` new.
        let next = s.build(wanted(&[("a", 15), ("c", 0)]));
        assert_eq!(next.epoch, 2);
        assert_eq!(next.send, vec![("a", at(15)), ("c", at(0))]);
        assert_eq!(next.forgotten, vec!["b"]);
    }

    #[test]
    fn given_a_session_error_should_start_over_with_a_full_request() {
        let mut s = FetchSessionHandler::default();
        let _ = s.build(wanted(&[("a", 1)]));
        assert!(s.handle_response(0, 5));
        let _ = s.build(wanted(&[("a", 2)]));
        assert!(!s.handle_response(70, 0), "FETCH_SESSION_ID_NOT_FOUND");
        let again = s.build(wanted(&[("a", 2)]));
        assert!(again.is_full());
        assert_eq!(again.send, vec![("a", at(2))]);
    }

    #[test]
    fn given_a_leader_without_a_session_slot_should_stay_full() {
        let mut s = FetchSessionHandler::default();
        let _ = s.build(wanted(&[("a", 1)]));
        assert!(!s.handle_response(0, 0));
        assert!(s.build(wanted(&[("a", 1)])).is_full());
    }

    #[test]
    fn given_a_changed_epoch_should_resend_the_partition() {
        let mut s = FetchSessionHandler::default();
        let _ = s.build(wanted(&[("a", 1)]));
        assert!(s.handle_response(0, 5));
        let moved = FetchPosition { current_leader_epoch: 4, ..at(1) };
        let plan = s.build([("a", moved)].into_iter().collect());
        assert_eq!(plan.send, vec![("a", moved)]);
    }

    #[test]
    fn given_the_last_epoch_should_wrap_to_one() {
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(1), 2);
    }
}
