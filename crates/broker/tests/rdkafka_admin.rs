//! Contract: topic administration through librdkafka's admin client: create (with
//! configs, validate-only, explicit errors), describe configs with sources, grow
//! partitions, delete; every change survives a restart because it lives in the
//! metadata log.

mod common;

use std::time::Duration;

use common::{client_config, TestBroker};
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

fn admin_client(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap).create().expect("admin client")
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

async fn partition_count(admin: &AdminClient<DefaultClientContext>, topic: &str) -> usize {
    let metadata = admin.inner().fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    metadata.topics()[0].partitions().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_admin_client_should_create_describe_grow_and_delete_topics() {
    let mut broker = TestBroker::start().await;
    let admin = admin_client(&broker.bootstrap());
    let topic = NewTopic::new("payments", 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let results = admin.create_topics([&topic], &options()).await.expect("create");
    assert_eq!(results, vec![Ok("payments".to_string())]);

    let again = admin.create_topics([&topic], &options()).await.expect("create again");
    assert_eq!(again, vec![Err(("payments".to_string(), RDKafkaErrorCode::TopicAlreadyExists))]);
    let bad = NewTopic::new("bad name", 1, TopicReplication::Fixed(1));
    let results = admin.create_topics([&bad], &options()).await.expect("create bad");
    assert_eq!(results, vec![Err(("bad name".to_string(), RDKafkaErrorCode::InvalidTopic))]);
    let too_many = NewTopic::new("replicated", 1, TopicReplication::Fixed(3));
    let results = admin.create_topics([&too_many], &options()).await.expect("create rf 3");
    assert_eq!(results, vec![Err(("replicated".to_string(), RDKafkaErrorCode::InvalidReplicationFactor))]);
    let bad_config = NewTopic::new("configured", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "shred");
    let results = admin.create_topics([&bad_config], &options()).await.expect("create bad config");
    assert_eq!(results, vec![Err(("configured".to_string(), RDKafkaErrorCode::InvalidConfig))]);
    let dry = NewTopic::new("dry-run", 2, TopicReplication::Fixed(1));
    let results = admin.create_topics([&dry], &options().validate_only(true)).await.expect("validate only");
    assert_eq!(results, vec![Ok("dry-run".to_string())]);

    let configs = admin.describe_configs([&ResourceSpecifier::Topic("payments")], &options()).await.expect("describe");
    let resource = configs[0].as_ref().expect("topic resource");
    let retention = resource.get("retention.ms").expect("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    let segment = resource.get("segment.bytes").expect("segment.bytes");
    assert_eq!((segment.value.as_deref(), &segment.source), (Some("1073741824"), &ConfigSource::Default));

    let grow = NewPartitions::new("payments", 5);
    let results = admin.create_partitions([&grow], &options()).await.expect("grow");
    assert_eq!(results, vec![Ok("payments".to_string())]);
    assert_eq!(partition_count(&admin, "payments").await, 5);

    drop(admin);
    broker.restart().await;
    let admin = admin_client(&broker.bootstrap());
    assert_eq!(partition_count(&admin, "payments").await, 5, "partitions survive restart");
    let all = admin.inner().fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
    assert!(all.topics().iter().all(|t| t.name() != "dry-run"), "validate_only created nothing");

    let results = admin.delete_topics(&["payments"], &options()).await.expect("delete");
    assert_eq!(results, vec![Ok("payments".to_string())]);
    let results = admin.delete_topics(&["payments"], &options()).await.expect("delete again");
    assert_eq!(results, vec![Err(("payments".to_string(), RDKafkaErrorCode::UnknownTopicOrPartition))]);
    assert!(!broker.dir.path().join("payments-0").exists(), "data removed from disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_broker_resource_should_describe_static_and_default_configs() {
    let broker = TestBroker::start_with(&[("num.partitions", "4")]).await;
    let admin = admin_client(&broker.bootstrap());
    let configs = admin.describe_configs([&ResourceSpecifier::Broker(0)], &options()).await.expect("describe broker");
    let resource = configs[0].as_ref().expect("broker resource");
    let partitions = resource.get("num.partitions").expect("num.partitions");
    assert_eq!((partitions.value.as_deref(), &partitions.source), (Some("4"), &ConfigSource::StaticBroker));
    let retention = resource.get("log.retention.ms").expect("log.retention.ms");
    assert_eq!((retention.value.as_deref(), &retention.source), (Some("604800000"), &ConfigSource::Default));
}
