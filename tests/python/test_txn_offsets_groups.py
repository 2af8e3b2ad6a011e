"""Offsets staged by an open transaction (send_offsets_to_transaction) meet the group
admin APIs, as in Kafka: DeleteGroups and DeleteConsumerGroupOffsets tombstone them, so
the transaction's commit brings nothing back, and a restarted broker agrees."""

from __future__ import annotations

import subprocess

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from conftest import broker_binary
from gregor_support import admin, confluent_consumer, create_topic
from txn_support import close_quietly, txn_producer, unique

PARTITIONS = 2
SETS = {"group.initial.rebalance.delay.ms": "0"}


def group_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    wanted = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, q) for q in range(PARTITIONS)])
    a = admin(bootstrap)  # held until the answer: a dropped client fails its futures
    res = a.list_consumer_group_offsets([wanted], request_timeout=10)[group].result(timeout=15)
    return {tp.partition: tp.offset for tp in res.topic_partitions if tp.offset >= 0}


def commit_plain(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    wanted = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, partition, offset)])
    a = admin(bootstrap)
    a.alter_consumer_group_offsets([wanted], request_timeout=10)[group].result(timeout=15)


def stage_delete_commit(broker_factory, delete, expected: dict[int, int]) -> None:
    """Commits offset 5 of partition 0 for a fresh group, opens a transaction that stages
    offset 10 of partition 1, runs `delete(bootstrap, group, topic)` while it is open,
    commits the transaction, then expects `expected` as the group's offsets before and
    after a broker restart."""
    broker = broker_factory().start(sets=SETS)
    bootstrap = broker.bootstrap
    topic, group = unique("txn-group-admin"), unique("txn-group-admin-group")
    create_topic(bootstrap, topic, PARTITIONS)
    commit_plain(bootstrap, group, topic, 0, 5)
    meta_consumer = confluent_consumer(bootstrap, **{"group.id": group})
    p = txn_producer(bootstrap, unique("txn-group-admin-id"))
    try:
        p.init_transactions(30)
        p.begin_transaction()
        p.send_offsets_to_transaction([TopicPartition(topic, 1, 10)], meta_consumer.consumer_group_metadata(), 30)
        delete(bootstrap, group, topic)
        p.commit_transaction(30)
    finally:
        close_quietly(p)
        meta_consumer.close()
    assert group_offsets(bootstrap, group, topic) == expected, "the commit brought deleted offsets back"
    broker.restart()
    assert group_offsets(broker.bootstrap, group, topic) == expected


def delete_group(bootstrap: str, group: str, _topic: str) -> None:
    a = admin(bootstrap)
    a.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)


def delete_partition_1_offsets(bootstrap: str, group: str, topic: str) -> None:
    # Neither Python admin client sends OffsetDelete; the gregor CLI does.
    cli = [str(broker_binary()), "groups", "delete-offsets", "--bootstrap-server", bootstrap,
           "--topic", f"{topic}:1", group]
    subprocess.run(cli, check=True, capture_output=True, timeout=30)


def test_delete_group_drops_offsets_staged_by_an_open_transaction(broker_factory):
    stage_delete_commit(broker_factory, delete_group, {})


def test_delete_offsets_drops_the_partition_staged_by_an_open_transaction(broker_factory):
    stage_delete_commit(broker_factory, delete_partition_1_offsets, {0: 5})
