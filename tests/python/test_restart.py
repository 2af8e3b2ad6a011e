"""Clean stop (SIGTERM) and restart over the same data dir: everything is readable at
the same offsets, new records continue the offsets, and a data dir refuses a broker
with another node id."""

from __future__ import annotations

import re
import subprocess
import time

from gregor_support import (
    assert_delivered,
    confluent_producer,
    create_topic,
    produce_confluent,
    read_all_confluent,
    read_all_kafka_python,
    topic_partitions,
)

TOPIC = "restart"
PARTITIONS = 2


def items(start: int, n: int, base_ts: int) -> list[dict]:
    return [dict(key=f"k{i}".encode(), value=f"value {i}".encode() * 3, partition=i % PARTITIONS,
                 headers=[("i", str(i).encode())], timestamp=base_ts + i) for i in range(start, start + n)]


def snapshot(msgs) -> dict:
    return {(m.partition, m.offset): (m.key, m.value, m.headers, m.timestamp) for m in msgs}


def test_clean_restart_keeps_offsets_and_continues(broker):
    base_ts = int(time.time() * 1000) - 10_000
    create_topic(broker.bootstrap, TOPIC, PARTITIONS, config={"segment.bytes": "2048"})
    producer = confluent_producer(broker.bootstrap, **{"linger.ms": 10, "batch.size": 1000})
    first = produce_confluent(producer, TOPIC, items(0, 200, base_ts))
    assert_delivered(first)
    before = snapshot(read_all_confluent(broker.bootstrap, TOPIC, PARTITIONS))
    assert len(before) == 200
    for d, it in zip(first, items(0, 200, base_ts)):
        assert before[(d.partition, d.offset)][:2] == (it["key"], it["value"])
    old_port, old_cluster = broker.port, broker.cluster_id

    assert broker.stop() == 0, "SIGTERM must be a clean exit (code 0)"
    broker.start()
    assert (broker.port, broker.cluster_id) == (old_port, old_cluster)
    log = broker.stderr_text()
    if "had_clean_shutdown=" in log:  # the log manager says whether recovery was needed
        assert "had_clean_shutdown=false" not in log, log

    assert sorted(topic_partitions(broker.bootstrap, TOPIC)) == list(range(PARTITIONS))
    assert snapshot(read_all_confluent(broker.bootstrap, TOPIC, PARTITIONS)) == before
    assert snapshot(read_all_kafka_python(broker.bootstrap, TOPIC, PARTITIONS)) == before

    # New records continue each partition's offsets (a new producer: new connection).
    producer = confluent_producer(broker.bootstrap, **{"linger.ms": 10, "batch.size": 1000})
    more = produce_confluent(producer, TOPIC, items(200, 50, base_ts))
    assert_delivered(more)
    for p in range(PARTITIONS):
        offsets = sorted(d.offset for d in more if d.partition == p)
        assert offsets == list(range(100, 125)), (p, offsets)
    after = snapshot(read_all_confluent(broker.bootstrap, TOPIC, PARTITIONS))
    assert len(after) == 250 and all(after[k] == v for k, v in before.items())

    # A second clean cycle, then a crash (SIGKILL) cycle: still all there.
    assert broker.stop() == 0
    broker.start()
    assert snapshot(read_all_confluent(broker.bootstrap, TOPIC, PARTITIONS)) == after
    broker.kill()
    broker.start()
    assert snapshot(read_all_confluent(broker.bootstrap, TOPIC, PARTITIONS)) == after


def test_sigint_is_a_clean_stop_too(broker):
    create_topic(broker.bootstrap, TOPIC, 1)
    produce_confluent(confluent_producer(broker.bootstrap), TOPIC, [dict(value=b"x")])
    broker.proc.send_signal(2)  # SIGINT
    assert broker.proc.wait(20) == 0
    broker.start()
    assert [m.value for m in read_all_confluent(broker.bootstrap, TOPIC, 1)] == [b"x"]


def test_data_dir_refuses_other_node_id(broker):
    create_topic(broker.bootstrap, TOPIC, 1)
    produce_confluent(confluent_producer(broker.bootstrap), TOPIC, [dict(value=b"kept")])
    assert broker.stop() == 0

    proc, out, err = broker.spawn(broker.command(port=0, extra_args=["--node-id", "7"]))
    try:
        code = proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError("a broker started with --node-id 7 on node 0's data dir is still running")
    stderr = err.read_text(errors="replace")
    assert code != 0, stderr
    assert "listening" not in out.read_text(), "it must not start serving"
    # Log lines (timestamped) aside, the error is exactly one line naming the node.
    lines = [line for line in stderr.splitlines() if line.strip() and not re.match(r"^\d{4}-\d\d-\d\dT", line)]
    assert len(lines) == 1, f"expected a one-line error, got: {stderr!r}"
    assert "node" in lines[0] and "7" in lines[0], f"the error should name the node: {lines[0]!r}"

    # The refused start changed nothing: node 0 still serves the data.
    broker.start()
    assert [m.value for m in read_all_confluent(broker.bootstrap, TOPIC, 1)] == [b"kept"]
