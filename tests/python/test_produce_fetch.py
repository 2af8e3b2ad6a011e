"""Produce with confluent-kafka and kafka-python, read back by partition with assign()
and seek (no consumer group), and check every record field, the partitioners, fetches
that start inside a compressed batch, and ListOffsets."""

from __future__ import annotations

import time
import zlib

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition
from kafka.partitioner.default import murmur2

import gregor_wire as w

from gregor_support import (
    confluent_consumer,
    confluent_producer,
    create_topic,
    kp_consumer,
    kp_producer,
    produce_confluent,
    read_all_confluent,
    read_all_kafka_python,
    read_confluent,
    read_kafka_python,
)

PARTITIONS = 6
N = 60


def librdkafka_consistent_random(key: bytes, partitions: int) -> int:
    """librdkafka's default `consistent_random` partitioner: CRC-32 (zlib's) of the key
    modulo the partition count (random only for a null or empty key)."""
    return zlib.crc32(key) % partitions


def java_murmur2(key: bytes, partitions: int) -> int:
    """Java's (and kafka-python's) default partitioner for keyed records."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_keyed_messages_with_headers_round_trip_both_clients(broker):
    topic = "pf-keyed"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    base_ts = int(time.time() * 1000) - 60_000

    # confluent-kafka: explicit timestamps, two headers (one repeated name, one null value).
    items = [
        dict(key=f"ck-{i}".encode(), value=f"confluent value {i}".encode() * (1 + i % 3),
             headers=[("src", b"confluent"), ("idx", str(i).encode()), ("idx", b"dup"), ("nothing", None)],
             timestamp=base_ts + i)
        for i in range(N)
    ]
    producer = confluent_producer(broker.bootstrap, **{"linger.ms": 20})
    deliveries = produce_confluent(producer, topic, items)
    for d in deliveries:
        assert d.error is None, d
    expected = {}
    for item, d in zip(items, deliveries):
        expected[item["key"]] = (item, d.partition, d.offset)
        assert d.partition == librdkafka_consistent_random(item["key"], PARTITIONS), (item["key"], d.partition)

    # kafka-python: murmur2 partitioner, timestamps and headers.
    kp = kp_producer(broker.bootstrap, linger_ms=20, acks="all")
    futures = []
    for i in range(N):
        key = f"kk-{i}".encode()
        item = dict(key=key, value=f"kafka-python value {i}".encode(),
                    headers=[("src", b"kafka-python"), ("idx", str(i).encode())], timestamp=base_ts + 1000 + i)
        futures.append((item, kp.send(topic, key=key, value=item["value"], headers=item["headers"],
                                      timestamp_ms=item["timestamp"])))
    kp.flush(timeout=30)
    for item, f in futures:
        md = f.get(timeout=30)
        assert md.partition == java_murmur2(item["key"], PARTITIONS), (item["key"], md.partition)
        expected[item["key"]] = (item, md.partition, md.offset)
    kp.close(timeout=10)

    # Offsets per partition are dense: 0..count-1.
    per_partition: dict[int, list[int]] = {}
    for _, p, o in expected.values():
        per_partition.setdefault(p, []).append(o)
    for p, offsets in per_partition.items():
        assert sorted(offsets) == list(range(len(offsets))), (p, sorted(offsets))

    for reader in (read_all_confluent, read_all_kafka_python):
        msgs = reader(broker.bootstrap, topic, PARTITIONS)
        seen = {}
        for m in msgs:
            assert m.key not in seen, f"{reader.__name__}: {m.key} read twice"
            seen[m.key] = m
        assert set(seen) == set(expected), f"{reader.__name__}: missing {set(expected) - set(seen)}"
        for key, (item, partition, offset) in expected.items():
            m = seen[key]
            assert (m.partition, m.offset) == (partition, offset), (reader.__name__, key)
            assert m.value == item["value"], (reader.__name__, key)
            assert m.headers == item["headers"], (reader.__name__, key, m.headers)
            assert m.timestamp == item["timestamp"] and m.create_time, (reader.__name__, key, m.timestamp)


def test_null_keys_and_default_timestamps(broker):
    topic = "pf-nullkeys"
    create_topic(broker.bootstrap, topic, 3)
    before = int(time.time() * 1000)
    producer = confluent_producer(broker.bootstrap)
    deliveries = produce_confluent(producer, topic, [dict(value=f"v{i}".encode()) for i in range(30)])
    after = int(time.time() * 1000)
    assert all(d.error is None for d in deliveries)
    msgs = read_all_kafka_python(broker.bootstrap, topic, 3)
    assert sorted(m.value for m in msgs) == sorted(f"v{i}".encode() for i in range(30))
    for m in msgs:
        assert m.key is None and m.headers == []
        assert before - 5 <= m.timestamp <= after + 5 and m.create_time


def test_fetch_from_offset_inside_compressed_batch(broker):
    topic = "pf-inside-batch"
    create_topic(broker.bootstrap, topic, 1)
    # One zstd batch of 20 records from confluent-kafka (long linger, everything enqueued
    # before the flush), then one gzip batch of 20 from kafka-python.
    producer = confluent_producer(broker.bootstrap, **{"linger.ms": 500, "compression.type": "zstd",
                                                       "batch.num.messages": 1000})
    deliveries = produce_confluent(producer, topic, [dict(key=b"k", value=f"r{i:03d}".encode(), partition=0)
                                                     for i in range(20)])
    assert [d.offset for d in deliveries] == list(range(20))
    kp = kp_producer(broker.bootstrap, linger_ms=500, compression_type="gzip")
    futures = [kp.send(topic, value=f"r{i:03d}".encode(), partition=0) for i in range(20, 40)]
    kp.flush(timeout=30)
    assert [f.get(timeout=10).offset for f in futures] == list(range(20, 40))
    kp.close(timeout=10)

    # On the wire: a fetch at offset 7 returns both batches whole, as stored (Kafka does
    # not split batches; clients skip the records before the fetch offset).
    with w.RawConnection(broker.bootstrap) as c:
        corr, part = w.parse_fetch_v4(c.request(w.fetch_v4(77, topic, 0, 7)))
    assert corr == 77 and part.error_code == 0 and part.high_watermark == 40
    batches = part.batches()
    assert [(b.base_offset, b.last_offset_delta, b.record_count, b.magic) for b in batches] == \
        [(0, 19, 20, 2), (20, 19, 20, 2)], batches
    assert [b.compression for b in batches] == [4, 1], "expected a zstd (4) then a gzip (1) batch"

    for start in (7, 19, 20, 33, 39):
        for reader in (read_confluent, read_kafka_python):
            msgs = reader(broker.bootstrap, topic, {0: start})
            assert [m.offset for m in msgs] == list(range(start, 40)), (reader.__name__, start)
            assert [m.value for m in msgs] == [f"r{i:03d}".encode() for i in range(start, 40)]


def test_list_offsets_watermarks_and_times(broker):
    topic = "pf-offsets"
    create_topic(broker.bootstrap, topic, 2)
    base_ts = 1_700_000_000_000
    # Partition 0: 10 records, timestamps base, base+1000, ... (one record per batch);
    # partition 1 stays empty.
    producer = confluent_producer(broker.bootstrap, **{"linger.ms": 0})
    for i in range(10):
        produce_confluent(producer, topic, [dict(value=f"t{i}".encode(), partition=0, timestamp=base_ts + 1000 * i)])

    c = confluent_consumer(broker.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 10)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, 0)
        queries = [TopicPartition(topic, 0, base_ts - 5), TopicPartition(topic, 0, base_ts + 1500),
                   TopicPartition(topic, 0, base_ts + 9000), TopicPartition(topic, 0, base_ts + 9001)]
        answers = [c.offsets_for_times([q], timeout=10)[0] for q in queries]
        for a in answers:
            assert a.error is None, a
        # The first offset whose timestamp is >= the query; past the last one: end (-1).
        assert [a.offset for a in answers] == [0, 2, 9, OFFSET_END]
        empty = c.offsets_for_times([TopicPartition(topic, 1, base_ts)], timeout=10)[0]
        assert empty.offset == OFFSET_END and empty.error is None
    finally:
        c.close()

    from kafka import TopicPartition as KTP

    k = kp_consumer(broker.bootstrap)
    try:
        tp0, tp1 = KTP(topic, 0), KTP(topic, 1)
        assert k.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert k.end_offsets([tp0, tp1]) == {tp0: 10, tp1: 0}
        found = k.offsets_for_times({tp0: base_ts + 4200, tp1: base_ts})
        assert found[tp0].offset == 5 and found[tp0].timestamp == base_ts + 5000, found
        assert found[tp1] is None, found
        assert k.offsets_for_times({tp0: base_ts + 10_000})[tp0] is None
    finally:
        k.close()

    # Seeking to a looked-up offset reads from there.
    msgs = read_confluent(broker.bootstrap, topic, {0: 5})
    assert [m.value for m in msgs] == [f"t{i}".encode() for i in range(5, 10)]
    assert [m.timestamp for m in msgs] == [base_ts + 1000 * i for i in range(5, 10)]


def test_seek_to_beginning_and_end(broker):
    topic = "pf-seek"
    create_topic(broker.bootstrap, topic, 1)
    producer = confluent_producer(broker.bootstrap)
    produce_confluent(producer, topic, [dict(value=f"s{i}".encode()) for i in range(5)])
    msgs = read_confluent(broker.bootstrap, topic, {0: OFFSET_BEGINNING}, ends={0: 5})
    assert [m.offset for m in msgs] == list(range(5))
    # Assigning at OFFSET_END and producing afterwards reads only the new records.
    c = confluent_consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_END)])
        deadline = time.monotonic() + 10
        # Wait until the position is resolved (an EOF event at offset 5).
        eof = False
        while not eof and time.monotonic() < deadline:
            m = c.poll(0.2)
            eof = m is not None and m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF
        assert eof and m.offset() == 5, "no end-of-partition event at offset 5"
        produce_confluent(producer, topic, [dict(value=b"after-end")])
        got = None
        deadline = time.monotonic() + 15
        while got is None and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got = m
        assert got is not None and got.offset() == 5 and got.value() == b"after-end"
    finally:
        c.close()
