//! Contract: what a client cannot make the broker do. Connection quotas
//! (`max.connections`, `max.connections.per.ip`), idle connections closed after
//! `connections.max.idle.ms`, and answers Kafka gives per partition or per record
//! instead of accepting bad input: offsets committed for topics that do not exist, and
//! keyless records in a compacted topic (KIP-467 record errors). Raw TCP on 127.0.0.1.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::raw::Raw;
use common::TestBroker;
use gregor_protocol::kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use gregor_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, GroupId,
    OffsetCommitRequest, OffsetCommitResponse, ProduceRequest, ProduceResponse, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;

async fn served(raw: &mut Raw) -> bool {
    let response: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    response.error_code == 0
}

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

async fn create_topic(raw: &mut Raw, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(k, v)| CreatableTopicConfig::default().with_name(name(k)).with_value(Some(name(v))))
        .collect();
    let topic = CreatableTopic::default()
        .with_name(TopicName(name(topic)))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(configs);
    let request = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(5000);
    let response: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &request).await;
    assert_eq!(response.topics[0].error_code, 0, "{:?}", response.topics[0].error_message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_max_connections_per_ip_when_exceeded_should_close_the_extra_connection_only() {
    let broker = TestBroker::start_with(&[("max.connections.per.ip", "2")]).await;
    let bootstrap = broker.bootstrap();
    let mut first = Raw::connect(&bootstrap).await;
    let mut second = Raw::connect(&bootstrap).await;
    assert!(served(&mut first).await && served(&mut second).await);
    let mut third = Raw::connect(&bootstrap).await;
    assert!(third.closed_by_broker().await, "a third connection from 127.0.0.1 is closed");
    assert!(served(&mut first).await, "the admitted connections are unaffected");
    drop(second);
    // The closed connection's slot comes back once the broker sees the close.
    for attempt in 0.. {
        let mut again = Raw::connect(&bootstrap).await;
        let request = Raw::frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
        tokio::io::AsyncWriteExt::write_all(&mut again.stream, &request).await.unwrap();
        if !again.closed_by_broker().await {
            break;
        }
        assert!(attempt < 50, "the slot of a closed connection is never given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_max_connections_when_reached_should_serve_a_waiting_client_once_one_closes() {
    let broker = TestBroker::start_with(&[("max.connections", "1")]).await;
    let bootstrap = broker.bootstrap();
    let mut first = Raw::connect(&bootstrap).await;
    assert!(served(&mut first).await);
    // The second client connects (the kernel's backlog takes it) but is not served.
    let mut second = Raw::connect(&bootstrap).await;
    second.send(ApiKey::ApiVersions, 3, 7, &ApiVersionsRequest::default()).await;
    let waiting = tokio::time::timeout(Duration::from_millis(500), second.receive(ApiKey::ApiVersions, 3)).await;
    assert!(waiting.is_err(), "served beyond max.connections");
    drop(first);
    let (correlation_id, _) = second.receive(ApiKey::ApiVersions, 3).await;
    assert_eq!(correlation_id, 7, "served once the first connection closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_connections_max_idle_ms_should_close_a_silent_connection() {
    let broker = TestBroker::start_with(&[("connections.max.idle.ms", "300")]).await;
    let mut silent = Raw::connect(&broker.bootstrap()).await;
    assert!(served(&mut silent).await);
    assert!(silent.closed_by_broker().await, "closed after 300 ms without a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_offset_commit_for_unknown_topics_should_answer_unknown_topic_or_partition_per_partition() {
    let broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create_topic(&mut raw, "known", 2, &[]).await;
    let topic = |t: &str, partitions: &[i32]| {
        let partitions = partitions
            .iter()
            .map(|&p| OffsetCommitRequestPartition::default().with_partition_index(p).with_committed_offset(5))
            .collect();
        OffsetCommitRequestTopic::default().with_name(TopicName(name(t))).with_partitions(partitions)
    };
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(name("standalone")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![topic("known", &[0, 1, 7]), topic("missing", &[0])]);
    let response: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &request).await;
    let mut answers: Vec<(String, i32, i16)> = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), p.partition_index, p.error_code)))
        .collect();
    answers.sort();
    let expected = [("known", 0, 0), ("known", 1, 0), ("known", 7, 3), ("missing", 0, 3)];
    assert_eq!(answers, expected.map(|(t, p, e)| (t.to_owned(), p, e)), "3 = UNKNOWN_TOPIC_OR_PARTITION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_keyless_records_in_a_compacted_topic_should_name_them_in_record_errors() {
    let broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create_topic(&mut raw, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let key = |k: Option<&'static str>| k.map(|k| Bytes::from_static(k.as_bytes()));
    let records: Vec<_> = [Some("a"), None, Some("c"), None].map(|k| (key(k), Some(Bytes::from_static(b"v")))).into();
    let batch = gregor_protocol::records::encode_batch(&records, now).unwrap().freeze();
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(batch));
    let topic =
        TopicProduceData::default().with_name(TopicName(name("compacted"))).with_partition_data(vec![partition]);
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![topic]);
    let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &request).await;
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 87, "INVALID_RECORD");
    let indexes: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [1, 3], "only the keyless records are named");
    assert!(answer.record_errors[0].batch_index_error_message.as_ref().unwrap().contains("without key"));
    let response: ProduceResponse = raw.call(ApiKey::Produce, 7, &request).await;
    assert!(response.responses[0].partition_responses[0].record_errors.is_empty(), "v7 has no record_errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_broker_fetch_max_bytes_should_cap_a_response_whatever_the_request_asks() {
    use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use gregor_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse};
    let broker = TestBroker::start_with(&[("fetch.max.bytes", "1024")]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create_topic(&mut raw, "capped", 1, &[]).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let value = Some(Bytes::from(vec![b'x'; 700]));
    for _ in 0..3 {
        let batch = gregor_protocol::records::encode_batch(&[(None, value.clone())], now).unwrap().freeze();
        let partition = PartitionProduceData::default().with_index(0).with_records(Some(batch));
        let topic =
            TopicProduceData::default().with_name(TopicName(name("capped"))).with_partition_data(vec![partition]);
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![topic]);
        let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &request).await;
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
    let partition = FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(i32::MAX);
    let topic = FetchTopic::default().with_topic(TopicName(name("capped"))).with_partitions(vec![partition]);
    let request =
        FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(i32::MAX).with_topics(vec![topic]);
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &request).await;
    let records = response.responses[0].partitions[0].records.clone().unwrap();
    let first = gregor_protocol::record_batch::RecordBatchHeader::parse(&records).unwrap();
    assert_eq!(records.len(), first.size(), "one ~770-byte batch: a second would pass the 1024-byte cap");
}
