//! Fetch sessions (KIP-227), as Kafka's `FetchSession` / `FetchSessionCache`: a fetcher
//! that asks for a session (epoch 0) gets an id, and its later requests (epoch 1, 2, ...)
//! name only the partitions whose fetch position changed and the ones it stops fetching;
//! the answers carry only the partitions with news (records, an error, or a moved high
//! watermark, last stable offset or log start). An idle consumer of many partitions, or a
//! follower (cluster part 2), then costs a few bytes per poll instead of the whole list.
//!
//! Pure state: the handler passes the time in, reads the partitions [`FetchSessionCache::begin`]
//! names, and hands the answers to [`FetchSessionCache::finish`].
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions. When it is full a
//! new session takes the place of one unused for `min.incremental.fetch.session.eviction.ms`,
//! else of a less valuable one (a consumer's before a follower's, a smaller before a larger)
//! that has existed that long; otherwise the request is served without a session (id 0),
//! which every client handles by sending full requests.

use std::collections::HashMap;

use gregor_protocol::kafka_protocol::ResponseError;

/// One partition of a session: `(topic name, topic id)` as the request names it (by
/// name before Fetch v13, by id from v13 on) and the partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PartitionKey {
    pub(crate) topic: String,
    pub(crate) topic_id: uuid::Uuid,
    pub(crate) partition: i32,
}

/// What the fetcher asked for one partition, as the request (or the session) holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchPosition {
    pub(crate) fetch_offset: i64,
    pub(crate) max_bytes: i32,
    pub(crate) current_leader_epoch: i32,
}

/// The offsets of one partition in an answer, to tell whether anything changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PartitionNews {
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) log_start_offset: i64,
    pub(crate) has_records: bool,
    pub(crate) error: bool,
}

/// A Fetch request's session fields and partitions.
#[derive(Debug, Clone)]
pub(crate) struct SessionRequest {
    pub(crate) session_id: i32,
    pub(crate) epoch: i32,
    /// Replicas (followers) hold the more valuable sessions.
    pub(crate) privileged: bool,
    pub(crate) partitions: Vec<(PartitionKey, FetchPosition)>,
    pub(crate) forgotten: Vec<PartitionKey>,
}

/// How a request is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionMode {
    /// A full fetch answered with session id 0 (none asked for, or no room).
    Sessionless,
    /// A full fetch that opened session `id`: every partition is answered.
    Full { id: i32 },
    /// An incremental fetch in session `id`: only partitions with news are answered.
    Incremental { id: i32 },
}

impl SessionMode {
    /// The session id of the response.
    pub(crate) fn session_id(self) -> i32 {
        match self {
            Self::Sessionless => 0,
            Self::Full { id } | Self::Incremental { id } => id,
        }
    }
}

/// Kafka's `FINAL_EPOCH`: a full fetch that closes the session it names.
const FINAL_EPOCH: i32 = -1;
/// Kafka's `INITIAL_EPOCH`: a full fetch that asks for a new session.
const INITIAL_EPOCH: i32 = 0;

#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    privileged: bool,
    /// In the order they were added: the fetch reads them in this order.
    partitions: Vec<(PartitionKey, FetchPosition, Option<PartitionNews>)>,
    created_ms: i64,
    last_used_ms: i64,
}

impl Session {
    fn position(&self, key: &PartitionKey) -> Option<usize> {
        self.partitions.iter().position(|(k, _, _)| k == key)
    }
}

/// The broker's fetch sessions.
#[derive(Debug)]
pub(crate) struct FetchSessionCache {
    slots: usize,
    eviction_ms: i64,
    sessions: std::sync::Mutex<(HashMap<i32, Session>, u32)>,
}

impl FetchSessionCache {
    pub(crate) fn new(slots: usize, eviction_ms: i64) -> Self {
        Self { slots, eviction_ms, sessions: std::sync::Mutex::new((HashMap::new(), 0)) }
    }

    /// Applies the request to its session and returns how to serve it and the
    /// partitions to read, in order. Errors are Kafka's `FETCH_SESSION_ID_NOT_FOUND` and
    /// `INVALID_FETCH_SESSION_EPOCH`.
    pub(crate) fn begin(
        &self,
        request: SessionRequest,
        now_ms: i64,
    ) -> Result<(SessionMode, Vec<(PartitionKey, FetchPosition)>), ResponseError> {
        let mut guard = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (sessions, counter) = &mut *guard;
        match request.epoch {
            FINAL_EPOCH | INITIAL_EPOCH => {
                if request.session_id != 0 {
                    let _ = sessions.remove(&request.session_id);
                }
                if request.epoch == FINAL_EPOCH || self.slots == 0 {
                    return Ok((SessionMode::Sessionless, request.partitions));
                }
                let mode = match self.make_room(sessions, request.privileged, request.partitions.len(), now_ms) {
                    true => {
                        let id = new_id(sessions, counter);
                        let partitions = request.partitions.iter().map(|(k, p)| (k.clone(), p.clone(), None)).collect();
                        let session = Session {
                            next_epoch: 1,
                            privileged: request.privileged,
                            partitions,
                            created_ms: now_ms,
                            last_used_ms: now_ms,
                        };
                        let _ = sessions.insert(id, session);
                        let (privileged, partitions) = (request.privileged, request.partitions.len());
                        tracing::debug!(session = id, partitions, privileged, "fetch session opened");
                        SessionMode::Full { id }
                    }
                    false => SessionMode::Sessionless,
                };
                Ok((mode, request.partitions))
            }
            epoch => {
                let session = sessions.get_mut(&request.session_id).ok_or(ResponseError::FetchSessionIdNotFound)?;
                if session.next_epoch != epoch {
                    return Err(ResponseError::InvalidFetchSessionEpoch);
                }
                session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
                session.last_used_ms = now_ms;
                for key in &request.forgotten {
                    if let Some(i) = session.position(key) {
                        let _ = session.partitions.remove(i);
                    }
                }
                for (key, position) in request.partitions {
                    match session.position(&key) {
                        Some(i) => session.partitions[i].1 = position,
                        None => session.partitions.push((key, position, None)),
                    }
                }
                let wanted = session.partitions.iter().map(|(k, p, _)| (k.clone(), p.clone())).collect();
                Ok((SessionMode::Incremental { id: request.session_id }, wanted))
            }
        }
    }

    /// Which of the answered partitions (as `begin` listed them, same order) go into the
    /// response: all of them unless the fetch is incremental, then those with news since
    /// the session last answered them. Records what each partition's answer said.
    pub(crate) fn finish(&self, mode: SessionMode, answered: &[(PartitionKey, PartitionNews)]) -> Vec<bool> {
        let id = match mode {
            SessionMode::Sessionless => return vec![true; answered.len()],
            SessionMode::Full { id } | SessionMode::Incremental { id } => id,
        };
        let mut guard = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(session) = guard.0.get_mut(&id) else { return vec![true; answered.len()] };
        answered
            .iter()
            .map(|(key, news)| {
                let Some(i) = session.position(key) else { return true };
                let last = session.partitions[i].2.replace(*news);
                let changed = news.has_records
                    || news.error
                    || last.is_none_or(|l| {
                        (l.high_watermark, l.last_stable_offset, l.log_start_offset)
                            != (news.high_watermark, news.last_stable_offset, news.log_start_offset)
                    });
                matches!(mode, SessionMode::Full { .. }) || changed
            })
            .collect()
    }

    /// Whether a new session of `size` partitions has a slot, evicting one if allowed.
    fn make_room(&self, sessions: &mut HashMap<i32, Session>, privileged: bool, size: usize, now_ms: i64) -> bool {
        if sessions.len() < self.slots {
            return true;
        }
        // A session nobody used for the eviction time goes first, the least recent one.
        let stale = sessions
            .iter()
            .filter(|(_, s)| now_ms - s.last_used_ms > self.eviction_ms)
            .min_by_key(|(_, s)| s.last_used_ms)
            .map(|(id, _)| *id);
        // Else the least valuable one old enough, if it is worth less than the new one.
        let cheaper = || {
            sessions
                .iter()
                .filter(|(_, s)| now_ms - s.created_ms > self.eviction_ms)
                .map(|(id, s)| ((s.privileged, s.partitions.len(), *id), *id))
                .min()
                .filter(|((p, n, _), _)| (*p, *n) < (privileged, size))
                .map(|(_, id)| id)
        };
        match stale.or_else(cheaper) {
            Some(id) => {
                let _ = sessions.remove(&id);
                true
            }
            None => false,
        }
    }

    /// The number of sessions held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).0.len()
    }
}

/// A session id not in use: positive, never 0, spread so that ids are hard to guess.
fn new_id(sessions: &HashMap<i32, Session>, counter: &mut u32) -> i32 {
    loop {
        *counter = counter.wrapping_add(1);
        // A fixed odd multiplier permutes the 31-bit ids; the random offset per process
        // keeps a restarted broker from handing out the ids its clients still hold.
        let mixed = counter.wrapping_mul(0x9E37_79B1).wrapping_add(process_salt()) & 0x7FFF_FFFF;
        let id = i32::try_from(mixed).unwrap_or(1);
        if id != 0 && !sessions.contains_key(&id) {
            return id;
        }
    }
}

fn process_salt() -> u32 {
    static SALT: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *SALT.get_or_init(|| uuid::Uuid::new_v4().as_u128() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        PartitionKey { topic: "t".into(), topic_id: uuid::Uuid::nil(), partition: p }
    }

    fn at(offset: i64) -> FetchPosition {
        FetchPosition { fetch_offset: offset, max_bytes: 1 << 20, current_leader_epoch: -1 }
    }

    fn request(id: i32, epoch: i32, partitions: &[(i32, i64)], forgotten: &[i32]) -> SessionRequest {
        SessionRequest {
            session_id: id,
            epoch,
            privileged: false,
            partitions: partitions.iter().map(|(p, o)| (key(*p), at(*o))).collect(),
            forgotten: forgotten.iter().map(|p| key(*p)).collect(),
        }
    }

    fn news(hw: i64, records: bool) -> PartitionNews {
        PartitionNews {
            high_watermark: hw,
            last_stable_offset: hw,
            log_start_offset: 0,
            has_records: records,
            error: false,
        }
    }

    #[test]
    fn given_an_initial_fetch_should_open_a_session_and_answer_only_news_after() {
        let cache = FetchSessionCache::new(10, 1000);
        let (mode, wanted) = cache.begin(request(0, 0, &[(0, 0), (1, 0)], &[]), 0).unwrap();
        let SessionMode::Full { id } = mode else { panic!("{mode:?}") };
        assert_eq!(wanted.len(), 2);
        assert_eq!(cache.finish(mode, &[(key(0), news(5, true)), (key(1), news(0, false))]), vec![true, true]);

        // Epoch 1 moves partition 0 on; partition 1 is unchanged and left out.
        let (mode, wanted) = cache.begin(request(id, 1, &[(0, 5)], &[]), 1).unwrap();
        assert_eq!(mode, SessionMode::Incremental { id });
        assert_eq!(wanted, vec![(key(0), at(5)), (key(1), at(0))]);
        assert_eq!(cache.finish(mode, &[(key(0), news(5, false)), (key(1), news(0, false))]), vec![false, false]);
        // A new high watermark is news even without records for this fetch position.
        let (mode, _) = cache.begin(request(id, 2, &[], &[]), 2).unwrap();
        assert_eq!(cache.finish(mode, &[(key(0), news(5, false)), (key(1), news(3, false))]), vec![false, true]);
    }

    #[test]
    fn given_wrong_ids_or_epochs_should_answer_kafka_errors() {
        let cache = FetchSessionCache::new(10, 1000);
        let (SessionMode::Full { id }, _) = cache.begin(request(0, 0, &[(0, 0)], &[]), 0).unwrap() else { panic!() };
        assert_eq!(cache.begin(request(id + 1, 1, &[], &[]), 0).unwrap_err(), ResponseError::FetchSessionIdNotFound);
        assert_eq!(cache.begin(request(id, 2, &[], &[]), 0).unwrap_err(), ResponseError::InvalidFetchSessionEpoch);
        assert!(cache.begin(request(id, 1, &[], &[]), 0).is_ok());
        // The final epoch closes the session and is served without one.
        let (mode, _) = cache.begin(request(id, -1, &[(0, 0)], &[]), 0).unwrap();
        assert_eq!(mode, SessionMode::Sessionless);
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.begin(request(id, 2, &[], &[]), 0).unwrap_err(), ResponseError::FetchSessionIdNotFound);
    }

    #[test]
    fn given_forgotten_partitions_should_stop_fetching_them() {
        let cache = FetchSessionCache::new(10, 1000);
        let (SessionMode::Full { id }, _) = cache.begin(request(0, 0, &[(0, 0), (1, 0)], &[]), 0).unwrap() else {
            panic!()
        };
        let (_, wanted) = cache.begin(request(id, 1, &[(2, 7)], &[0]), 0).unwrap();
        assert_eq!(wanted, vec![(key(1), at(0)), (key(2), at(7))]);
    }

    #[test]
    fn given_a_full_cache_should_evict_only_stale_or_less_valuable_sessions() {
        let cache = FetchSessionCache::new(1, 1000);
        let (first, _) = cache.begin(request(0, 0, &[(0, 0), (1, 0)], &[]), 0).unwrap();
        // Too young to evict: no session for the newcomer.
        assert_eq!(
            cache.begin(request(0, 0, &[(0, 0), (1, 0), (2, 0)], &[]), 500).unwrap().0,
            SessionMode::Sessionless
        );
        // In use, but old enough, and smaller than a newcomer: replaced by it; not by a
        // newcomer that is no larger.
        assert!(cache.begin(request(first.session_id(), 1, &[], &[]), 1400).is_ok());
        assert_eq!(cache.begin(request(0, 0, &[(0, 0), (1, 0)], &[]), 1500).unwrap().0, SessionMode::Sessionless);
        let (second, _) = cache.begin(request(0, 0, &[(0, 0), (1, 0), (2, 0)], &[]), 1500).unwrap();
        assert!(matches!(second, SessionMode::Full { .. }));
        assert_eq!(cache.len(), 1);
        assert!(cache.begin(request(first.session_id(), 2, &[], &[]), 1500).is_err());
        // Unused for the eviction time: any newcomer takes its place.
        assert!(matches!(cache.begin(request(0, 0, &[(0, 0)], &[]), 3000).unwrap().0, SessionMode::Full { .. }));
    }

    #[test]
    fn given_no_slots_should_serve_without_sessions() {
        let cache = FetchSessionCache::new(0, 1000);
        assert_eq!(cache.begin(request(0, 0, &[(0, 0)], &[]), 0).unwrap().0, SessionMode::Sessionless);
    }
}
