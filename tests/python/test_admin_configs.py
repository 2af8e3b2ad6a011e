"""Config changes and record deletion through the Python admin clients.

Contract: confluent-kafka's incremental_alter_configs / alter_configs / delete_records /
describe_topics and kafka-python's alter_configs behave as against Apache Kafka: values are validated, stored, reported
with their source, survive a restart, and take effect on the logs.
"""
from __future__ import annotations

from confluent_kafka import KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic, ResourceType)

from gregor_support import produce_confluent


def produce(broker, topic: str, values: list[bytes], partition: int) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    deliveries = produce_confluent(producer, topic, [{"value": v, "partition": partition} for v in values])
    assert all(d.error is None for d in deliveries), deliveries


def admin_for(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create(admin: AdminClient, name: str, partitions: int = 1) -> None:
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(15)


def topic_config(admin: AdminClient, topic: str, key: str):
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(15)
    return entries[key]


def test_incremental_alter_configs_round_trip_and_restart(broker):
    admin = admin_for(broker)
    create(admin, "tuned")
    resource = ConfigResource(ResourceType.TOPIC, "tuned", incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    admin.incremental_alter_configs([resource])[resource].result(15)
    entry = topic_config(admin, "tuned", "retention.ms")
    assert entry.value == "3600000" and entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert topic_config(admin, "tuned", "cleanup.policy").value == "delete,compact"

    bad = ConfigResource(ResourceType.TOPIC, "tuned", incremental_configs=[
        ConfigEntry("retention.ms", "tomorrow", incremental_operation=AlterConfigOpType.SET)])
    try:
        admin.incremental_alter_configs([bad])[bad].result(15)
        raise AssertionError("an invalid value was accepted")
    except KafkaException as e:
        assert e.args[0].code() == 40, e  # INVALID_CONFIG

    broker.restart()
    admin = admin_for(broker)
    assert topic_config(admin, "tuned", "retention.ms").value == "3600000"
    delete = ConfigResource(ResourceType.TOPIC, "tuned", incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([delete])[delete].result(15)
    entry = topic_config(admin, "tuned", "retention.ms")
    assert entry.value == "604800000" and entry.source == ConfigSource.DEFAULT_CONFIG.value


def test_delete_records_moves_the_low_watermark(broker):
    admin = admin_for(broker)
    create(admin, "trimmed")
    produce(broker, "trimmed", [b"v%d" % i for i in range(10)], partition=0)
    result = admin.delete_records([TopicPartition("trimmed", 0, 6)])
    low = list(result.values())[0].result(15)
    assert low.low_watermark == 6


def test_kafka_python_alter_configs(broker):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KPResource, ConfigResourceType

    admin = admin_for(broker)
    create(admin, "legacy", 2)
    produce(broker, "legacy", [b"x" * 100 for _ in range(5)], partition=1)
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        kp.alter_configs([KPResource(ConfigResourceType.TOPIC, "legacy", configs={"segment.ms": "3600000"})])
        assert topic_config(admin, "legacy", "segment.ms").value == "3600000"
        # kafka-python speaks only DescribeLogDirs v0, which Kafka 4 removed (KIP-896):
        # against Kafka 4 it fails the same way, before sending anything.
        from kafka.errors import IncompatibleBrokerVersion
        try:
            kp.describe_log_dirs()
            raise AssertionError("DescribeLogDirs v0 is not served")
        except IncompatibleBrokerVersion:
            pass
    finally:
        kp.close()
