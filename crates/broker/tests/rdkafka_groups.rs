//! Contract: librdkafka consumer groups on Gregor: members of one group split the
//! partitions, every message is processed once with manual commits, a member that leaves
//! has its partitions taken over, and committed offsets survive a broker restart.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client_config, producer, TestBroker};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(30);

fn group_consumer(bootstrap: &str, group: &str) -> StreamConsumer {
    group_consumer_with(bootstrap, group, "classic")
}

/// `protocol` is librdkafka's `group.protocol`: "classic" (JoinGroup/SyncGroup, client-side
/// assignment) or "consumer" (KIP-848 heartbeats, server-side assignment).
fn group_consumer_with(bootstrap: &str, group: &str, protocol: &str) -> StreamConsumer {
    let mut config = client_config(bootstrap);
    let _ = config
        .set("group.id", group)
        .set("group.protocol", protocol)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    if protocol == "classic" {
        // Under KIP-848 these are the broker's to set (group.consumer.*).
        let _ = config.set("session.timeout.ms", "6000").set("heartbeat.interval.ms", "500");
    }
    config.create().expect("consumer")
}

async fn produce_keyed(bootstrap: &str, topic: &str, range: std::ops::Range<usize>) {
    let producer = producer(bootstrap, &[]);
    for i in range {
        let (key, value) = (format!("k{i}"), format!("{i}"));
        producer
            .send(FutureRecord::to(topic).key(&key).payload(&value), Duration::from_secs(10))
            .await
            .expect("delivered");
    }
}

async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = client_config(bootstrap).create().expect("admin");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin.create_topics([&new], &AdminOptions::new()).await.expect("create");
    assert!(results[0].is_ok(), "{results:?}");
}

/// Consumes until stopped, committing each message after "processing" it.
fn spawn_member(consumer: Arc<StreamConsumer>, seen: Arc<Mutex<Vec<usize>>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match consumer.recv().await {
                Ok(m) => {
                    let value: usize = std::str::from_utf8(m.payload().unwrap()).unwrap().parse().unwrap();
                    seen.lock().unwrap().push(value);
                    // A synchronous commit blocks its thread: keep the runtime's workers free.
                    tokio::task::block_in_place(|| consumer.commit_message(&m, CommitMode::Sync)).expect("commit");
                }
                Err(e) => panic!("consumer error: {e}"),
            }
        }
    })
}

fn assigned(consumer: &StreamConsumer) -> BTreeSet<i32> {
    consumer.assignment().expect("assignment").elements().iter().map(|e| e.partition()).collect()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_three_members_should_split_partitions_and_take_over_after_a_leave() {
    split_and_take_over("classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_kip848_members_should_split_partitions_and_take_over_after_a_leave() {
    split_and_take_over("consumer").await;
}

async fn split_and_take_over(protocol: &str) {
    let broker = TestBroker::start_with(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("group.consumer.heartbeat.interval.ms", "300"),
        ("group.consumer.session.timeout.ms", "10000"),
    ])
    .await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "events", 6).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let members: Vec<Arc<StreamConsumer>> =
        (0..3).map(|_| Arc::new(group_consumer_with(&bootstrap, "splitters", protocol))).collect();
    for m in &members {
        m.subscribe(&["events"]).expect("subscribe");
    }
    let tasks: Vec<_> = members.iter().map(|m| spawn_member(m.clone(), seen.clone())).collect();
    wait_until("each member owns two partitions", || members.iter().all(|m| assigned(m).len() == 2)).await;
    let union: BTreeSet<i32> = members.iter().flat_map(|m| assigned(m)).collect();
    assert_eq!(union, (0..6).collect());

    produce_keyed(&bootstrap, "events", 0..120).await;
    wait_until("120 messages processed", || seen.lock().unwrap().len() >= 120).await;

    // One member leaves cleanly (closing the consumer sends LeaveGroup, or a KIP-848
    // leave heartbeat); the other two take over its partitions.
    let mut tasks = tasks;
    let leaving_task = tasks.pop().expect("three tasks");
    leaving_task.abort();
    let _ = leaving_task.await;
    let mut members = members;
    let leaving = members.pop().expect("three members");
    tokio::task::spawn_blocking(move || drop(leaving)).await.unwrap();
    wait_until("two members own all six partitions", || {
        members[..2].iter().map(|m| assigned(m).len()).sum::<usize>() == 6
    })
    .await;
    produce_keyed(&bootstrap, "events", 120..240).await;
    wait_until("240 messages processed", || seen.lock().unwrap().len() >= 240).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut values = seen.lock().unwrap().clone();
    values.sort_unstable();
    assert_eq!(values, (0..240).collect::<Vec<_>>(), "every message processed exactly once");
    for t in &tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_committed_offsets_when_broker_restarts_should_resume_there() {
    let mut broker = TestBroker::start_with(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "resume", 2).await;
    produce_keyed(&bootstrap, "resume", 0..40).await;
    {
        let consumer = group_consumer(&bootstrap, "resumers");
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("resume", 0, Offset::Offset(7)).unwrap();
        offsets.add_partition_offset("resume", 1, Offset::Offset(11)).unwrap();
        consumer.commit(&offsets, CommitMode::Sync).expect("standalone commit");
        let committed = consumer.committed_offsets(offsets.clone(), Duration::from_secs(10)).expect("committed");
        assert_eq!(committed.find_partition("resume", 1).unwrap().offset(), Offset::Offset(11));
    }
    broker.restart().await;
    let bootstrap = broker.bootstrap();
    let consumer = group_consumer(&bootstrap, "resumers");
    consumer.subscribe(&["resume"]).expect("subscribe");
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while first.len() < 2 {
        let m = tokio::time::timeout_at(deadline, consumer.recv()).await.expect("messages").expect("no error");
        let _ = first.entry(m.partition()).or_insert(m.offset());
    }
    assert_eq!(first, BTreeMap::from([(0, 7), (1, 11)]), "resumed at the committed offsets");
}
