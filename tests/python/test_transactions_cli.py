"""`gregor transactions` (kafka-transactions.sh) against a transaction left open by a real
transactional producer (confluent-kafka).

Contract: `list` shows the transactional id Ongoing at its coordinator; `describe` shows
its producer and the partition it wrote to; `describe-producers` shows the open
transaction's first offset; `find-hanging --max-transaction-timeout 0` lists it; while it
is open a read_committed consumer sees nothing after it (the last stable offset stays at
its start); `abort --start-offset` writes an abort marker through the leader, after which
the partition has no open transaction, the records stay invisible to read_committed, and
a record written afterwards is read; an offset where no transaction starts is refused
with a sentence and exit code 1.
"""
from __future__ import annotations

import json
import subprocess

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import broker_binary
from gregor_support import create_topic


def gregor(bootstrap: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(broker_binary()), "--bootstrap-server", bootstrap, "transactions", *args],
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def read_committed(bootstrap: str, topic: str, seconds: float = 3.0) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "txn-cli-reader", "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    values = [m.value() for m in c.consume(100, seconds) if m.error() is None]
    c.close()
    return values


def test_a_hanging_transaction_is_found_and_aborted(broker):
    create_topic(broker.bootstrap, "hang", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "stuck-txn",
                  "transaction.timeout.ms": 600000})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce("hang", value=f"open-{i}".encode(), partition=0)
    assert p.flush(30) == 0  # written, never committed: the producer "crashed"

    listed = json.loads(gregor(broker.bootstrap, "-o", "json", "list").stdout)
    assert {"transactional_id": "stuck-txn", "coordinator": 0, "state": "Ongoing"}.items() <= next(
        t for t in listed if t["transactional_id"] == "stuck-txn").items()
    described = json.loads(gregor(broker.bootstrap, "-o", "json", "describe", "--transactional-id", "stuck-txn").stdout)
    assert described["state"] == "Ongoing" and described["partitions"] == ["hang-0"], described
    producers = json.loads(gregor(broker.bootstrap, "-o", "json", "describe-producers", "--topic", "hang",
                                  "--partition", "0").stdout)
    assert [(d["producer_id"], d["current_transaction_start_offset"]) for d in producers] == \
        [(described["producer_id"], 0)], producers
    hanging = json.loads(gregor(broker.bootstrap, "-o", "json", "find-hanging", "--topic", "hang",
                                "--max-transaction-timeout", "0").stdout)
    assert [d["producer_id"] for d in hanging] == [described["producer_id"]]
    assert read_committed(broker.bootstrap, "hang") == []

    refused = gregor(broker.bootstrap, "abort", "--topic", "hang", "--partition", "0", "--start-offset", "7",
                     check=False)
    assert refused.returncode == 1 and "no open transaction starts at offset 7" in refused.stderr
    aborted = gregor(broker.bootstrap, "abort", "--topic", "hang", "--partition", "0", "--start-offset", "0")
    assert "Aborted producer" in aborted.stdout
    producers = json.loads(gregor(broker.bootstrap, "-o", "json", "describe-producers", "--topic", "hang",
                                  "--partition", "0").stdout)
    assert all(d["current_transaction_start_offset"] == -1 for d in producers), producers

    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("hang", value=b"after", partition=0)
    assert plain.flush(30) == 0
    assert read_committed(broker.bootstrap, "hang") == [b"after"]
