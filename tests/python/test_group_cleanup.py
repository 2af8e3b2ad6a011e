"""Kafka's group cleanup at each offsets.retention.check.interval.ms pass: an empty
group that never committed is deleted; one with committed offsets stays (its offsets
expire after offsets.retention.minutes first)."""

from __future__ import annotations

import time

from confluent_kafka import TopicPartition

from gregor_support import admin, confluent_consumer, create_topic
from txn_support import unique, wait_until

SETS = {"group.initial.rebalance.delay.ms": "0", "offsets.retention.check.interval.ms": "200"}


def listed_groups(bootstrap: str) -> set[str]:
    a = admin(bootstrap)  # held until the answer: a dropped client fails its futures
    return {g.group_id for g in a.list_consumer_groups(request_timeout=10).result(timeout=15).valid}


def join_and_leave(bootstrap: str, group: str, topic: str, commit: bool) -> None:
    c = confluent_consumer(bootstrap, **{"group.id": group, "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 20
        while not c.assignment() and time.monotonic() < deadline:
            c.poll(0.2)
        assert c.assignment(), "no assignment"
        if commit:
            c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    finally:
        c.close()


def test_empty_group_without_offsets_is_deleted_and_one_with_offsets_stays(broker_factory):
    broker = broker_factory().start(sets=SETS)
    bootstrap = broker.bootstrap
    topic = unique("cleanup")
    create_topic(bootstrap, topic, 1)
    kept, dropped = unique("cleanup-kept"), unique("cleanup-dropped")
    join_and_leave(bootstrap, kept, topic, commit=True)
    join_and_leave(bootstrap, dropped, topic, commit=False)
    wait_until(lambda: dropped not in listed_groups(bootstrap), 10, "the empty group without offsets to be deleted")
    assert kept in listed_groups(bootstrap)
    broker.restart()
    groups = listed_groups(broker.bootstrap)
    assert kept in groups and dropped not in groups
