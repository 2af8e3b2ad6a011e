//! Messages for the admin API and the console: browse a partition (from an offset or a
//! timestamp, oldest or newest first, with a limit), search key, value and header
//! values with a bounded scan that says whether it finished, and produce one message.
//! Reads see what a `read_uncommitted` consumer sees (up to the high watermark, as Kafka
//! UI shows it); control records are left out. Blocking: call from `spawn_blocking`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::partitioner::partition_for_key;
use gregor_protocol::record_batch::BatchIter;
use gregor_protocol::TopicPartition;

use super::{unknown_topic, AdminError};
use crate::broker::now_ms;
use crate::observe::BrokerHandle;
use crate::replica_manager::{Partition, ReplicaManager};

/// Bytes read from the log per step of a scan.
const SCAN_CHUNK_BYTES: usize = 256 * 1024;
/// A browse returns at most this many messages.
pub const MAX_LIMIT: usize = 1000;
/// How long a produce from the console waits for the ISR (`acks=all`).
const PRODUCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Where a browse starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Oldest first: the log start; newest first: the high watermark.
    Edge,
    /// Oldest first: from this offset; newest first: this offset and older.
    Offset(i64),
    /// Oldest first: the first record at or after this time; newest first: the ones before.
    Timestamp(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQuery {
    /// `None`: every partition, merged by timestamp.
    pub partition: Option<i32>,
    pub start: Start,
    pub newest_first: bool,
    pub limit: usize,
    /// Only records whose key, value or a header value contains this text.
    pub search: Option<String>,
    /// Records examined per partition before the search gives up (`complete: false`).
    pub max_scan: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    /// Kafka's names: `CreateTime` or `LogAppendTime`.
    pub timestamp_type: &'static str,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    /// Records examined.
    pub scanned: u64,
    /// False when the scan stopped at `max_scan` before the end of a partition's range.
    pub complete: bool,
}

/// One message to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMessage {
    /// `None`: murmur2 of the key as Kafka's default partitioner, or round robin.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl BrokerHandle {
    /// Browses `topic` on this node's replicas (leader or follower).
    pub fn browse(&self, topic: &str, query: &MessageQuery) -> Result<MessagePage, AdminError> {
        let partitions = self.browsable_partitions(topic, query.partition)?;
        let mut page = MessagePage { complete: true, ..MessagePage::default() };
        for (index, partition) in partitions {
            let one = browse_partition(&partition, index, query)?;
            page.scanned += one.scanned;
            page.complete &= one.complete;
            page.messages.extend(one.messages);
        }
        // Merged by time, newest or oldest first; the offset orders a partition's equal times.
        page.messages.sort_by_key(|m| (m.timestamp, m.partition, m.offset));
        if query.newest_first {
            page.messages.reverse();
        }
        page.messages.truncate(query.limit);
        Ok(page)
    }

    fn browsable_partitions(&self, topic: &str, only: Option<i32>) -> Result<Vec<(i32, Arc<Partition>)>, AdminError> {
        let broker = &self.0;
        let image = broker.image();
        let t = image.topic(topic).ok_or_else(|| unknown_topic(topic))?;
        let wanted: Vec<i32> = match only {
            Some(p) if t.partitions.contains_key(&p) => vec![p],
            Some(p) => {
                return Err(AdminError::of(
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic '{topic}' has no partition {p}"),
                ))
            }
            None => t.partitions.keys().copied().collect(),
        };
        let hosted: Vec<_> = wanted
            .iter()
            .filter_map(|&p| broker.replicas.get(&TopicPartition::new(topic, p)).map(|h| (p, h)))
            .collect();
        if hosted.is_empty() {
            let leaders: Vec<String> =
                wanted.iter().filter_map(|p| t.partitions.get(p)).map(|p| p.leader.to_string()).collect();
            return Err(AdminError::of(
                ResponseError::NotLeaderOrFollower,
                format!("no replica of '{topic}' is on node {}: ask node {}", broker.node_id, leaders.join(", ")),
            ));
        }
        Ok(hosted)
    }

    /// Produces one message with `acks=all` on the partition's leader, which must be
    /// this node. Returns the partition and the offset.
    pub fn produce(&self, topic: &str, message: &NewMessage) -> Result<(i32, i64), AdminError> {
        static ROUND_ROBIN: AtomicUsize = AtomicUsize::new(0);
        let broker = &self.0;
        let image = broker.image();
        let t = image.topic(topic).ok_or_else(|| unknown_topic(topic))?;
        let count = t.partitions.len() as i32;
        let partition = match (message.partition, &message.key) {
            (Some(p), _) if t.partitions.contains_key(&p) => p,
            (Some(p), _) => {
                return Err(AdminError::of(
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic '{topic}' has no partition {p}"),
                ))
            }
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => (ROUND_ROBIN.fetch_add(1, Ordering::Relaxed) % count.max(1) as usize) as i32,
        };
        let tp = TopicPartition::new(topic, partition);
        broker.leader_partition(&image, &tp).map_err(|e| {
            let leader = t.partitions.get(&partition).map_or(-1, |p| p.leader);
            AdminError::of(e, format!("partition {tp} is led by node {leader}, not node {}", broker.node_id))
        })?;
        let mut batch = encode_message(message)?;
        let (info, hosted) = broker.replicas.append(&tp, &mut batch, -1, now_ms())?;
        ReplicaManager::await_replicated(&hosted, info.last_offset + 1, PRODUCE_TIMEOUT)?;
        Ok((partition, info.first_offset))
    }
}

/// One uncompressed batch of one record, as Gregor's client encodes a produce.
fn encode_message(message: &NewMessage) -> Result<BytesMut, AdminError> {
    let record = gregor_client::ProduceRecord {
        key: message.key.clone(),
        value: message.value.clone(),
        headers: message.headers.clone(),
        timestamp: now_ms(),
    };
    gregor_client::encode_batch(&[record], Compression::None)
        .map_err(|e| AdminError::of(ResponseError::InvalidRecord, format!("cannot encode the message: {e}")))
}

/// The offsets `[from, to)` a browse of one partition covers, in the order it reads them.
fn range(partition: &Partition, query: &MessageQuery) -> Result<(i64, i64), AdminError> {
    let (start, hw, _) = offsets(partition);
    let at_time = |ts: i64| -> Result<i64, AdminError> {
        let found = ReplicaManager::log(partition).fetch_offset_by_timestamp(ts).map_err(crate::BrokerError::from)?;
        Ok(found.map_or(hw, |t| t.offset))
    };
    Ok(match (query.start, query.newest_first) {
        (Start::Edge, _) => (start, hw),
        (Start::Offset(o), false) => (o.clamp(start, hw), hw),
        (Start::Offset(o), true) => (start, o.saturating_add(1).clamp(start, hw)),
        (Start::Timestamp(ts), false) => (at_time(ts)?.clamp(start, hw), hw),
        (Start::Timestamp(ts), true) => (start, at_time(ts)?.clamp(start, hw)),
    })
}

fn offsets(partition: &Partition) -> (i64, i64, i64) {
    let log = ReplicaManager::log(partition);
    (log.log_start_offset(), log.high_watermark(), log.log_end_offset())
}

fn browse_partition(partition: &Partition, index: i32, query: &MessageQuery) -> Result<MessagePage, AdminError> {
    let (from, to) = range(partition, query)?;
    let mut page = MessagePage { complete: true, ..MessagePage::default() };
    if query.newest_first {
        // Backwards in windows that double: most browses want only the last few records.
        let mut end = to;
        let mut window = query.limit.max(16) as i64;
        while end > from && page.messages.len() < query.limit {
            let budget = query.max_scan.saturating_sub(page.scanned) as i64;
            if budget == 0 {
                page.complete = false;
                break;
            }
            let begin = end.saturating_sub(window.min(budget)).max(from);
            let mut chunk = Vec::new();
            let _ = scan(partition, index, (begin, end), query, &mut chunk, &mut page.scanned)?;
            chunk.reverse();
            page.messages.extend(chunk);
            end = begin;
            window = window.saturating_mul(2);
        }
    } else {
        let stopped = scan(partition, index, (from, to), query, &mut page.messages, &mut page.scanned)?;
        page.complete = stopped.is_none();
    }
    page.messages.truncate(query.limit);
    Ok(page)
}

/// Reads `[from, to)` forwards, collecting matches until the limit (oldest first) or the
/// scan budget. Returns where it stopped when the budget ran out before `to`.
fn scan(
    partition: &Partition,
    index: i32,
    (from, to): (i64, i64),
    query: &MessageQuery,
    out: &mut Vec<MessageView>,
    scanned: &mut u64,
) -> Result<Option<i64>, AdminError> {
    let mut offset = from;
    while offset < to {
        // Oldest first stops at the limit or the budget; newest first reads whole windows
        // (each no larger than what is left of the budget).
        if !query.newest_first && out.len() >= query.limit {
            return Ok(None);
        }
        let bytes = read_chunk(partition, offset, to)?;
        let mut next = None;
        for (at, header) in BatchIter::new(&bytes) {
            next = Some(header.last_offset() + 1);
            if header.is_control() {
                continue;
            }
            let mut slice = bytes.slice(at..at + header.size());
            let set = RecordBatchDecoder::decode(&mut slice).map_err(|e| {
                AdminError::of(ResponseError::CorruptMessage, format!("cannot decode the batch at {}: {e}", at))
            })?;
            for record in set.records.into_iter().filter(|r| r.offset >= offset && r.offset < to) {
                if !query.newest_first && (out.len() >= query.limit || *scanned >= query.max_scan) {
                    // Stopped early: complete only if the limit, not the budget, ended it.
                    return Ok((*scanned >= query.max_scan).then_some(record.offset));
                }
                *scanned += 1;
                if matches(&record, query.search.as_deref()) {
                    out.push(view(index, record));
                }
            }
        }
        match next {
            Some(n) if n > offset => offset = n,
            _ => break, // nothing readable: a log truncated under us
        }
    }
    Ok(None)
}

fn read_chunk(partition: &Partition, offset: i64, to: i64) -> Result<Bytes, AdminError> {
    let plan = ReplicaManager::log(partition).read(offset, SCAN_CHUNK_BYTES, to).map_err(crate::BrokerError::from)?;
    // The read happens outside the log's lock.
    plan.read_bytes().map_err(|e| AdminError::of(ResponseError::KafkaStorageError, format!("cannot read the log: {e}")))
}

fn matches(record: &Record, search: Option<&str>) -> bool {
    let Some(needle) = search.filter(|s| !s.is_empty()) else { return true };
    let contains = |b: &Option<Bytes>| b.as_ref().is_some_and(|b| contains_bytes(b, needle.as_bytes()));
    contains(&record.key)
        || contains(&record.value)
        || record.headers.iter().any(|(k, v)| k.contains(needle) || contains(v))
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn view(partition: i32, record: Record) -> MessageView {
    MessageView {
        partition,
        offset: record.offset,
        timestamp: record.timestamp,
        timestamp_type: match record.timestamp_type {
            TimestampType::Creation => "CreateTime",
            TimestampType::LogAppend => "LogAppendTime",
        },
        key: record.key,
        value: record.value,
        headers: record.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::kafka_protocol::protocol::StrBytes;

    #[test]
    fn given_a_search_should_look_in_key_value_and_headers() {
        let record = |key: &str, value: &str, header: &str| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 0,
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: [(StrBytes::from_static_str("h"), Some(Bytes::copy_from_slice(header.as_bytes())))]
                .into_iter()
                .collect(),
        };
        assert!(matches(&record("order-1", "{}", ""), Some("order")));
        assert!(matches(&record("k", "{\"book\":\"Dune\"}", ""), Some("Dune")));
        assert!(matches(&record("k", "v", "trace-42"), Some("trace-42")));
        assert!(!matches(&record("k", "v", "x"), Some("absent")));
        assert!(matches(&record("k", "v", "x"), None));
    }

    #[test]
    fn given_a_message_should_encode_one_batch_with_its_headers() {
        let message = NewMessage {
            partition: None,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![("source".into(), Some(Bytes::from_static(b"console")))],
        };
        let mut bytes = encode_message(&message).unwrap().freeze();
        let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
        assert_eq!(set.records.len(), 1);
        let header = set.records[0].headers.get(&StrBytes::from_static_str("source")).cloned().flatten();
        assert_eq!(header, Some(Bytes::from_static(b"console")));
    }
}
