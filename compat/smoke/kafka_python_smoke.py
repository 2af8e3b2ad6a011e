"""kafka-python in the client smoke matrix (see smoke_common.py for the protocol)."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

import smoke_common as s

CLIENT_ID = "smoke-kafka-python"


def admin(args) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id=CLIENT_ID, request_timeout_ms=15000)


def create(args, state) -> str:
    a = admin(args)
    try:
        resp = a.create_topics([NewTopic(args.topic, num_partitions=s.PARTITIONS, replication_factor=1)])
        errs = s.errors_in(resp.to_object())
        s.expect(not errs, f"CreateTopics: {errs}")
        [t] = a.describe_topics([args.topic])
        return s.check_created(len(t["partitions"]))
    finally:
        a.close()


def produce(args, state) -> str:
    p = KafkaProducer(bootstrap_servers=args.bootstrap, client_id=CLIENT_ID, acks="all", linger_ms=5,
                      key_serializer=str.encode, value_serializer=str.encode)
    try:
        sent = [(k, v, p.send(args.topic, key=k, value=v)) for k, v in s.messages()]
        p.flush(timeout=30)
        records = []
        for k, v, f in sent:
            md = f.get(timeout=30)
            records.append([k, v, md.partition, md.offset])
    finally:
        p.close(timeout=10)
    return s.check_produced(state, records)


def consumer(args) -> KafkaConsumer:
    c = KafkaConsumer(bootstrap_servers=args.bootstrap, client_id=CLIENT_ID, group_id=args.group,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      request_timeout_ms=20000, session_timeout_ms=10000)
    c.subscribe([args.topic])
    return c


def read(c: KafkaConsumer, want: int, linger: bool) -> list:
    """Up to `want` records in delivery order; with linger, also whatever arrives in the
    next LINGER seconds (records that should not be there)."""
    records = []
    deadline = time.monotonic() + s.POLL_DEADLINE
    while len(records) < want and time.monotonic() < deadline:
        # max_records: the position (and so what is committable) moves only past what poll returns.
        for tp_records in c.poll(timeout_ms=500, max_records=want - len(records)).values():
            records += [[r.partition, r.offset, r.key.decode(), r.value.decode()] for r in tp_records]
    end = time.monotonic() + (s.LINGER if linger else 0)
    while time.monotonic() < end:
        for tp_records in c.poll(timeout_ms=200).values():
            records += [[r.partition, r.offset, r.key.decode(), r.value.decode()] for r in tp_records]
    return records


def commit(c: KafkaConsumer, topic: str, records: list) -> dict:
    nxt = {}
    for p, o, _, _ in records:
        nxt[p] = max(nxt.get(p, 0), o + 1)
    c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in nxt.items()})
    return nxt


def consume(args, state) -> str:
    c = consumer(args)
    try:
        records = read(c, s.FIRST, linger=False)
        commit(c, args.topic, records)
        back = {p: c.committed(TopicPartition(args.topic, p)) for p in range(s.PARTITIONS)}
    finally:
        c.close(autocommit=False)
    return s.check_first_read(state, records, back)


def resume(args, state) -> str:
    c = consumer(args)
    try:
        records = read(c, s.remaining(state), linger=True)
        commit(c, args.topic, records)
    finally:
        c.close(autocommit=False)
    return s.check_resumed(state, records)


def describe(args, state) -> str:
    a = admin(args)
    try:
        [t] = a.describe_topics([args.topic])
        s.expect(t["error_code"] == 0, f"describe_topics: error_code {t['error_code']}")
        cluster = a.describe_cluster()
        [g] = a.describe_consumer_groups([args.group])
        s.expect(g.error_code == 0, f"describe_consumer_groups: error_code {g.error_code}")
        s.expect(g.protocol_type == "consumer", f"group protocol type {g.protocol_type!r}")
        offsets = a.list_consumer_group_offsets(args.group)
    finally:
        a.close()
    return s.check_described(
        state, partitions=len(t["partitions"]), leaders=[p["leader"] for p in t["partitions"]],
        brokers=[b["node_id"] for b in cluster["brokers"]], group_state=g.state,
        offsets={tp.partition: om.offset for tp, om in offsets.items() if tp.topic == args.topic})


if __name__ == "__main__":
    s.main({"create": create, "produce": produce, "consume": consume, "resume": resume, "describe": describe})
