"""A single-node data dir written by Gregor before the metadata quorum opens without loss.

Contract: `fixtures/pre-quorum-data.tgz` was written by Gregor at fd0c722 (the last
commit before gregor-quorum; `fixtures/make_pre_quorum_data.py` made it: two topics with
configs, a dynamic broker config, 35 records, a committed group offset). The current
broker converts its plain metadata log into a one-voter quorum snapshot and serves the
same cluster id, topics, configs, records and offsets, before and after a restart.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

FIXTURE = Path(__file__).parent / "fixtures" / "pre-quorum-data.tgz"


def consume_all(bootstrap: str, topic: str, partitions: int) -> list[tuple[str, str]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    for _ in range(200):
        m = c.poll(0.2)
        if m is not None and not m.error():
            out.append((m.key().decode(), m.value().decode()))
        if len(out) == 30 and m is None:
            break
    c.close()
    return sorted(out)


def check(broker, cluster_id: str) -> None:
    assert broker.cluster_id == cluster_id
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topics = admin.list_topics(timeout=15).topics
    assert len(topics["orders"].partitions) == 3 and len(topics["compacted"].partitions) == 1
    res = ConfigResource(ResourceType.TOPIC, "orders")
    assert admin.describe_configs([res])[res].result(15)["retention.ms"].value == "3153600000000"
    res = ConfigResource(ResourceType.TOPIC, "compacted")
    assert admin.describe_configs([res])[res].result(15)["cleanup.policy"].value == "compact"
    res = ConfigResource(ResourceType.BROKER, "0")
    assert admin.describe_configs([res])[res].result(15)["log.retention.ms"].value == "3153600000001"
    records = consume_all(broker.bootstrap, "orders", 3)
    assert records == sorted((f"user-{i % 5}", f"order-{i}") for i in range(30))
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "billing"})
    [committed] = c.committed([TopicPartition("orders", 0)], timeout=15)
    c.close()
    assert committed.offset == 7


def test_a_pre_quorum_data_dir_keeps_everything(broker_factory, tmp_path):
    b = broker_factory("legacy")
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    meta = (b.data_dir / "meta.properties").read_text()
    cluster_id = next(line.split("=", 1)[1] for line in meta.splitlines() if line.startswith("cluster.id="))
    metadata_dir = b.data_dir / "__cluster_metadata-0"
    assert not (metadata_dir / "quorum-state").exists()

    b.start()
    check(b, cluster_id)
    assert (metadata_dir / "quorum-state").exists()
    assert list(metadata_dir.glob("*.checkpoint")), "the old records live on in a snapshot"

    # New metadata goes through the quorum and survives a restart beside the old.
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("after-upgrade", 2, 1)])["after-upgrade"].result(15)
    p = Producer({"bootstrap.servers": b.bootstrap})
    p.produce("after-upgrade", value=b"x", partition=1)
    assert p.flush(15) == 0
    b.restart()
    check(b, cluster_id)
    topics = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=15).topics
    assert len(topics["after-upgrade"].partitions) == 2
