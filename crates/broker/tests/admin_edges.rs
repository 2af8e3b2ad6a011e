//! Contract: the administrative APIs beyond topic creation, through raw requests:
//! IncrementalAlterConfigs (SET/DELETE/APPEND/SUBTRACT, validation, live effect on
//! retention), AlterConfigs, dynamic broker defaults, DeleteRecords, OffsetForLeaderEpoch,
//! DescribeLogDirs and DescribeTopicPartitions paging.

mod common;

use common::raw::Raw;
use common::TestBroker;
use gregor_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use gregor_protocol::kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

async fn create(raw: &mut Raw, name: &str, partitions: i32) {
    use gregor_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
    let topic = CreatableTopic::default()
        .with_name(TopicName(s(name)))
        .with_num_partitions(partitions)
        .with_replication_factor(1);
    let response: CreateTopicsResponse =
        raw.call(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_topics(vec![topic])).await;
    assert_eq!(response.topics[0].error_code, 0);
}

async fn alter(raw: &mut Raw, resource: (i8, &str), ops: &[(&str, i8, Option<&str>)]) -> (i16, Option<String>) {
    let configs = ops
        .iter()
        .map(|(k, op, v)| AlterableConfig::default().with_name(s(k)).with_config_operation(*op).with_value(v.map(s)))
        .collect();
    let resource = AlterConfigsResource::default()
        .with_resource_type(resource.0)
        .with_resource_name(s(resource.1))
        .with_configs(configs);
    let response: IncrementalAlterConfigsResponse = raw
        .call(
            ApiKey::IncrementalAlterConfigs,
            1,
            &IncrementalAlterConfigsRequest::default().with_resources(vec![resource]),
        )
        .await;
    let r = &response.responses[0];
    (r.error_code, r.error_message.as_ref().map(ToString::to_string))
}

async fn config(raw: &mut Raw, resource: (i8, &str), key: &str) -> (Option<String>, i8) {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(resource.0)
        .with_resource_name(s(resource.1))
        .with_configuration_keys(Some(vec![s(key)]));
    let response: DescribeConfigsResponse =
        raw.call(ApiKey::DescribeConfigs, 4, &DescribeConfigsRequest::default().with_resources(vec![resource])).await;
    let entry = &response.results[0].configs[0];
    (entry.value.as_ref().map(ToString::to_string), entry.config_source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_incremental_alter_configs_should_validate_store_and_survive_restart() {
    let mut broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "tuned", 1).await;
    assert_eq!(alter(&mut raw, (TOPIC, "tuned"), &[("retention.ms", 0, Some("60000"))]).await.0, 0);
    assert_eq!(config(&mut raw, (TOPIC, "tuned"), "retention.ms").await, (Some("60000".into()), 1));
    assert_eq!(alter(&mut raw, (TOPIC, "tuned"), &[("cleanup.policy", 2, Some("compact"))]).await.0, 0);
    assert_eq!(config(&mut raw, (TOPIC, "tuned"), "cleanup.policy").await.0.as_deref(), Some("delete,compact"));
    assert_eq!(alter(&mut raw, (TOPIC, "tuned"), &[("cleanup.policy", 3, Some("delete"))]).await.0, 0);
    assert_eq!(config(&mut raw, (TOPIC, "tuned"), "cleanup.policy").await.0.as_deref(), Some("compact"));

    let (code, message) = alter(&mut raw, (TOPIC, "tuned"), &[("retention.ms", 0, Some("soon"))]).await;
    assert_eq!(code, 40, "INVALID_CONFIG: {message:?}");
    assert_eq!(alter(&mut raw, (TOPIC, "tuned"), &[("no.such.key", 0, Some("1"))]).await.0, 40);
    assert_eq!(
        alter(&mut raw, (TOPIC, "tuned"), &[("retention.ms", 2, Some("1"))]).await.0,
        40,
        "APPEND on a non-list"
    );
    assert_eq!(alter(&mut raw, (TOPIC, "missing"), &[("retention.ms", 0, Some("1"))]).await.0, 3);

    // Cluster-wide dynamic default: applies to topics without an override.
    assert_eq!(alter(&mut raw, (BROKER, ""), &[("log.retention.ms", 0, Some("120000"))]).await.0, 0);
    create(&mut raw, "plain", 1).await;
    assert_eq!(config(&mut raw, (TOPIC, "plain"), "retention.ms").await, (Some("120000".into()), 3));
    assert_eq!(alter(&mut raw, (BROKER, ""), &[("num.partitions", 0, Some("3"))]).await.0, 40, "static-only key");

    drop(raw);
    broker.restart().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(config(&mut raw, (TOPIC, "tuned"), "retention.ms").await, (Some("60000".into()), 1));
    assert_eq!(config(&mut raw, (TOPIC, "plain"), "retention.ms").await, (Some("120000".into()), 3));
    assert_eq!(alter(&mut raw, (TOPIC, "tuned"), &[("retention.ms", 1, None)]).await.0, 0);
    assert_eq!(config(&mut raw, (TOPIC, "tuned"), "retention.ms").await, (Some("120000".into()), 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_delete_records_and_epochs_and_log_dirs_should_answer_like_kafka() {
    use gregor_protocol::kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use gregor_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use gregor_protocol::kafka_protocol::messages::{
        DeleteRecordsRequest, DeleteRecordsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
        DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, OffsetForLeaderEpochRequest,
        OffsetForLeaderEpochResponse,
    };
    let broker = TestBroker::start().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "trimmed", 3).await;
    common::produce_values(&broker.bootstrap(), "trimmed", 0, 10).await;

    let delete = |offset: i64| {
        let p = DeleteRecordsPartition::default().with_partition_index(0).with_offset(offset);
        let t = DeleteRecordsTopic::default().with_name(TopicName(s("trimmed"))).with_partitions(vec![p]);
        DeleteRecordsRequest::default().with_topics(vec![t]).with_timeout_ms(1000)
    };
    let response: DeleteRecordsResponse = raw.call(ApiKey::DeleteRecords, 2, &delete(4)).await;
    let p = &response.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (0, 4));
    let response: DeleteRecordsResponse = raw.call(ApiKey::DeleteRecords, 2, &delete(99)).await;
    assert_eq!(response.topics[0].partitions[0].error_code, 1, "OFFSET_OUT_OF_RANGE beyond the high watermark");

    let p = OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(0).with_current_leader_epoch(-1);
    let t = OffsetForLeaderTopic::default().with_topic(TopicName(s("trimmed"))).with_partitions(vec![p]);
    let response: OffsetForLeaderEpochResponse =
        raw.call(ApiKey::OffsetForLeaderEpoch, 4, &OffsetForLeaderEpochRequest::default().with_topics(vec![t])).await;
    let e = &response.topics[0].partitions[0];
    assert_eq!((e.error_code, e.leader_epoch, e.end_offset), (0, 0, 10));

    let response: DescribeLogDirsResponse =
        raw.call(ApiKey::DescribeLogDirs, 4, &DescribeLogDirsRequest::default().with_topics(None)).await;
    let topic = response.results[0].topics.iter().find(|t| t.name.as_str() == "trimmed").expect("topic listed");
    assert_eq!(topic.partitions.len(), 3);
    assert!(topic.partitions[0].partition_size > 0);

    let request = DescribeTopicPartitionsRequest::default().with_response_partition_limit(2);
    let first: DescribeTopicPartitionsResponse = raw.call(ApiKey::DescribeTopicPartitions, 0, &request).await;
    let cursor = first.next_cursor.clone().expect("more partitions to page through");
    assert_eq!((cursor.topic_name.as_str(), cursor.partition_index), ("trimmed", 2));
    let cursor = gregor_protocol::kafka_protocol::messages::describe_topic_partitions_request::Cursor::default()
        .with_topic_name(cursor.topic_name)
        .with_partition_index(cursor.partition_index);
    let second: DescribeTopicPartitionsResponse =
        raw.call(ApiKey::DescribeTopicPartitions, 0, &request.with_cursor(Some(cursor))).await;
    assert_eq!(second.topics[0].partitions.len(), 1);
    assert!(second.next_cursor.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_retention_altered_at_run_time_should_apply_to_the_live_log() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let broker =
        TestBroker::start_with(&[("log.retention.check.interval.ms", "100"), ("log.segment.delete.delay.ms", "0")])
            .await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "shrinking", 1).await;
    let ops = [("segment.bytes", 0, Some("2048")), ("retention.bytes", 0, Some("4096"))];
    assert_eq!(alter(&mut raw, (TOPIC, "shrinking"), &ops).await.0, 0);
    common::produce_values(&broker.bootstrap(), "shrinking", 0, 300).await;
    let consumer: BaseConsumer = common::client_config(&broker.bootstrap()).create().expect("consumer");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (low, high) =
            consumer.fetch_watermarks("shrinking", 0, std::time::Duration::from_secs(5)).expect("watermarks");
        assert_eq!(high, 300);
        if low > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the new retention never applied");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
