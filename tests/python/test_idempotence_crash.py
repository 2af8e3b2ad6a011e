"""An idempotent confluent-kafka producer keeps writing while the broker is killed with
SIGKILL and restarted (same port, same data dir) several times. Every acknowledged
message must be in the log exactly once, at the offset it was acknowledged with, and
no message may appear twice (librdkafka retries batches whose answer was lost; the
broker must recognise them by producer id and sequence, also after recovery).

The kill schedule is random but seeded: GREGOR_TEST_SEED overrides the seed."""

from __future__ import annotations

import os
import random
import time
from collections import Counter

from gregor_support import FAST_RECONNECT, create_topic, read_all_confluent

PARTITIONS = 3
SEED = int(os.environ.get("GREGOR_TEST_SEED", "20251121"))


def test_idempotent_producer_survives_sigkill_restarts(broker_factory):
    from confluent_kafka import Producer

    broker = broker_factory().start()
    topic = "idempotence-crash"
    create_topic(broker.bootstrap, topic, PARTITIONS)

    rnd = random.Random(SEED)
    kills = rnd.randint(3, 5)
    t = 1.0
    schedule = []  # (kill at, restart at), seconds from the start
    for _ in range(kills):
        t += rnd.uniform(1.0, 3.0)
        down = rnd.uniform(0.05, 1.0)
        schedule.append((t, t + down))
        t += down
    produce_until = t + 1.5
    print(f"seed {SEED}: {kills} kills at {[(round(a, 2), round(b, 2)) for a, b in schedule]}")

    acked: dict[int, tuple[int, int]] = {}
    failed: dict[int, str] = {}
    fatal: list[str] = []
    client_errors: list[str] = []

    def on_error(err):
        client_errors.append(str(err))
        if err.fatal():
            fatal.append(str(err))

    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 45000,
        "error_cb": on_error,
        **FAST_RECONNECT,
    })

    def delivered(seq):
        def cb(err, msg):
            if err is None:
                acked[seq] = (msg.partition(), msg.offset())
            else:
                failed[seq] = str(err)
        return cb

    start = time.monotonic()
    seq = 0
    next_event = 0
    down = False
    while True:
        now = time.monotonic() - start
        if now >= produce_until:
            break
        if next_event < len(schedule):
            kill_at, restart_at = schedule[next_event]
            if not down and now >= kill_at:
                broker.kill()
                down = True
            elif down and now >= restart_at:
                broker.start()  # same port, same data dir
                down = False
                next_event += 1
        assert not fatal, f"fatal producer error: {fatal}"
        try:
            producer.produce(topic, key=str(seq).encode(), value=str(seq).encode(), partition=seq % PARTITIONS,
                             on_delivery=delivered(seq))
            seq += 1
        except BufferError:
            pass
        producer.poll(0)
        time.sleep(0.002)
    assert not down and broker.running
    produced = seq
    remaining = producer.flush(60)
    elapsed = time.monotonic() - start
    print(f"produced {produced}, acked {len(acked)}, failed {len(failed)}, {elapsed:.1f}s, "
          f"{len(client_errors)} client errors, broker starts {broker.starts}")
    assert broker.starts == kills + 1
    assert remaining == 0, f"{remaining} messages undelivered 60 s after the last restart"
    assert not fatal, f"fatal producer error: {fatal}"
    # The broker was down at most ~1 s at a time: librdkafka retries everything.
    assert not failed, f"{len(failed)} deliveries failed, e.g. {sorted(failed.items())[:5]}"
    assert len(acked) == produced

    msgs = read_all_confluent(broker.bootstrap, topic, PARTITIONS, timeout=60)
    counts = Counter(int(m.value) for m in msgs)
    dups = sorted(s for s, c in counts.items() if c > 1)
    assert not dups, f"{len(dups)} sequence numbers stored more than once, e.g. {dups[:10]}"
    by_pos = {(m.partition, m.offset): int(m.value) for m in msgs}
    missing = sorted(s for s in acked if s not in counts)
    assert not missing, f"{len(missing)} acknowledged messages missing, e.g. {missing[:10]}"
    moved = [(s, pos, by_pos.get(pos)) for s, pos in acked.items() if by_pos.get(pos) != s]
    assert not moved, f"acknowledged at one offset, stored at another: {moved[:10]}"
    for p in range(PARTITIONS):
        seqs = [int(m.value) for m in sorted((m for m in msgs if m.partition == p), key=lambda m: m.offset)]
        assert all(s % PARTITIONS == p for s in seqs)
        assert seqs == sorted(seqs), f"partition {p}: sequence numbers out of order"
        offsets = sorted(m.offset for m in msgs if m.partition == p)
        assert offsets == list(range(len(offsets))), f"partition {p}: offsets not dense"
        assert [m.key for m in msgs if m.partition == p] == [m.value for m in msgs if m.partition == p]
