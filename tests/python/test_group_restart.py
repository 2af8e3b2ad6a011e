"""Committed offsets and groups survive broker restarts: a clean stop (SIGTERM) and a crash
(SIGKILL right after a commit was acknowledged). A new consumer of the same group resumes
exactly at the committed offsets, with their metadata, and the group is listed (Empty)
after the restart. Helpers (Member, ...) come from test_groups.py."""

from __future__ import annotations

import time

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from gregor_support import admin, create_topic
from test_groups import (
    Member,
    committed_offsets,
    drain,
    end_offsets,
    group_listing,
    kp_admin,
    produce_keyed,
    start_group_broker,
    wait_until,
)

TOPIC = "gr-restart"
PARTITIONS = 3


def admin_offsets(bootstrap: str, group: str) -> dict[int, tuple[int, str]]:
    """{partition: (offset, metadata)} by kafka-python's KafkaAdminClient (OffsetFetch), and
    the same offsets by confluent-kafka's AdminClient."""
    ka = kp_admin(bootstrap)
    try:
        got = {tp.partition: (om.offset, om.metadata) for tp, om in ka.list_consumer_group_offsets(group).items()
               if tp.topic == TOPIC}
    finally:
        ka.close()
    a = admin(bootstrap)  # must outlive the future
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(15)
    assert {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == TOPIC} == {
        p: o for p, (o, _) in got.items()}, res.topic_partitions
    return got


def meta(tag: str, p: int) -> str:
    """The metadata commit_until_ok() commits, as stored: confluent-kafka sends a
    TopicPartition's metadata with its C string terminator (metadata_size = strlen + 1)."""
    return f"{tag}-{p}\x00"


def commit_until_ok(m: Member, offsets: dict[int, int], metadata: str, timeout: float = 20.0) -> None:
    """Commits explicit offsets synchronously, retrying while the member (re)joins after a
    broker restart (COORDINATOR_NOT_AVAILABLE, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, ...)."""
    tps = [TopicPartition(TOPIC, p, o, metadata=f"{metadata}-{p}") for p, o in sorted(offsets.items())]
    errors = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            m.c.commit(offsets=tps, asynchronous=False)
            return
        except KafkaException as e:
            errors.append(str(e))
        if time.monotonic() >= deadline:
            raise AssertionError(f"commit of {offsets} not acknowledged within {timeout}s: {errors[-5:]}")
        m.step(0.1)


def resume_positions(bootstrap: str, group: str, produced: dict) -> dict[int, int]:
    """A new member of `group` consumes everything from its committed offsets on;
    returns the first offset it saw per partition (it must see every later record)."""
    m = Member("resumer", bootstrap, group, TOPIC)
    try:
        committed = {p: o for (t, p), o in committed_offsets(bootstrap, group).items() if t == TOPIC}
        expected = {k: v for k, v in produced.items() if k[1] >= committed.get(k[0], 0)}
        drain([m], expected)
        time.sleep(0.3)
        first = {}
        for p, o, _, _ in m.processed():
            first.setdefault(p, o)
        assert sorted((p, o) for p, o, _, _ in m.processed()) == sorted(expected), "records after resuming differ"
        return first
    finally:
        m.close()


def test_clean_restart_keeps_committed_offsets(broker_factory):
    broker = start_group_broker(broker_factory)
    create_topic(broker.bootstrap, TOPIC, PARTITIONS)
    produced = produce_keyed(broker.bootstrap, TOPIC, 0, 150)
    ends = end_offsets(broker.bootstrap, TOPIC, PARTITIONS)
    group = "gr-clean"
    m = Member("first", broker.bootstrap, group, TOPIC, threaded=False)  # commit_until_ok() uses it
    try:
        drain([m], produced)  # commits the end offsets as it goes
        target = {p: ends[p] // 2 + p for p in range(PARTITIONS)}  # then rewinds, with metadata
        commit_until_ok(m, target, "clean")
    finally:
        m.close()
    assert admin_offsets(broker.bootstrap, group) == {p: (o, meta("clean", p)) for p, o in target.items()}
    wait_until(lambda: group_listing(broker.bootstrap).get(group) == ConsumerGroupState.EMPTY, 5, "group Empty")

    assert broker.stop() == 0, "SIGTERM must be a clean exit"
    broker.start()
    listing = group_listing(broker.bootstrap)
    assert listing.get(group) == ConsumerGroupState.EMPTY, listing
    a = kp_admin(broker.bootstrap)
    try:
        assert (group, "consumer") in a.list_consumer_groups()
    finally:
        a.close()
    assert admin_offsets(broker.bootstrap, group) == {p: (o, meta("clean", p)) for p, o in target.items()}
    assert resume_positions(broker.bootstrap, group, produced) == target


def test_crash_after_acknowledged_commit(broker_factory):
    """SIGKILL right after each acknowledged commit of a live member: after every restart the
    last acknowledged offsets are there; the member carries on and commits again; finally a
    new member resumes at the last commit."""
    broker = start_group_broker(broker_factory)
    create_topic(broker.bootstrap, TOPIC, PARTITIONS)
    produced = produce_keyed(broker.bootstrap, TOPIC, 0, 150)
    group = "gr-crash"
    m = Member("live", broker.bootstrap, group, TOPIC, threaded=False)  # commit_until_ok() uses it
    try:
        drain([m], produced)
        last = None
        for cycle in range(1, 4):
            target = {p: 7 * cycle + p for p in range(PARTITIONS)}
            commit_until_ok(m, target, f"crash{cycle}")
            broker.kill()  # no clean shutdown: the acknowledged commit must already be durable
            broker.start()
            got = admin_offsets(broker.bootstrap, group)
            assert got == {p: (o, meta(f"crash{cycle}", p)) for p, o in target.items()}, (cycle, got)
            last = target
        listing = group_listing(broker.bootstrap)
        assert group in listing, listing
    finally:
        m.close()
    wait_until(lambda: group_listing(broker.bootstrap).get(group) == ConsumerGroupState.EMPTY, 10,
               "group Empty after the member left")
    broker.kill()
    broker.start()
    assert group_listing(broker.bootstrap).get(group) == ConsumerGroupState.EMPTY
    assert resume_positions(broker.bootstrap, group, produced) == last
