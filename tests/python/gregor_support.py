"""Client-side helpers shared by the tests: topic creation, producing with delivery
reports, and reading partitions back by assign() (no consumer group: the group
coordinator is not served yet). Every loop is bounded by a deadline."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# librdkafka's defaults back off reconnects up to 10 s; the tests restart brokers.
FAST_RECONNECT = {
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "retry.backoff.ms": 50,
    "retry.backoff.max.ms": 500,
    "socket.connection.setup.timeout.ms": 5000,
}

CREATE_TIME = 0  # kafka-python's timestamp_type for CreateTime


@dataclass
class Msg:
    """One record as a client read it, in a client-neutral shape."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int | None = None
    create_time: bool | None = None


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **FAST_RECONNECT})


def create_topic(bootstrap: str, name: str, partitions: int, config: dict | None = None, timeout: float = 20.0) -> None:
    """Creates a topic with confluent-kafka's AdminClient and waits until every
    partition has a leader in the metadata."""
    a = admin(bootstrap)
    futures = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
                              request_timeout=timeout, operation_timeout=timeout)
    futures[name].result(timeout=timeout)
    wait_for_partitions(a, name, partitions, timeout)


def wait_for_partitions(a: AdminClient, name: str, partitions: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = a.list_topics(topic=name, timeout=5)
        t = md.topics.get(name)
        last = t
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
                p.leader >= 0 and p.error is None for p in t.partitions.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"topic {name} not ready with {partitions} partitions within {timeout}s: {last}")


def topic_partitions(bootstrap: str, name: str, timeout: float = 10.0) -> dict:
    md = admin(bootstrap).list_topics(topic=name, timeout=timeout)
    t = md.topics[name]
    assert t.error is None, f"metadata error for {name}: {t.error}"
    return t.partitions


# ---------------------------------------------------------------- confluent-kafka


@dataclass
class Delivery:
    index: int
    error: KafkaError | None
    partition: int | None
    offset: int | None
    timestamp: int | None


def confluent_producer(bootstrap: str, **conf) -> Producer:
    base = {"bootstrap.servers": bootstrap, "linger.ms": 5, **FAST_RECONNECT}
    base.update(conf)
    return Producer(base)


def send_unflushed(producer: Producer, topic: str, items: list[dict]) -> list[Delivery | None]:
    """Produces `items` (kwargs for Producer.produce) without flushing; the returned list
    is filled in by the delivery reports (flush, or commit a transaction, first)."""
    results: list[Delivery | None] = [None] * len(items)

    def callback(i):
        def cb(err, msg):
            results[i] = Delivery(i, err, msg.partition() if msg is not None else None, msg.offset() if msg is not None else None,
                                  msg.timestamp()[1] if msg is not None else None)
        return cb

    for i, item in enumerate(items):
        for _ in range(1000):
            try:
                producer.produce(topic, on_delivery=callback(i), **item)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    return results


def produce_confluent(producer: Producer, topic: str, items: list[dict], flush_timeout: float = 30.0) -> list[Delivery]:
    """Produces `items` (kwargs for Producer.produce: key, value, headers, partition,
    timestamp) and returns one Delivery per item, in item order."""
    results = send_unflushed(producer, topic, items)
    remaining = producer.flush(flush_timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {flush_timeout}s"
    missing = [i for i, r in enumerate(results) if r is None]
    assert not missing, f"no delivery report for items {missing[:10]}"
    return results  # type: ignore[return-value]


def confluent_consumer(bootstrap: str, **conf) -> Consumer:
    """An assign()-only consumer. librdkafka needs a group.id to construct a consumer;
    nothing here commits or subscribes, so no group coordinator is involved."""
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": "gregor-tests-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 100,
        **FAST_RECONNECT,
    }
    base.update(conf)
    return Consumer(base)


def _from_confluent(m) -> Msg:
    ts_type, ts = m.timestamp()
    return Msg(m.topic(), m.partition(), m.offset(), m.key(), m.value(), list(m.headers() or []), ts,
               ts_type == 1)  # TIMESTAMP_CREATE_TIME


def read_confluent(bootstrap: str, topic: str, starts: dict[int, int], ends: dict[int, int] | None = None,
                   timeout: float = 30.0, **conf) -> list[Msg]:
    """Reads each partition p from offset starts[p] up to (excluding) ends[p] (default:
    its high watermark at the time of the call). Fails on any consumer error."""
    c = confluent_consumer(bootstrap, **conf)
    try:
        if ends is None:
            ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in starts}
        pending = {p for p in starts if starts[p] < ends[p]}
        out: list[Msg] = []
        if not pending:
            return out
        c.assign([TopicPartition(topic, p, starts[p]) for p in starts])
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            if m.offset() >= ends[m.partition()]:
                continue
            out.append(_from_confluent(m))
            if m.offset() >= ends[m.partition()] - 1:
                pending.discard(m.partition())
        assert not pending, f"partitions {sorted(pending)} of {topic} not read to {ends} within {timeout}s"
        return out
    finally:
        c.close()


def read_all_confluent(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0, **conf) -> list[Msg]:
    return read_confluent(bootstrap, topic, {p: 0 for p in range(partitions)}, timeout=timeout, **conf)


# ---------------------------------------------------------------- kafka-python


def kp_producer(bootstrap: str, **conf):
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap, **conf)


def kp_consumer(bootstrap: str, **conf):
    from kafka import KafkaConsumer

    base = dict(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", fetch_max_wait_ms=100, request_timeout_ms=30000)
    base.update(conf)
    return KafkaConsumer(**base)


def read_kafka_python(bootstrap: str, topic: str, starts: dict[int, int], ends: dict[int, int] | None = None,
                      timeout: float = 30.0, **conf) -> list[Msg]:
    """kafka-python KafkaConsumer with group_id=None, assign() and seek()."""
    from kafka import TopicPartition as KTP

    c = kp_consumer(bootstrap, **conf)
    try:
        tps = {p: KTP(topic, p) for p in starts}
        c.assign(list(tps.values()))
        if ends is None:
            end_offsets = c.end_offsets(list(tps.values()))
            ends = {p: end_offsets[tp] for p, tp in tps.items()}
        for p, tp in tps.items():
            c.seek(tp, starts[p])
        pending = {p for p in starts if starts[p] < ends[p]}
        out: list[Msg] = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            batches = c.poll(timeout_ms=200)
            for tp, records in batches.items():
                for r in records:
                    if r.offset >= ends[r.partition]:
                        continue
                    out.append(Msg(r.topic, r.partition, r.offset, r.key, r.value, list(r.headers or []),
                                   r.timestamp, r.timestamp_type == CREATE_TIME))
                    if r.offset >= ends[r.partition] - 1:
                        pending.discard(r.partition)
        assert not pending, f"partitions {sorted(pending)} of {topic} not read to {ends} within {timeout}s"
        return out
    finally:
        c.close()


def read_all_kafka_python(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0, **conf) -> list[Msg]:
    return read_kafka_python(bootstrap, topic, {p: 0 for p in range(partitions)}, timeout=timeout, **conf)


def assert_delivered(deliveries: list[Delivery]) -> None:
    bad = [d for d in deliveries if d.error is not None]
    assert not bad, f"{len(bad)} of {len(deliveries)} deliveries failed, e.g. {[(d.index, str(d.error)) for d in bad[:5]]}"
