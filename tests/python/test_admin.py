"""Admin APIs through both clients: CreateTopics (with configs and its errors),
DescribeConfigs, CreatePartitions, DeleteTopics, DescribeCluster and Metadata."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ConfigResource, ConfigSource, NewPartitions, NewTopic, ResourceType

from gregor_support import (
    admin,
    assert_delivered,
    confluent_producer,
    create_topic,
    produce_confluent,
    read_all_confluent,
    wait_for_partitions,
)


def error_code(future, timeout: float = 20.0) -> int:
    with pytest.raises(KafkaException) as e:
        future.result(timeout)
    return e.value.args[0].code()


def test_create_topic_errors(broker):
    a = admin(broker.bootstrap)
    create_topic(broker.bootstrap, "exists", 2)
    fs = a.create_topics([
        NewTopic("exists", 2, 1),
        NewTopic("too-many-replicas", 1, 3),
        NewTopic("zero-partitions", 0, 1),
        NewTopic("bad-config", 1, 1, config={"retention.ms": "soon"}),
        NewTopic("unknown-config", 1, 1, config={"no.such.config": "1"}),
    ], request_timeout=20)
    assert error_code(fs["exists"]) == KafkaError.TOPIC_ALREADY_EXISTS
    assert error_code(fs["too-many-replicas"]) == KafkaError.INVALID_REPLICATION_FACTOR
    assert error_code(fs["zero-partitions"]) == KafkaError.INVALID_PARTITIONS
    assert error_code(fs["bad-config"]) == KafkaError.INVALID_CONFIG
    assert error_code(fs["unknown-config"]) == KafkaError.INVALID_CONFIG
    names = set(a.list_topics(timeout=10).topics)
    assert "exists" in names
    assert not names & {"too-many-replicas", "zero-partitions", "bad-config", "unknown-config"}
    # validate_only creates nothing.
    fs = a.create_topics([NewTopic("validated", 3, 1)], validate_only=True, request_timeout=20)
    fs["validated"].result(20)
    assert "validated" not in a.list_topics(timeout=10).topics


def test_describe_configs_topic_and_broker(broker_factory):
    broker = broker_factory().start(sets={"message.max.bytes": "200000"})
    a = admin(broker.bootstrap)
    create_topic(broker.bootstrap, "configured", 1, config={"retention.ms": "123456", "cleanup.policy": "delete"})
    [res] = a.describe_configs([ConfigResource(ResourceType.TOPIC, "configured")]).values()
    entries = res.result(20)
    assert entries["retention.ms"].value == "123456"
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert entries["segment.bytes"].value == "1073741824"
    assert entries["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    # A topic key defaults to its broker synonym's value.
    assert entries["max.message.bytes"].value == "200000"
    assert entries["max.message.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value

    [res] = a.describe_configs([ConfigResource(ResourceType.BROKER, "0")]).values()
    entries = res.result(20)
    assert entries["message.max.bytes"].value == "200000"
    assert entries["num.partitions"].value == "1"

    [res] = a.describe_configs([ConfigResource(ResourceType.TOPIC, "no-such-topic")]).values()
    with pytest.raises(KafkaException) as e:
        res.result(20)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_partitions_then_produce(broker):
    a = admin(broker.bootstrap)
    create_topic(broker.bootstrap, "growing", 2)
    a.create_partitions([NewPartitions("growing", 5)], request_timeout=20)["growing"].result(20)
    wait_for_partitions(a, "growing", 5)
    assert_delivered(produce_confluent(confluent_producer(broker.bootstrap, **{"topic.metadata.refresh.interval.ms": 500}),
                                       "growing", [dict(value=f"p{p}".encode(), partition=p) for p in range(5)]))
    msgs = read_all_confluent(broker.bootstrap, "growing", 5)
    assert sorted((m.partition, m.value) for m in msgs) == [(p, f"p{p}".encode()) for p in range(5)]
    # Shrinking is refused.
    assert error_code(a.create_partitions([NewPartitions("growing", 3)], request_timeout=20)["growing"]) \
        == KafkaError.INVALID_PARTITIONS


def test_delete_topic(broker):
    a = admin(broker.bootstrap)
    create_topic(broker.bootstrap, "doomed", 2)
    assert_delivered(produce_confluent(confluent_producer(broker.bootstrap), "doomed", [dict(value=b"x")]))
    a.delete_topics(["doomed"], request_timeout=20)["doomed"].result(20)
    deadline = time.monotonic() + 10
    while "doomed" in a.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "doomed" not in a.list_topics(timeout=10).topics
    assert error_code(a.delete_topics(["doomed"], request_timeout=20)["doomed"]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    # The name can be used again, and the new topic starts empty.
    create_topic(broker.bootstrap, "doomed", 1)
    assert read_all_confluent(broker.bootstrap, "doomed", 1) == []


def test_describe_cluster_confluent(broker):
    a = admin(broker.bootstrap)
    desc = a.describe_cluster(request_timeout=20).result(20)
    assert desc.cluster_id == broker.cluster_id
    assert desc.controller.id == 0
    assert [(n.id, f"{n.host}:{n.port}") for n in desc.nodes] == [(0, broker.bootstrap)]


def test_kafka_python_admin(broker):
    """kafka-python's KafkaAdminClient asks Metadata v8 for authorized operations
    (include_cluster_authorized_operations / include_topic_authorized_operations) and
    decodes them as a bit field: the broker must answer with real operation bits, not
    the INT32_MIN "not requested" sentinel (bit 31 is no ACL operation)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic

    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        a.create_topics([KNewTopic("kp-admin", num_partitions=4, replication_factor=1)])
        assert "kp-admin" in a.list_topics()
        [t] = a.describe_topics(["kp-admin"])
        assert t["error_code"] == 0 and len(t["partitions"]) == 4
        # Without an authorizer Kafka grants every operation the resource type has.
        assert {"READ", "WRITE", "DESCRIBE"} <= set(t["authorized_operations"]), t["authorized_operations"]
        cluster = a.describe_cluster()
        assert cluster["cluster_id"] == broker.cluster_id
        assert cluster["controller_id"] == 0
        assert {"DESCRIBE", "CREATE", "ALTER"} <= set(cluster["authorized_operations"]), cluster
        assert [(b["node_id"], f"{b['host']}:{b['port']}") for b in cluster["brokers"]] == [(0, broker.bootstrap)]
        a.delete_topics(["kp-admin"])
    finally:
        a.close()
    assert "kp-admin" not in admin(broker.bootstrap).list_topics(timeout=10).topics
