"""Fetch sessions (KIP-227) with a client that uses them: kafka-python (2.1 and later)
opens a session with a full fetch and then sends incremental fetches that name only the
partitions whose position moved. Contract: a consumer of many partitions, fed in waves
with idle polls between them, gets every record exactly once and in order per
partition, and the broker's answers carry the session (the consumer's fetch-session
handler would fall back to full fetches on any session error; the test reads its log to
check that none happened and that the answers were incremental).
"""
from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

PARTITIONS = 8


class SessionLog(logging.Handler):
    """kafka-python's fetch-session handler says at debug level which answers were
    incremental, and at info level when a session failed (it then starts over)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.incremental = 0
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str):
            return
        if record.msg.startswith("Node %s sent an incremental fetch response for session"):
            self.incremental += 1
        elif record.msg.startswith("Node %s was unable to process the fetch request"):
            self.failures.append(record.getMessage())


def test_kafka_python_consumes_through_incremental_fetch_sessions(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("waves", PARTITIONS, 1)])
    admin.close()
    sessions = SessionLog()
    fetcher_log = logging.getLogger("kafka.consumer.fetcher")
    fetcher_log.addHandler(sessions)
    fetcher_log.setLevel(logging.DEBUG)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    consumer.assign([TopicPartition("waves", p) for p in range(PARTITIONS)])
    try:
        sent: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        got: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        for wave in range(5):
            # Each wave writes to a few partitions only: the others have no news.
            for p in range(wave % 3, PARTITIONS, 3):
                for i in range(10):
                    value = f"w{wave}-p{p}-{i}".encode()
                    producer.send("waves", value=value, partition=p)
                    sent[p].append(value)
            producer.flush(10)
            deadline = time.monotonic() + 15
            while any(len(got[p]) < len(sent[p]) for p in got):
                assert time.monotonic() < deadline, f"wave {wave}: {[(p, len(got[p]), len(sent[p])) for p in got]}"
                for tp, records in consumer.poll(timeout_ms=200).items():
                    got[tp.partition].extend(r.value for r in records)
            # Idle polls: incremental fetches with nothing to answer.
            for _ in range(3):
                assert consumer.poll(timeout_ms=150) == {}
        assert got == sent
        assert sessions.failures == [], sessions.failures
        assert sessions.incremental > 10, "the consumer fetched incrementally"
    finally:
        fetcher_log.removeHandler(sessions)
        consumer.close()
        producer.close()
