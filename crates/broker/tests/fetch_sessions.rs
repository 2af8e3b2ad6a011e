//! Contract: fetch sessions (KIP-227) over TCP, with hand-built Fetch v12 requests: a full
//! fetch with epoch 0 opens a session and answers every partition; incremental fetches
//! (epoch 1, 2, ...) name only the partitions whose position changed and get back only
//! the partitions with news (records, a moved high watermark); forgotten partitions are
//! no longer fetched; a wrong epoch or id gets Kafka's error; epoch -1 closes the session.
#![allow(unreachable_pub)]

mod common;

use bytes::Bytes;
use common::raw::Raw;
use common::TestBroker;
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use gregor_protocol::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;

const TOPIC: &str = "sessions";

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

fn batch(value: &str) -> Bytes {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    gregor_protocol::records::encode_batch(&[(None, Some(Bytes::copy_from_slice(value.as_bytes())))], now)
        .unwrap()
        .freeze()
}

async fn produce(raw: &mut Raw, partition: i32, value: &str) {
    let data = PartitionProduceData::default().with_index(partition).with_records(Some(batch(value)));
    let topic = TopicProduceData::default().with_name(name()).with_partition_data(vec![data]);
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![topic]);
    let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

/// A Fetch v12 in session `id` at `epoch`, naming `(partition, fetch offset)`s and
/// forgetting `forgotten`.
fn fetch(id: i32, epoch: i32, partitions: &[(i32, i64)], forgotten: &[i32]) -> FetchRequest {
    let partitions: Vec<FetchPartition> = partitions
        .iter()
        .map(|(p, offset)| {
            FetchPartition::default().with_partition(*p).with_fetch_offset(*offset).with_partition_max_bytes(1 << 20)
        })
        .collect();
    // An incremental fetch with no changed partition names no topic at all.
    let topics = if partitions.is_empty() {
        vec![]
    } else {
        vec![FetchTopic::default().with_topic(name()).with_partitions(partitions)]
    };
    let forgotten = if forgotten.is_empty() {
        vec![]
    } else {
        vec![ForgottenTopic::default().with_topic(name()).with_partitions(forgotten.to_vec())]
    };
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(i32::MAX)
        .with_session_id(id)
        .with_session_epoch(epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}

/// The answered partitions: (index, high watermark, record bytes).
fn answered(response: &FetchResponse) -> Vec<(i32, i64, usize)> {
    assert_eq!(response.error_code, 0, "top-level error");
    let mut out: Vec<_> = response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.high_watermark, p.records.as_ref().map_or(0, Bytes::len)))
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_fetches_name_and_answer_only_what_changed() {
    let broker = TestBroker::start_with(&[("num.partitions", "3")]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    produce(&mut raw, 0, "a").await;
    produce(&mut raw, 1, "b").await;

    // Full fetch, epoch 0: a session, every partition answered.
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(0, 0, &[(0, 0), (1, 0), (2, 0)], &[])).await;
    let id = response.session_id;
    assert_ne!(id, 0, "a session was opened");
    let full = answered(&response);
    assert_eq!(full.iter().map(|(p, hw, _)| (*p, *hw)).collect::<Vec<_>>(), vec![(0, 1), (1, 1), (2, 0)]);
    assert!(full[0].2 > 0 && full[1].2 > 0 && full[2].2 == 0);

    // Epoch 1: the consumer moved past what it got; nothing new, so nothing answered.
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(id, 1, &[(0, 1), (1, 1)], &[])).await;
    assert_eq!(response.session_id, id);
    assert_eq!(answered(&response), vec![]);

    // New records on partition 2 only: only it comes back, named by nobody.
    produce(&mut raw, 2, "c").await;
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(id, 2, &[], &[])).await;
    let news = answered(&response);
    assert_eq!(news.len(), 1, "{news:?}");
    assert_eq!((news[0].0, news[0].1), (2, 1));

    // Forgotten: partition 2 is no longer fetched, whatever arrives there.
    produce(&mut raw, 2, "d").await;
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(id, 3, &[], &[2])).await;
    assert_eq!(answered(&response), vec![]);
    produce(&mut raw, 0, "e").await;
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(id, 4, &[], &[])).await;
    assert_eq!(answered(&response).iter().map(|(p, hw, _)| (*p, *hw)).collect::<Vec<_>>(), vec![(0, 2)]);

    // Kafka's errors for a wrong epoch and an unknown id.
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(id, 9, &[], &[])).await;
    assert_eq!(response.error_code, 71, "INVALID_FETCH_SESSION_EPOCH");
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(id.wrapping_add(1).max(1), 1, &[], &[])).await;
    assert_eq!(response.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");

    // Epoch -1 closes it: a full, sessionless answer, and the id is gone.
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(id, -1, &[(0, 0)], &[])).await;
    assert_eq!(response.session_id, 0);
    assert_eq!(answered(&response).len(), 1);
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(id, 5, &[], &[])).await;
    assert_eq!(response.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cache_slots_fetches_are_served_without_sessions() {
    let broker = TestBroker::start_with(&[("max.incremental.fetch.session.cache.slots", "0")]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    produce(&mut raw, 0, "a").await;
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(0, 0, &[(0, 0)], &[])).await;
    assert_eq!(response.session_id, 0, "no session without slots");
    assert_eq!(answered(&response).len(), 1);
}
