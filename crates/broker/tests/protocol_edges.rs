//! Contract: the broker's answers at the edges of the protocol, checked with hand-built
//! requests over a raw TCP connection: version negotiation (KIP-511, Produce v0-2),
//! ordering of pipelined requests, acks=0, fetch size limits, corrupt batches, and
//! hostile frames that must close only their own connection.

mod common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::raw::Raw;
use common::TestBroker;
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use gregor_protocol::record_batch::RecordBatchHeader;
use tokio::io::AsyncWriteExt;

/// A batch of uncompressed records stamped now (old timestamps would fall to the
/// 7-day retention at the broker's first retention pass).
fn batch(values: &[&str]) -> Bytes {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let pairs: Vec<_> = values.iter().map(|v| (None, Some(Bytes::copy_from_slice(v.as_bytes())))).collect();
    gregor_protocol::records::encode_batch(&pairs, now).unwrap().freeze()
}

fn produce(topic: &str, acks: i16, records: Bytes) -> ProduceRequest {
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(records));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partition_data(vec![partition]);
    ProduceRequest::default().with_acks(acks).with_timeout_ms(5000).with_topic_data(vec![topic])
}

fn produce_error(response: &ProduceResponse) -> i16 {
    response.responses[0].partition_responses[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_api_versions_should_advertise_produce_from_zero_and_fall_back_for_unknown_versions() {
    let broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let response: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    let produce = response.api_keys.iter().find(|k| k.api_key == ApiKey::Produce as i16).expect("produce advertised");
    assert_eq!((produce.min_version, produce.max_version), (0, 13));

    // KIP-511: a version from the future gets a v0 answer listing what is served.
    // Header v2 by hand (no encoder knows v99): key, version, correlation id, null client
    // id, no tagged fields; the body is whatever a future version has.
    let frame = [&15i32.to_be_bytes()[..], &[0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff, 0, 1, 2, 3, 4]].concat();
    raw.stream.write_all(&frame).await.unwrap();
    let (correlation_id, mut body) = raw.receive(ApiKey::ApiVersions, 0).await;
    let fallback = ApiVersionsResponse::decode(&mut body, 0).expect("v0 body");
    assert_eq!((correlation_id, fallback.error_code), (5, 35));
    assert_eq!(fallback.api_keys.len(), response.api_keys.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_produce_v2_should_answer_unsupported_version_in_the_old_layout() {
    let broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    // Produce v2 body by hand: acks, timeout, [topic [partition, message set]]
    let header = RequestHeader::default().with_request_api_key(0).with_request_api_version(2).with_correlation_id(9);
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header.encode(&mut frame, 1).unwrap();
    frame.put_i16(1);
    frame.put_i32(1000);
    frame.put_i32(1);
    frame.put_i16(3);
    frame.put_slice(b"old");
    frame.put_i32(1);
    frame.put_i32(0);
    frame.put_i32(0);
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    raw.stream.write_all(&frame).await.unwrap();
    let (correlation_id, mut body) = raw.receive(ApiKey::Produce, 2).await;
    assert_eq!(correlation_id, 9);
    assert_eq!(body.get_i32(), 1, "one topic");
    assert_eq!(body.get_i16(), 3);
    body.advance(3);
    assert_eq!(body.get_i32(), 1, "one partition");
    assert_eq!(body.get_i32(), 0, "partition 0");
    assert_eq!(body.get_i16(), 35, "UNSUPPORTED_VERSION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_pipelined_requests_with_acks_zero_should_answer_the_others_in_order() {
    let broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut pipeline = BytesMut::new();
    pipeline.extend_from_slice(&Raw::frame(ApiKey::Metadata, 12, 1, &MetadataRequest::default()));
    pipeline.extend_from_slice(&Raw::frame(ApiKey::Produce, 9, 2, &produce("pipelined", 0, batch(&["a"]))));
    pipeline.extend_from_slice(&Raw::frame(ApiKey::Produce, 9, 3, &produce("pipelined", 1, batch(&["b", "c"]))));
    pipeline.extend_from_slice(&Raw::frame(ApiKey::ApiVersions, 3, 4, &ApiVersionsRequest::default()));
    raw.stream.write_all(&pipeline).await.unwrap();
    let (first, _) = raw.receive(ApiKey::Metadata, 12).await;
    let (second, mut body) = raw.receive(ApiKey::Produce, 9).await;
    let (third, _) = raw.receive(ApiKey::ApiVersions, 3).await;
    assert_eq!((first, second, third), (1, 3, 4), "acks=0 gets no response; the rest come in order");
    let response = ProduceResponse::decode(&mut body, 9).unwrap();
    assert_eq!(produce_error(&response), 0);
    assert_eq!(response.responses[0].partition_responses[0].base_offset, 1, "the acks=0 batch took offset 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_tiny_partition_max_bytes_fetch_should_still_return_one_whole_batch() {
    let broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    for values in [&["one", "two"][..], &["three"][..]] {
        let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("sized", -1, batch(values))).await;
        assert_eq!(produce_error(&response), 0);
    }
    let fetch = |offset: i64, partition_max_bytes: i32| {
        let partition = FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(partition_max_bytes);
        let topic = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("sized")))
            .with_partitions(vec![partition]);
        FetchRequest::default().with_max_wait_ms(0).with_min_bytes(0).with_max_bytes(i32::MAX).with_topics(vec![topic])
    };
    let one_batch = batch(&["one", "two"]).len();
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(1, 1)).await;
    let partition = &response.responses[0].partitions[0];
    assert_eq!((partition.error_code, partition.high_watermark), (0, 3));
    let records = partition.records.clone().unwrap();
    assert_eq!(records.len(), one_batch, "offset 1 sits inside the first batch: that whole batch, and only it");
    let header = RecordBatchHeader::parse(&records).unwrap();
    assert_eq!((header.base_offset(), header.last_offset()), (0, 1));

    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch(9, 1024)).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 1, "OFFSET_OUT_OF_RANGE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_corrupt_batch_should_answer_corrupt_message_and_keep_serving() {
    let broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut records = BytesMut::from(&batch(&["payload"])[..]);
    let last = records.len() - 1;
    records[last] ^= 0xff;
    let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("crc", -1, records.freeze())).await;
    assert_eq!(produce_error(&response), 2, "CORRUPT_MESSAGE");
    let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("crc", -1, batch(&["fine"]))).await;
    assert_eq!(produce_error(&response), 0);
    assert_eq!(response.responses[0].partition_responses[0].base_offset, 0, "the corrupt batch took no offset");
    let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("bad topic!", -1, batch(&["x"]))).await;
    assert_eq!(produce_error(&response), 17, "INVALID_TOPIC_EXCEPTION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_hostile_frames_should_close_only_their_connection() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let mut healthy = Raw::connect(&bootstrap).await;
    let hostile: Vec<Vec<u8>> = vec![
        200_000_000i32.to_be_bytes().to_vec(), // over socket.request.max.bytes
        (-5i32).to_be_bytes().to_vec(),        // negative length
        [&8i32.to_be_bytes()[..], &[0x7f, 0x7f, 0, 0, 0, 0, 0, 1]].concat(), // unknown api key
        [&6i32.to_be_bytes()[..], &[0, 18, 0, 3, 0, 0]].concat(), // header cut short
        [&12i32.to_be_bytes()[..], &[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0xff, 0xff]].concat(), // Metadata v12, bad body
        [&10i32.to_be_bytes()[..], &[0, 1, 0, 99, 0, 0, 0, 1, 0, 0]].concat(), // Fetch v99
    ];
    for bytes in hostile {
        let mut raw = Raw::connect(&bootstrap).await;
        raw.stream.write_all(&bytes).await.unwrap();
        assert!(raw.closed_by_broker().await, "connection closed after {bytes:?}");
        let response: ApiVersionsResponse = healthy.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
        assert_eq!(response.error_code, 0, "the other connection is unaffected");
    }
    let metadata: MetadataResponse = healthy.call(ApiKey::Metadata, 12, &MetadataRequest::default()).await;
    assert_eq!(metadata.brokers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_unknown_group_describe_should_answer_per_version() {
    use gregor_protocol::kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
    let broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_static_str("nobody"))]);
    let v6: DescribeGroupsResponse = raw.call(ApiKey::DescribeGroups, 6, &request).await;
    assert_eq!(v6.groups[0].error_code, 69, "GROUP_ID_NOT_FOUND");
    let v5: DescribeGroupsResponse = raw.call(ApiKey::DescribeGroups, 5, &request).await;
    assert_eq!((v5.groups[0].error_code, v5.groups[0].group_state.as_str()), (0, "Dead"));
}
