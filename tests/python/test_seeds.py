"""The seed programs of shared/seeds/, run unchanged against a broker on localhost:9092.

The programs are copied verbatim under tests/python/seeds/ and run as subprocesses
with this virtualenv's interpreter. What they wrote is then read back with an
assign()-only consumer and checked field by field.

The seeds' consumers loop forever: each runs as a subprocess (unbuffered output to files)
after the matching seed producer wrote known input, until its output shows every input
record processed and the group's committed offsets reach the log end (auto-commit every
5 s, or the OrderConsumer's commit() per record); then it is stopped by a signal. The
lag function of seed 001 (see seeds/seed_001_consumer_lag*.py) must then report exactly
the records produced after the consumer stopped. The broker runs with Kafka's default
group.initial.rebalance.delay.ms (3 s), as the seeds would meet it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState

from gregor_support import read_all_confluent, read_all_kafka_python, topic_partitions
from test_groups import committed_offsets, group_listing, wait_until

SEEDS = Path(__file__).resolve().parent / "seeds"


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


# ---------------------------------------------------------------- the seeds' consumer groups


class SeedProcess:
    """A looping seed program as a subprocess, its stdout/stderr going to files."""

    def __init__(self, name: str, cwd: Path, tag: str = ""):
        self.name = name
        path = SEEDS / name
        assert path.exists(), path
        self.out_path = cwd / f"{name}{tag}.stdout"
        self.err_path = cwd / f"{name}{tag}.stderr"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.out_path, "wb") as o, open(self.err_path, "wb") as e:
            self.proc = subprocess.Popen([sys.executable, str(path)], cwd=cwd, stdout=o, stderr=e,
                                         stdin=subprocess.DEVNULL, env=env)

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"seed {self.name}\nstdout:\n{self.out[-4000:]}\nstderr:\n{self.err[-4000:]}"

    def wait_for(self, pred, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self.out, self.err):
            if self.proc.poll() is not None:
                pytest.fail(f"{what}: the seed exited ({self.proc.returncode}) first\n{self.describe()}")
            if time.monotonic() >= deadline:
                pytest.fail(f"{what}: not within {timeout}s\n{self.describe()}")
            time.sleep(0.05)

    def stop(self, sig: int, timeout: float = 10.0) -> int | None:
        """Sends `sig`; SIGKILL if it has not exited within `timeout`. Returns the exit
        code after `sig`, or None when it had to be killed."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


LAG_DRIVER = r"""
import json, sys, traceback
sys.path.insert(0, sys.argv[1])
group, topic = sys.argv[2], sys.argv[3]
out = {}
try:
    import seed_001_consumer_lag  # the block as written
    out["verbatim_import"] = "ok"
except Exception as e:
    out["verbatim_import"] = f"{type(e).__name__}: {e}"
import seed_001_consumer_lag_fixed as lag
try:
    out["as_written"] = lag.get_consumer_lag_as_written(group, topic)
except Exception as e:
    out["as_written"] = f"{type(e).__name__}: {e}"
out["lag"] = lag.get_consumer_lag(group, topic)
print(json.dumps(out))
"""


def seed_consumer_lag(group: str, topic: str, cwd: Path) -> int:
    """Runs seed 001's get_consumer_lag (fixed copy) against localhost:9092 and checks that
    the block as written fails as it would against any broker."""
    proc = subprocess.run([sys.executable, "-c", LAG_DRIVER, str(SEEDS), group, topic], cwd=cwd, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"lag driver exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["verbatim_import"].startswith("ImportError: cannot import name 'ConsumerGroupDescription'"), out
    assert out["as_written"] == "AttributeError: 'int' object has no attribute 'topic'", out
    return out["lag"]


def wait_committed(group: str, expected: dict, timeout: float = 15.0) -> None:
    """Waits until the group's committed offsets (kafka-python admin) equal `expected`."""
    last = [None]

    def check():
        last[0] = committed_offsets("localhost:9092", group)
        return last[0] == expected

    try:
        wait_until(check, timeout, f"committed offsets of {group} == {expected}", interval=0.25)
    except AssertionError as e:
        raise AssertionError(f"{e}; last seen {last[0]}") from None


def test_seed_000_analytics_processor_group(broker_9092, tmp_path):
    n = 3
    for _ in range(n):
        run_seed("seed_000_transaction_producer.py", tmp_path)
    txs = [json.loads(m.value) for m in read_all_confluent(broker_9092.bootstrap, "transactions", 1)]
    assert len(txs) == n

    proc = SeedProcess("seed_000_analytics_processor.py", tmp_path)
    try:
        proc.wait_for(lambda out, err: out.count("Processing transaction: ") >= n
                      and out.count("Delivered: analytics_reports [0]") >= n, 30, f"{n} transactions processed")
        # enable.auto.commit (librdkafka default), every auto.commit.interval.ms = 5 s
        wait_committed("analytics-group", {("transactions", 0): n})
    finally:
        proc.stop(signal.SIGINT)
        proc.cleanup()
    out = proc.out
    assert "Error" not in out, proc.describe()
    assert out.count("Processing transaction: ") == n, proc.describe()
    for tx in txs:
        assert f"'transactionId': '{tx['transactionId']}'" in out, proc.describe()

    reports = read_all_confluent(broker_9092.bootstrap, "analytics_reports", 1)
    assert len(reports) == n, reports
    for r, tx in zip(reports, txs):
        report = json.loads(r.value)
        assert r.key == b"user-123"
        assert {k: report[k] for k in ("userId", "category", "totalAmount", "currency")} == {
            "userId": tx["userId"], "category": tx["category"], "totalAmount": tx["amount"], "currency": tx["currency"]}
        datetime.fromisoformat(report["reportTimestamp"])

    for _ in range(2):
        run_seed("seed_000_transaction_producer.py", tmp_path)
    assert seed_consumer_lag("analytics-group", "transactions", tmp_path) == 2


def test_seed_002_orders_consumer_group(broker_9092, tmp_path):
    n = 3
    for _ in range(n):
        run_seed("seed_002_orders_producer.py", tmp_path)
    line = "Получено сообщение: {'order_id': 123, 'status': 'created'}"
    proc = SeedProcess("seed_002_orders_consumer.py", tmp_path)
    try:
        proc.wait_for(lambda out, err: out.count(line) >= n, 30, f"{n} orders consumed")
        wait_committed("analytics-group", {("orders", 0): n})  # kafka-python auto-commit, 5 s
    finally:
        proc.stop(signal.SIGTERM)
        proc.cleanup()
    assert proc.out.count(line) == n, proc.describe()

    run_seed("seed_002_orders_producer.py", tmp_path)
    assert seed_consumer_lag("analytics-group", "orders", tmp_path) == 1


def test_seed_004_simple_consumer_group(broker_9092, tmp_path):
    for _ in range(2):
        run_seed("seed_004_key_serializer_producer.py", tmp_path)  # 2 records a run
    proc = SeedProcess("seed_004_simple_consumer.py", tmp_path)
    try:
        proc.wait_for(lambda out, err: "Offset: 3\n" in out and out.count("Value: ") >= 4, 30, "4 orders consumed")
        wait_committed("order-processor", {("orders", 0): 4})
    finally:
        proc.stop(signal.SIGTERM)
        proc.cleanup()
    expected = ""
    for offset, key, value in [(0, None, {"order_id": 1, "amount": 100}), (1, b"user_123", {"order_id": 2, "amount": 200}),
                               (2, None, {"order_id": 1, "amount": 100}), (3, b"user_123", {"order_id": 2, "amount": 200})]:
        expected += f"Partition: 0\nOffset: {offset}\nKey: {key}\nValue: {value}\n"
    assert proc.out == expected, proc.describe()

    run_seed("seed_004_key_serializer_producer.py", tmp_path)
    assert seed_consumer_lag("order-processor", "orders", tmp_path) == 2


def test_seed_004_order_consumer_commit(broker_9092, tmp_path):
    n = 3
    for _ in range(n):
        run_seed("seed_004_order_producer.py", tmp_path)
    group = "order-processors"

    def processed(err: str) -> list[int]:
        return [int(x.split("offset=")[1].split(",")[0]) for x in err.splitlines() if "Получено сообщение: partition=0" in x]

    proc = SeedProcess("seed_004_order_consumer.py", tmp_path)
    try:
        proc.wait_for(lambda out, err: err.count("Обработка заказа: 12345") >= n, 30, f"{n} orders processed")
        # commit() after each record: the offsets are there as soon as it is logged
        wait_committed(group, {("orders", 0): n}, timeout=5)
        assert group_listing(broker_9092.bootstrap).get(group) is not None
        code = proc.stop(signal.SIGTERM)
    finally:
        proc.cleanup()
    err = proc.err
    assert code == 0, proc.describe()
    assert processed(err) == [0, 1, 2], proc.describe()
    assert "Получено сообщение: partition=0, offset=0, key=user_001" in err
    for text in ("Запуск consumer...", "Получен сигнал остановки", "Consumer остановлен"):
        assert text in err, proc.describe()
    assert "Ошибка" not in err, proc.describe()
    # close() left the group: Empty, offsets kept
    wait_until(lambda: group_listing(broker_9092.bootstrap).get(group) == ConsumerGroupState.EMPTY, 5, "group Empty")
    wait_committed(group, {("orders", 0): n}, timeout=1)

    for _ in range(2):
        run_seed("seed_004_order_producer.py", tmp_path)
    assert seed_consumer_lag(group, "orders", tmp_path) == 2

    # A second run resumes after the committed offset: only the 2 new orders.
    again = SeedProcess("seed_004_order_consumer.py", tmp_path, tag=".2")
    try:
        again.wait_for(lambda out, err: err.count("Обработка заказа: 12345") >= 2, 30, "the 2 new orders processed")
        wait_committed(group, {("orders", 0): n + 2}, timeout=5)
        code = again.stop(signal.SIGTERM)
    finally:
        again.cleanup()
    assert code == 0, again.describe()
    assert processed(again.err) == [3, 4], again.describe()
    assert seed_consumer_lag(group, "orders", tmp_path) == 0
