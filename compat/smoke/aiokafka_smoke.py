"""aiokafka (asyncio) in the client smoke matrix (see smoke_common.py)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import smoke_common as s

CLIENT_ID = "smoke-aiokafka"


async def admin(args) -> AIOKafkaAdminClient:
    a = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap, client_id=CLIENT_ID, request_timeout_ms=15000)
    await a.start()
    return a


async def create(args, state) -> str:
    a = await admin(args)
    try:
        resp = await a.create_topics([NewTopic(args.topic, num_partitions=s.PARTITIONS, replication_factor=1)])
        errs = s.errors_in(resp.to_object())
        s.expect(not errs, f"CreateTopics: {errs}")
        [t] = await a.describe_topics([args.topic])
        s.expect(t["error_code"] == 0, f"describe_topics: error_code {t['error_code']}")
        return s.check_created(len(t["partitions"]))
    finally:
        await a.close()


async def produce(args, state) -> str:
    p = AIOKafkaProducer(bootstrap_servers=args.bootstrap, client_id=CLIENT_ID, acks="all", linger_ms=5,
                         key_serializer=str.encode, value_serializer=str.encode)
    await p.start()
    try:
        msgs = s.messages()
        # send() returns once the record is queued; the futures resolve on the acks.
        futs = [await p.send(args.topic, key=k, value=v) for k, v in msgs]
        mds = await asyncio.wait_for(asyncio.gather(*futs), 30)
    finally:
        await p.stop()
    return s.check_produced(state, [[k, v, md.partition, md.offset] for (k, v), md in zip(msgs, mds)])


async def consumer(args) -> AIOKafkaConsumer:
    c = AIOKafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, client_id=CLIENT_ID, group_id=args.group,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         request_timeout_ms=20000, session_timeout_ms=10000)
    await c.start()
    return c


async def read(c: AIOKafkaConsumer, want: int, linger: bool) -> list:
    records = []

    def take(batches):
        for rs in batches.values():
            records.extend([r.partition, r.offset, r.key.decode(), r.value.decode()] for r in rs)

    deadline = time.monotonic() + s.POLL_DEADLINE
    while len(records) < want and time.monotonic() < deadline:
        # max_records: the position (and so what is committable) moves only past what getmany returns.
        take(await c.getmany(timeout_ms=500, max_records=want - len(records)))
    end = time.monotonic() + (s.LINGER if linger else 0)
    while time.monotonic() < end:
        take(await c.getmany(timeout_ms=200))
    return records


async def commit(c: AIOKafkaConsumer, topic: str, records: list) -> None:
    nxt = {}
    for p, o, _, _ in records:
        nxt[p] = max(nxt.get(p, 0), o + 1)
    await c.commit({TopicPartition(topic, p): o for p, o in nxt.items()})


async def consume(args, state) -> str:
    c = await consumer(args)
    try:
        records = await read(c, s.FIRST, linger=False)
        await commit(c, args.topic, records)
        back = {p: await c.committed(TopicPartition(args.topic, p)) for p in range(s.PARTITIONS)}
    finally:
        await c.stop()
    return s.check_first_read(state, records, back)


async def resume(args, state) -> str:
    c = await consumer(args)
    try:
        records = await read(c, s.remaining(state), linger=True)
        await commit(c, args.topic, records)
    finally:
        await c.stop()
    return s.check_resumed(state, records)


async def describe(args, state) -> str:
    a = await admin(args)
    try:
        [t] = await a.describe_topics([args.topic])
        s.expect(t["error_code"] == 0, f"describe_topics: error_code {t['error_code']}")
        cluster = await a.describe_cluster()
        # The raw DescribeGroups responses: aiokafka decodes no further.
        groups = [g for resp in await a.describe_consumer_groups([args.group]) for g in resp.to_object()["groups"]]
        offsets = await a.list_consumer_group_offsets(args.group)
    finally:
        await a.close()
    s.expect(len(groups) == 1, f"describe_consumer_groups returned {len(groups)} groups")
    [g] = groups
    s.expect(g["error_code"] == 0, f"describe_consumer_groups: error_code {g['error_code']}")
    s.expect(g["protocol_type"] == "consumer", f"group protocol type {g['protocol_type']!r}")
    return s.check_described(
        state, partitions=len(t["partitions"]), leaders=[p["leader"] for p in t["partitions"]],
        brokers=[b["node_id"] for b in cluster["brokers"]], group_state=g["state"],
        offsets={tp.partition: om.offset for tp, om in offsets.items() if tp.topic == args.topic})


def sync(step):
    return lambda args, state: asyncio.run(step(args, state))


if __name__ == "__main__":
    s.main({name: sync(fn) for name, fn in
            [("create", create), ("produce", produce), ("consume", consume), ("resume", resume), ("describe", describe)]})
