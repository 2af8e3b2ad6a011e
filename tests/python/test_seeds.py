"""The seed programs of shared/seeds/, run unchanged against a broker on localhost:9092.

The programs are copied verbatim under tests/python/seeds/ and run as subprocesses
with this virtualenv's interpreter. What they wrote is then read back with an
assign()-only consumer and checked field by field. The seeds' consumers join consumer
groups (subscribe, commit, lag), which need the group coordinator: those are skipped
until it is served.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from gregor_support import read_all_confluent, read_all_kafka_python, topic_partitions

SEEDS = Path(__file__).resolve().parent / "seeds"
GROUP_REASON = ("needs consumer groups (JoinGroup/SyncGroup/Heartbeat/OffsetCommit), "
                "which the broker does not serve yet: the group coordinator is a later issue")


def run_seed(name: str, cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
    path = SEEDS / name
    assert path.exists(), path
    try:
        proc = subprocess.run([sys.executable, str(path)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"seed {name} did not finish within {timeout}s\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")
    assert proc.returncode == 0, f"seed {name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_timestamp(msg, before_ms: int, after_ms: int) -> None:
    assert msg.create_time, f"offset {msg.offset}: timestamp type is not CreateTime"
    # Clients stamp records themselves; allow a little clock granularity.
    assert before_ms - 5 <= msg.timestamp <= after_ms + 5, (msg.timestamp, before_ms, after_ms)


def test_seed_000_confluent_transaction_producer(broker_9092, tmp_path):
    before = now_ms()
    proc = run_seed("seed_000_transaction_producer.py", tmp_path)
    after = now_ms()
    assert "Delivered: transactions [0]" in proc.stdout, proc.stdout + proc.stderr
    assert "Error" not in proc.stdout

    assert len(topic_partitions(broker_9092.bootstrap, "transactions")) == 1  # auto-created, num.partitions=1
    msgs = read_all_confluent(broker_9092.bootstrap, "transactions", 1)
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert (m.partition, m.offset) == (0, 0)
    tx = json.loads(m.value.decode("utf-8"))
    assert m.key == tx["transactionId"].encode()
    uuid.UUID(tx["transactionId"])
    assert {k: tx[k] for k in ("userId", "category", "amount", "currency")} == {
        "userId": "user-123", "category": "Food", "amount": 150.0, "currency": "USD"}
    datetime.fromisoformat(tx["timestamp"])
    assert m.headers == []
    assert_timestamp(m, before, after)


def test_seed_002_kafka_python_orders_producer(broker_9092, tmp_path):
    before = now_ms()
    run_seed("seed_002_orders_producer.py", tmp_path)
    after = now_ms()
    msgs = read_all_kafka_python(broker_9092.bootstrap, "orders", 1)
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert (m.partition, m.offset, m.key, m.headers) == (0, 0, None, [])
    assert json.loads(m.value) == {"order_id": 123, "status": "created"}
    assert_timestamp(m, before, after)


def test_seed_004_kafka_python_key_serializer_producer(broker_9092, tmp_path):
    before = now_ms()
    run_seed("seed_004_key_serializer_producer.py", tmp_path)
    after = now_ms()
    msgs = read_all_confluent(broker_9092.bootstrap, "orders", 1)
    assert [(m.offset, m.key) for m in msgs] == [(0, None), (1, b"user_123")], msgs
    assert [json.loads(m.value) for m in msgs] == [{"order_id": 1, "amount": 100}, {"order_id": 2, "amount": 200}]
    for m in msgs:
        assert m.headers == []
        assert_timestamp(m, before, after)


def test_seed_004_order_producer_class(broker_9092, tmp_path):
    before = now_ms()
    proc = run_seed("seed_004_order_producer.py", tmp_path)
    after = now_ms()
    # The seed logs (INFO, to stderr) and swallows KafkaError: read its log to tell.
    assert "Заказ отправлен: topic=orders, partition=0, offset=0" in proc.stderr, proc.stderr
    assert "Ошибка отправки заказа" not in proc.stderr, proc.stderr
    msgs = read_all_kafka_python(broker_9092.bootstrap, "orders", 1)
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m.key == b"user_001"
    assert json.loads(m.value) == {
        "order_id": "12345", "user_id": "user_001",
        "items": [{"product": "laptop", "quantity": 1, "price": 999.99}], "total": 999.99}
    assert m.headers == []
    assert_timestamp(m, before, after)


def test_seed_004_admin_cluster_metadata(broker_9092, tmp_path):
    proc = run_seed("seed_004_admin_cluster_metadata.py", tmp_path)
    out = proc.stdout
    assert broker_9092.cluster_id, broker_9092.banner
    assert f"Cluster ID: {broker_9092.cluster_id}" in out, out
    assert "Controller: 0" in out, out
    assert "  - localhost:9092 (ID: 0)" in out, out
    assert "Топики: " in out, out
    parts = topic_partitions(broker_9092.bootstrap, "new-orders")
    assert sorted(parts) == [0, 1, 2]
    for p in parts.values():
        assert p.leader == 0 and p.replicas == [0] and p.isrs == [0], p

    # A second run finds the topic the first one created, and kafka-python raises
    # TopicAlreadyExistsError from create_topics, exactly as against Apache Kafka.
    again = subprocess.run([sys.executable, str(SEEDS / "seed_004_admin_cluster_metadata.py")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "'new-orders'" in again.stdout, again.stdout
    assert again.returncode != 0 and "TopicAlreadyExistsError" in again.stderr, again.stderr
    assert len(topic_partitions(broker_9092.bootstrap, "new-orders")) == 3


@pytest.mark.skip(reason=GROUP_REASON + " (seed 000 'Обработка': subscribe with group 'analytics-group', loops forever)")
def test_seed_000_analytics_processor_group():
    pass


@pytest.mark.skip(reason=GROUP_REASON + " (seed 002 consumer: group 'analytics-group', loops forever)")
def test_seed_002_orders_consumer_group():
    pass


@pytest.mark.skip(reason=GROUP_REASON + " (seed 004 consumer: group 'order-processor', loops forever)")
def test_seed_004_simple_consumer_group():
    pass


@pytest.mark.skip(reason=GROUP_REASON + " (seed 004 OrderConsumer: group 'order-processors', manual commit)")
def test_seed_004_order_consumer_commit():
    pass
