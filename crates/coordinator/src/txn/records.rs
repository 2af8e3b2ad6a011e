//! `__transaction_state` records in Kafka's layouts: key `i16 version 0 | string
//! transactional_id`; value `TransactionLogValue` v0 (`i16 0 | producer_id i64 |
//! producer_epoch i16 | timeout_ms i32 | status i8 | partitions [topic string,
//! [partition i32]] | last_update_ms i64 | start_ms i64`). A tombstone removes an
//! expired transactional id.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::{TxnMetadata, TxnState};
use crate::records::{put_string, Reader};
use crate::CoordinatorError;

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

pub(crate) fn key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(KEY_VERSION);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

pub(crate) fn value(m: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(VALUE_VERSION);
    buf.put_i64(m.producer_id);
    buf.put_i16(m.producer_epoch);
    buf.put_i32(m.timeout_ms);
    buf.put_i8(m.state.id());
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in &m.partitions {
        match topics.last_mut() {
            Some((t, ps)) if *t == topic.as_str() => ps.push(*partition),
            _ => topics.push((topic.as_str(), vec![*partition])),
        }
    }
    buf.put_i32(topics.len() as i32);
    for (topic, partitions) in topics {
        put_string(&mut buf, topic);
        buf.put_i32(partitions.len() as i32);
        for p in partitions {
            buf.put_i32(p);
        }
    }
    buf.put_i64(m.last_update_ms);
    buf.put_i64(m.start_ms);
    buf.freeze()
}

pub(crate) fn decode_key(bytes: &[u8]) -> Result<String, CoordinatorError> {
    let mut r = Reader::new(bytes, "transaction log key");
    let version = r.i16()?;
    if version != KEY_VERSION {
        return Err(CoordinatorError::InvalidKeyVersion { version });
    }
    r.string()
}

pub(crate) fn decode_value(transactional_id: &str, bytes: &[u8]) -> Result<TxnMetadata, CoordinatorError> {
    let what = "transaction log value";
    let mut r = Reader::new(bytes, what);
    let version = r.i16()?;
    if version != VALUE_VERSION {
        return Err(CoordinatorError::UnsupportedValueVersion { what, version });
    }
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_id(r.take(1)?[0] as i8)
        .ok_or(CoordinatorError::UnsupportedValueVersion { what: "transaction status", version: -1 })?;
    let mut partitions = BTreeSet::new();
    let topics = r.i32()?;
    for _ in 0..topics.max(0) {
        let topic = r.string()?;
        let count = r.i32()?;
        if count as usize > r.remaining() / 4 {
            return Err(CoordinatorError::Truncated { what, position: 0, needed: count as usize * 4 });
        }
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), r.i32()?));
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    Ok(TxnMetadata {
        transactional_id: transactional_id.to_owned(),
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}
