"""confluent-kafka (librdkafka) in the client smoke matrix (see smoke_common.py)."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import smoke_common as s

CLIENT_ID = "smoke-confluent-kafka"


def admin(args) -> AdminClient:
    return AdminClient({"bootstrap.servers": args.bootstrap, "client.id": CLIENT_ID})


def create(args, state) -> str:
    a = admin(args)
    fs = a.create_topics([NewTopic(args.topic, num_partitions=s.PARTITIONS, replication_factor=1)],
                         operation_timeout=15, request_timeout=20)
    fs[args.topic].result(timeout=25)
    md = a.list_topics(args.topic, timeout=10).topics[args.topic]
    s.expect(md.error is None, f"metadata of the new topic: {md.error}")
    return s.check_created(len(md.partitions))


def produce(args, state) -> str:
    p = Producer({"bootstrap.servers": args.bootstrap, "client.id": CLIENT_ID, "acks": "all", "linger.ms": 5})
    records, errors = [], []

    def delivered(err, msg):
        if err is not None:
            errors.append(f"{msg.key()}: {err}")
        else:
            records.append([msg.key().decode(), msg.value().decode(), msg.partition(), msg.offset()])

    for k, v in s.messages():
        p.produce(args.topic, key=k, value=v, on_delivery=delivered)
        p.poll(0)
    left = p.flush(30)
    s.expect(left == 0, f"{left} records still unacknowledged after 30 s")
    s.expect(not errors, f"delivery errors: {errors[:3]}")
    return s.check_produced(state, records)


def consumer(args) -> Consumer:
    c = Consumer({"bootstrap.servers": args.bootstrap, "client.id": CLIENT_ID, "group.id": args.group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
    c.subscribe([args.topic])
    return c


def read(c: Consumer, want: int, linger: bool) -> list:
    records = []
    deadline = time.monotonic() + s.POLL_DEADLINE
    end = None
    while time.monotonic() < (end or deadline):
        msg = c.poll(0.2)
        if msg is not None:
            s.expect(msg.error() is None, f"consumer error: {msg.error()}")
            records.append([msg.partition(), msg.offset(), msg.key().decode(), msg.value().decode()])
        if len(records) >= want and end is None:
            if not linger:
                break
            end = time.monotonic() + s.LINGER
    return records


def commit(c: Consumer, topic: str, records: list) -> None:
    nxt = {}
    for p, o, _, _ in records:
        nxt[p] = max(nxt.get(p, 0), o + 1)
    res = c.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()], asynchronous=False)
    bad = [f"{tp.partition}: {tp.error}" for tp in res or [] if tp.error is not None]
    s.expect(not bad, f"commit errors: {bad}")


def consume(args, state) -> str:
    c = consumer(args)
    try:
        records = read(c, s.FIRST, linger=False)
        commit(c, args.topic, records)
        back = {tp.partition: tp.offset for tp in
                c.committed([TopicPartition(args.topic, p) for p in range(s.PARTITIONS)], timeout=10)}
    finally:
        c.close()
    return s.check_first_read(state, records, back)


def resume(args, state) -> str:
    c = consumer(args)
    try:
        records = read(c, s.remaining(state), linger=True)
        commit(c, args.topic, records)
    finally:
        c.close()
    return s.check_resumed(state, records)


def describe(args, state) -> str:
    a = admin(args)
    [t] = a.describe_topics(TopicCollection([args.topic]), request_timeout=15).values()
    t = t.result(timeout=20)
    cluster = a.describe_cluster(request_timeout=15).result(timeout=20)
    g = a.describe_consumer_groups([args.group], request_timeout=15)[args.group].result(timeout=20)
    offs = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(args.group)],
                                         request_timeout=15)[args.group].result(timeout=20)
    s.expect(not g.is_simple_consumer_group, "group described as a simple consumer group")
    return s.check_described(
        state, partitions=len(t.partitions), leaders=[p.leader.id for p in t.partitions],
        brokers=[n.id for n in cluster.nodes], group_state=g.state.name,
        offsets={tp.partition: tp.offset for tp in offs.topic_partitions if tp.topic == args.topic})


if __name__ == "__main__":
    s.main({"create": create, "produce": produce, "consume": consume, "resume": resume, "describe": describe})
