//! Pieces shared by this crate's unit tests and the fuzz harness (crates/fuzz-targets),
//! behind the `test-support` feature: the shard is driven the same way in both.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

use crate::TimerKey;

/// A consumer-protocol subscription (v0): version, topics, null user data.
pub fn subscription(topics: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(topics.len() as i32);
    for t in topics {
        buf.put_i16(t.len() as i16);
        buf.put_slice(t.as_bytes());
    }
    buf.put_i32(-1);
    buf.freeze()
}

/// Removes and returns the earliest timer due by `until` (ties by key), as a broker's
/// timer queue fires them.
pub fn take_due_timer(timers: &mut BTreeMap<TimerKey, i64>, until: i64) -> Option<(TimerKey, i64)> {
    let due = timers.iter().filter(|(_, d)| **d <= until).min_by_key(|(k, d)| (**d, (*k).clone()));
    let (key, deadline) = due.map(|(k, d)| (k.clone(), *d))?;
    let _ = timers.remove(&key);
    Some((key, deadline))
}
