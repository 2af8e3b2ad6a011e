"""Hostile and broken input on raw sockets while well-behaved clients keep working.

A confluent-kafka producer/consumer pair round-trips messages in a background thread
the whole time; after every malformed input the broker process must still be alive and
the pair must complete new round trips. ApiVersions (v0, v3, and an unknown version per
KIP-511) and Produce with a corrupted CRC are checked byte by byte."""

from __future__ import annotations

import random
import struct
import threading
import time

import pytest
from confluent_kafka import TopicPartition

import gregor_wire as w
from gregor_support import confluent_consumer, confluent_producer, create_topic

MAX_REQUEST = 104857600  # socket.request.max.bytes default


class RoundTripper(threading.Thread):
    """Produces a unique value, waits until the consumer reads it, and again."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.ok = 0
        self.failures: list[str] = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # surfaced by wait_more / the test
            self.failures.append(f"round-trip thread died: {e!r}")

    def _run(self) -> None:
        producer = confluent_producer(self.bootstrap, **{"linger.ms": 0})
        consumer = confluent_consumer(self.bootstrap)
        consumer.assign([TopicPartition(self.topic, 0, 0)])
        i = 0
        try:
            while not self.stop_event.is_set():
                value = f"round-trip-{i}".encode()
                producer.produce(self.topic, value=value, partition=0)
                if producer.flush(10) != 0:
                    self.failures.append(f"round trip {i}: not delivered within 10 s")
                    return
                deadline = time.monotonic() + 10
                seen = False
                while not seen and time.monotonic() < deadline:
                    m = consumer.poll(0.1)
                    if m is not None and m.error() is None:
                        seen = m.value() == value
                if not seen:
                    self.failures.append(f"round trip {i}: not read back within 10 s")
                    return
                with self.lock:
                    self.ok += 1
                i += 1
        finally:
            consumer.close()

    def wait_more(self, n: int = 2, timeout: float = 20.0) -> None:
        """Waits until `n` more round trips have completed."""
        with self.lock:
            target = self.ok + n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert not self.failures, self.failures
            with self.lock:
                if self.ok >= target:
                    return
            time.sleep(0.02)
        raise AssertionError(f"no new round trips within {timeout}s (ok={self.ok}, failures={self.failures})")


# ---------------------------------------------------------------- the malformed inputs


def random_bytes(bootstrap: str) -> None:
    rnd = random.Random(511)
    for _ in range(20):
        with w.RawConnection(bootstrap) as c:
            c.send(rnd.randbytes(rnd.randint(1, 4096)))
            c.wait_closed(0.1)


def oversized_length(bootstrap: str) -> None:
    for size in (MAX_REQUEST + 1, 0x7FFFFFFF):
        with w.RawConnection(bootstrap) as c:
            c.send(struct.pack(">i", size) + b"\x00\x12\x00\x00\x00\x00\x00\x01")
            assert c.wait_closed(5), f"length prefix {size}: connection not closed"


def negative_length(bootstrap: str) -> None:
    for size in (-1, -0x80000000):
        with w.RawConnection(bootstrap) as c:
            c.send(struct.pack(">i", size) + b"\x00" * 16)
            assert c.wait_closed(5), f"length prefix {size}: connection not closed"


def truncated_frame(bootstrap: str) -> None:
    full = w.api_versions_request(3, 1)
    for cut in (1, 3, 4, 10, len(full) - 1):
        with w.RawConnection(bootstrap) as c:
            c.send(full[:cut])
        # closed by us mid-frame
    # A frame announcing 1000 bytes and carrying 20, then a half-close.
    with w.RawConnection(bootstrap) as c:
        c.send(struct.pack(">i", 1000) + b"\x00" * 20)
        c.sock.shutdown(1)
        assert c.wait_closed(5)


def corrupt_bodies(bootstrap: str) -> None:
    cases = {
        # ApiVersions v3: compact string claiming 1000 bytes, 3 present.
        "ApiVersions v3": w.request_header(w.API_API_VERSIONS, 3, 11, flexible=True) + w.uvarint(1001) + b"abc",
        # Metadata v1: topic array of 2^31-1 entries, none present.
        "Metadata v1": w.request_header(w.API_METADATA, 1, 12) + struct.pack(">i", 0x7FFFFFFF),
        # Metadata v9 (flexible): compact array of 2^28 entries.
        "Metadata v9": w.request_header(w.API_METADATA, 9, 13, flexible=True) + w.uvarint(1 << 28),
        # Produce v3: topic name cut short.
        "Produce v3 name": w.request_header(w.API_PRODUCE, 3, 14) + w.string(None) + struct.pack(">hii", 1, 1000, 1)
        + struct.pack(">h", 50) + b"abc",
        # Produce v3: a records field of 2 GiB in a tiny frame.
        "Produce v3 records": w.request_header(w.API_PRODUCE, 3, 15) + w.string(None) + struct.pack(">hii", 1, 1000, 1)
        + w.string("t") + struct.pack(">iii", 1, 0, 0x7FFFFFF0) + b"\x00" * 8,
        # A header whose client id runs past the frame.
        "header": struct.pack(">hhih", w.API_METADATA, 1, 16, 500) + b"xy",
    }
    for name, payload in cases.items():
        with w.RawConnection(bootstrap) as c:
            c.send(w.frame(payload))
            assert c.wait_closed(5), f"{name}: undecodable request did not close the connection"


def unknown_api_key(bootstrap: str) -> None:
    for key in (9999, 32767, -1):
        with w.RawConnection(bootstrap) as c:
            c.send(w.frame(w.request_header(key, 0, 21) + b"\x00" * 8))
            assert c.wait_closed(5), f"api key {key}: connection not closed"


def corrupt_crc(bootstrap: str) -> None:
    records = [w.Record(value=b"crc-check", key=b"k", headers=[("h", b"v")])]
    with w.RawConnection(bootstrap) as c:
        good = w.produce_v3(31, "malformed", 0, w.record_batch(records))
        corr, results = w.parse_produce_v3(c.request(good))
        assert corr == 31 and [r.error_code for r in results] == [w.ERROR_NONE], results
        first = results[0].base_offset
        bad = w.produce_v3(32, "malformed", 0, w.record_batch(records, corrupt_crc=True))
        corr, results = w.parse_produce_v3(c.request(bad))
        assert corr == 32 and [r.error_code for r in results] == [w.ERROR_CORRUPT_MESSAGE], results
        # A batch length that disagrees with the bytes sent is corrupt too.
        batch = bytearray(w.record_batch(records))
        struct.pack_into(">i", batch, 8, len(batch) - 12 + 7)
        corr, results = w.parse_produce_v3(c.request(w.produce_v3(33, "malformed", 0, bytes(batch))))
        assert corr == 33 and results[0].error_code != w.ERROR_NONE, results
        # The connection is still usable and nothing was appended in between.
        corr, results = w.parse_produce_v3(c.request(w.produce_v3(34, "malformed", 0, w.record_batch(records))))
        assert corr == 34 and [r.error_code for r in results] == [w.ERROR_NONE], results
        assert results[0].base_offset == first + 1, results


ACTIONS = [random_bytes, oversized_length, negative_length, truncated_frame, corrupt_bodies, unknown_api_key, corrupt_crc]


def test_malformed_input_leaves_broker_and_clients_working(broker):
    create_topic(broker.bootstrap, "round-trip", 1)
    create_topic(broker.bootstrap, "malformed", 1)
    rt = RoundTripper(broker.bootstrap, "round-trip")
    rt.start()
    try:
        rt.wait_more(3)
        for action in ACTIONS:
            action(broker.bootstrap)
            assert broker.running, f"broker died after {action.__name__}"
            rt.wait_more(2)
    finally:
        rt.stop_event.set()
        rt.join(30)
    assert not rt.failures, rt.failures
    assert broker.running
    print(f"{rt.ok} round trips")


# ---------------------------------------------------------------- ApiVersions by hand


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_api_versions_by_hand(broker, version):
    with w.RawConnection(broker.bootstrap) as c:
        r = w.parse_api_versions(c.request(w.api_versions_request(version, 1000 + version)), version)
    assert r.correlation_id == 1000 + version
    assert r.error_code == 0
    assert r.apis[w.API_PRODUCE][0] == 0, "Produce must be advertised from v0 (librdkafka compression)"
    assert r.apis[w.API_PRODUCE][1] >= 7
    assert r.apis[w.API_FETCH][1] >= 4
    assert r.apis[w.API_METADATA][0] == 0
    assert r.apis[w.API_API_VERSIONS] [0] == 0 and r.apis[w.API_API_VERSIONS][1] >= 3
    for key, (lo, hi) in r.apis.items():
        assert 0 <= lo <= hi, (key, lo, hi)


def test_api_versions_same_table_in_v0_and_v3(broker):
    with w.RawConnection(broker.bootstrap) as c:
        v0 = w.parse_api_versions(c.request(w.api_versions_request(0, 1)), 0)
        v3 = w.parse_api_versions(c.request(w.api_versions_request(3, 2)), 3)
    assert v0.apis == v3.apis


def test_api_versions_unknown_version_answers_v0_with_table(broker):
    """KIP-511: an ApiVersions request newer than the broker knows gets
    UNSUPPORTED_VERSION in a v0 body that still lists the supported APIs."""
    body = w.compact_string("gregor-tests") + w.compact_string("1.0") + w.uvarint(0)
    request = w.frame(w.request_header(w.API_API_VERSIONS, 99, 4242, flexible=True) + body)
    with w.RawConnection(broker.bootstrap) as c:
        r = w.parse_api_versions(c.request(request), 0)
        assert r.correlation_id == 4242
        assert r.error_code == w.ERROR_UNSUPPORTED_VERSION
        assert w.API_API_VERSIONS in r.apis and r.apis[w.API_API_VERSIONS][1] >= 3
        assert w.API_PRODUCE in r.apis and w.API_FETCH in r.apis
        # The client then retries with a version both know, on the same connection.
        again = w.parse_api_versions(c.request(w.api_versions_request(3, 4243)), 3)
        assert again.error_code == 0 and again.apis == r.apis


def test_pipelined_requests_answered_in_order(broker):
    requests = b"".join(w.api_versions_request(v % 4, 500 + v) for v in range(10))
    with w.RawConnection(broker.bootstrap) as c:
        c.send(requests)
        for v in range(10):
            r = w.parse_api_versions(c.read_frame(), v % 4)
            assert (r.correlation_id, r.error_code) == (500 + v, 0)
