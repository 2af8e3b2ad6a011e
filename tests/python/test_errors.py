"""Errors the clients must see as Kafka errors: invalid topic names, records over
message.max.bytes (broker-wide and per topic), and fetches past the end of the log."""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic

import gregor_wire as w
from gregor_support import (
    admin,
    assert_delivered,
    confluent_consumer,
    confluent_producer,
    create_topic,
    kp_consumer,
    kp_producer,
    produce_confluent,
)

INVALID_NAMES = ["bad topic", "a/b", "..", "x" * 250, "tab\tname"]


def test_invalid_topic_name_confluent(broker):
    producer = confluent_producer(broker.bootstrap, **{"message.timeout.ms": 10000})
    for name in INVALID_NAMES[:3]:
        [d] = produce_confluent(producer, name, [dict(value=b"x")])
        assert d.error is not None and d.error.code() == KafkaError.TOPIC_EXCEPTION, (name, d.error)
    md = admin(broker.bootstrap).list_topics(topic="bad topic", timeout=10)
    assert md.topics["bad topic"].error.code() == KafkaError.TOPIC_EXCEPTION
    # No topic was created by any of this.
    assert not [t for t in admin(broker.bootstrap).list_topics(timeout=10).topics if t in INVALID_NAMES]


def test_invalid_topic_name_admin_create(broker):
    a = admin(broker.bootstrap)
    futures = a.create_topics([NewTopic(n, 1, 1) for n in INVALID_NAMES], request_timeout=10)
    for name, f in futures.items():
        with pytest.raises(Exception) as e:
            f.result(10)
        err = e.value.args[0]
        assert err.code() == KafkaError.TOPIC_EXCEPTION, (name, err)


def test_invalid_topic_name_raw_produce(broker):
    """kafka-python refuses such names client-side, so the broker's answer is checked
    with a hand-built Produce v3 request."""
    batch = w.record_batch([w.Record(value=b"x")])
    with w.RawConnection(broker.bootstrap) as c:
        for i, name in enumerate(INVALID_NAMES):
            corr, results = w.parse_produce_v3(c.request(w.produce_v3(100 + i, name, 0, batch)))
            assert corr == 100 + i
            assert [(r.topic, r.error_code) for r in results] == [(name, w.ERROR_INVALID_TOPIC)], results


def test_message_larger_than_message_max_bytes(broker_factory):
    broker = broker_factory().start(sets={"message.max.bytes": "10000"})
    create_topic(broker.bootstrap, "sized", 1)
    create_topic(broker.bootstrap, "sized-small", 1, config={"max.message.bytes": "2000"})
    big = os.urandom(20000)  # incompressible
    producer = confluent_producer(broker.bootstrap, **{"message.max.bytes": 1000000, "linger.ms": 0})
    [d] = produce_confluent(producer, "sized", [dict(value=big)])
    assert d.error is not None and d.error.code() == KafkaError.MSG_SIZE_TOO_LARGE, d.error
    # Just under the limit is fine, over the topic's own limit is not.
    assert_delivered(produce_confluent(producer, "sized", [dict(value=os.urandom(9000))]))
    [d] = produce_confluent(producer, "sized-small", [dict(value=os.urandom(5000))])
    assert d.error is not None and d.error.code() == KafkaError.MSG_SIZE_TOO_LARGE, d.error
    assert_delivered(produce_confluent(producer, "sized-small", [dict(value=os.urandom(1000))]))

    from kafka.errors import MessageSizeTooLargeError

    kp = kp_producer(broker.bootstrap, max_request_size=1000000)
    with pytest.raises(MessageSizeTooLargeError):
        kp.send("sized", big).get(timeout=20)
    assert kp.send("sized", b"small").get(timeout=20).offset == 1
    kp.close(timeout=10)

    # Refused records left no trace: offsets 0 (9000 bytes) and 1 ("small").
    c = confluent_consumer(broker.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition("sized", 0), timeout=10) == (0, 2)
    finally:
        c.close()


def test_fetch_beyond_end_is_offset_out_of_range(broker):
    topic = "short"
    create_topic(broker.bootstrap, topic, 1)
    assert_delivered(produce_confluent(confluent_producer(broker.bootstrap), topic,
                                       [dict(value=f"{i}".encode()) for i in range(5)]))

    # On the wire: past the end (or negative) is OFFSET_OUT_OF_RANGE with the high
    # watermark; exactly at the end is an empty answer without error.
    with w.RawConnection(broker.bootstrap) as raw:
        for i, (offset, code) in enumerate([(100, w.ERROR_OFFSET_OUT_OF_RANGE), (6, w.ERROR_OFFSET_OUT_OF_RANGE),
                                            (-5, w.ERROR_OFFSET_OUT_OF_RANGE), (5, w.ERROR_NONE)]):
            corr, part = w.parse_fetch_v4(raw.request(w.fetch_v4(200 + i, topic, 0, offset, max_wait_ms=10)))
            assert (corr, part.error_code, part.high_watermark) == (200 + i, code, 5), (offset, part)
            assert part.records == b"", (offset, part.records[:20])

    c = confluent_consumer(broker.bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 100)])
        err = None
        deadline = time.monotonic() + 15
        while err is None and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() is not None and m.error().code() != KafkaError._PARTITION_EOF:
                err = m.error()
            elif m is not None and m.error() is None:
                raise AssertionError(f"read a record at {m.offset()} although offset 100 is out of range")
        assert err is not None, "no error for a fetch at offset 100 of a 5-record log"
        assert err.code() in (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET), err
        assert "out of range" in err.str().lower(), err
    finally:
        c.close()

    from kafka import TopicPartition as KTP
    from kafka.errors import OffsetOutOfRangeError

    k = kp_consumer(broker.bootstrap, auto_offset_reset="none")
    try:
        tp = KTP(topic, 0)
        k.assign([tp])
        k.seek(tp, 100)
        deadline = time.monotonic() + 15
        with pytest.raises(OffsetOutOfRangeError):
            while time.monotonic() < deadline:
                assert not k.poll(timeout_ms=200), "records returned for an out-of-range offset"
    finally:
        k.close()

    # With a reset policy the same fetch recovers to the end / the beginning.
    k = kp_consumer(broker.bootstrap, auto_offset_reset="earliest")
    try:
        tp = KTP(topic, 0)
        k.assign([tp])
        k.seek(tp, 100)
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 5 and time.monotonic() < deadline:
            for records in k.poll(timeout_ms=200).values():
                got.extend(r.value for r in records)
        assert got == [f"{i}".encode() for i in range(5)]
    finally:
        k.close()
