//! Contract (librdkafka's transactional producer): a read_committed consumer sees
//! committed transactions and never aborted ones, while read_uncommitted sees both; an
//! open transaction holds read_committed consumers back (last stable offset) across a
//! restart, until a new producer with the same transactional.id fences the old one and
//! the coordinator aborts its transaction.

mod common;

use std::time::Duration;

use common::{client_config, payload, producer, receive, TestBroker};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(15);

fn transactional(bootstrap: &str, id: &str) -> FutureProducer {
    let p = producer(bootstrap, &[("transactional.id", id), ("linger.ms", "0")]);
    tokio::task::block_in_place(|| p.init_transactions(TIMEOUT)).expect("init_transactions");
    p
}

fn consumer(bootstrap: &str, topic: &str, isolation: &str) -> StreamConsumer {
    let c: StreamConsumer = client_config(bootstrap)
        .set("group.id", format!("txn-test-{isolation}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("offset");
    c.assign(&tpl).expect("assign");
    c
}

async fn send(p: &FutureProducer, topic: &str, values: &[&str]) {
    for v in values {
        p.send(FutureRecord::<(), _>::to(topic).partition(0).payload(*v), TIMEOUT).await.expect("delivered");
    }
}

fn texts(messages: &[rdkafka::message::OwnedMessage]) -> Vec<String> {
    messages.iter().map(|m| String::from_utf8_lossy(payload(m)).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_committed_and_aborted_transactions_should_show_only_committed_to_read_committed() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let p = transactional(&bootstrap, "rs-commit-abort");
    for (values, commit) in [(&["a1", "a2"][..], true), (&["b1", "b2"][..], false), (&["c1"][..], true)] {
        p.begin_transaction().expect("begin");
        send(&p, "txn-visibility", values).await;
        tokio::task::block_in_place(
            || {
                if commit {
                    p.commit_transaction(TIMEOUT)
                } else {
                    p.abort_transaction(TIMEOUT)
                }
            },
        )
        .expect("end transaction");
    }
    let committed = consumer(&bootstrap, "txn-visibility", "read_committed");
    assert_eq!(texts(&receive(&committed, 3, TIMEOUT).await), ["a1", "a2", "c1"]);
    let everything = consumer(&bootstrap, "txn-visibility", "read_uncommitted");
    assert_eq!(texts(&receive(&everything, 5, TIMEOUT).await), ["a1", "a2", "b1", "b2", "c1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_open_transaction_across_restart_when_fenced_should_abort_it_and_release_the_lso() {
    let mut broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let first = transactional(&bootstrap, "rs-fence");
    first.begin_transaction().expect("begin");
    send(&first, "txn-fence", &["open-1", "open-2"]).await;
    let plain = producer(&bootstrap, &[("enable.idempotence", "true")]);
    send(&plain, "txn-fence", &["after"]).await;
    drop(plain);
    broker.restart().await;

    let reader = consumer(&bootstrap, "txn-fence", "read_committed");
    let early = tokio::time::timeout(Duration::from_secs(2), reader.recv()).await;
    assert!(early.is_err(), "nothing is stable while the transaction is open: {early:?}");

    let second = transactional(&bootstrap, "rs-fence");
    second.begin_transaction().expect("begin");
    send(&second, "txn-fence", &["second"]).await;
    tokio::task::block_in_place(|| second.commit_transaction(TIMEOUT)).expect("commit");
    assert_eq!(texts(&receive(&reader, 2, TIMEOUT).await), ["after", "second"]);
    let stale = tokio::task::block_in_place(|| first.commit_transaction(TIMEOUT));
    assert!(stale.is_err(), "the fenced producer cannot commit");
}
