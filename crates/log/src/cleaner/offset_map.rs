//! Kafka's `OffsetMap`: the last offset of every key in the dirty section.
//!
//! Kafka's `SkimpyOffsetMap` stores MD5 hashes in a fixed buffer; this one keeps the keys
//! themselves (no hash collisions, so no record is ever dropped for a look-alike key)
//! and counts their memory against a budget instead.

use std::collections::HashMap;

use bytes::Bytes;

/// Estimated bytes one entry costs besides its key (hash slot, `Bytes` header, offset).
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Kafka's `log.cleaner.dedupe.buffer.size` default (one cleaner thread).
pub(crate) const DEFAULT_DEDUPE_BUFFER_BYTES: usize = 128 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct OffsetMap {
    offsets: HashMap<Bytes, i64>,
    bytes_used: usize,
}

impl OffsetMap {
    /// Records `offset` for `key`; offsets only move forward.
    pub(crate) fn put(&mut self, key: Bytes, offset: i64) {
        let cost = key.len() + ENTRY_OVERHEAD_BYTES;
        let entry = self.offsets.entry(key).or_insert(i64::MIN);
        if *entry == i64::MIN {
            self.bytes_used += cost;
        }
        *entry = (*entry).max(offset);
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<i64> {
        self.offsets.get(key).copied()
    }

    pub(crate) fn bytes_used(&self) -> usize {
        self.bytes_used
    }

    pub(crate) fn len(&self) -> usize {
        self.offsets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_repeated_keys_when_put_should_keep_the_largest_offset_and_count_each_key_once() {
        let mut map = OffsetMap::default();
        map.put(Bytes::from_static(b"a"), 5);
        map.put(Bytes::from_static(b"a"), 3);
        map.put(Bytes::from_static(b"bb"), 7);
        assert_eq!((map.get(b"a"), map.get(b"bb"), map.get(b"c")), (Some(5), Some(7), None));
        assert_eq!((map.len(), map.bytes_used()), (2, 3 + 2 * ENTRY_OVERHEAD_BYTES));
    }
}
