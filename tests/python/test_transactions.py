"""Kafka transactions with real clients: the transaction coordinator (InitProducerId with a
transactional.id, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn), control
records, read_committed fetches (last stable offset and aborted transactions), zombie
fencing and the abort of timed-out transactions.

- confluent-kafka (librdkafka) transactional producers commit and abort; read_committed
  consumers see exactly the committed records, read_uncommitted ones everything, and
  both move past the control records to the high watermark.
- Fetch v4 by hand: LSO, the aborted-transaction list and the control batches themselves.
- consume-transform-produce with `txn_processor.py` in a subprocess, SIGKILLed (and the
  broker SIGKILLed) at seeded random points: every input record is in the output exactly
  once (GREGOR_TEST_SEED overrides the seed).
- zombie fencing (librdkafka reports it as the fatal local error _FENCED), the broker
  aborting a transaction that outlived transaction.timeout.ms, committed, aborted and
  open transactions across a broker SIGKILL, offsets committed through
  a transaction, kafka-python's transactional producer, ListOffsets by isolation level,
  and ListTransactions / DescribeTransactions / DescribeProducers (by hand, when the
  broker advertises them: confluent-kafka 2.16 has no admin calls for them).

Brokers start with `transaction.abort.timed.out.transaction.cleanup.interval.ms` of 1000
(500 in the timeout test) so that abandoned transactions end quickly, and
`group.initial.rebalance.delay.ms=0`.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from gregor_support import (
    admin,
    assert_delivered,
    confluent_consumer,
    confluent_producer,
    create_topic,
    kp_consumer,
    produce_confluent,
)
from txn_support import (
    ATTR_CONTROL,
    ATTR_TRANSACTIONAL,
    CONTROL_ABORT,
    CONTROL_COMMIT,
    FENCED_CODES,
    READ_COMMITTED,
    READ_UNCOMMITTED,
    Processor,
    api_versions,
    assert_all_delivered,
    call_with_timeout,
    close_quietly,
    describe,
    describe_producers_v0,
    describe_transactions_v0,
    high_watermarks,
    kafka_error,
    list_transactions_v0,
    poll_window,
    raw_fetch,
    read_to_end,
    send,
    stable_offsets,
    txn_producer,
    unique,
    wait_until,
    API_DESCRIBE_PRODUCERS,
    API_DESCRIBE_TRANSACTIONS,
    API_LIST_TRANSACTIONS,
)

PARTITIONS = 3
SEED = int(os.environ.get("GREGOR_TEST_SEED", "20251121"))
TXN_SETS = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
    "group.initial.rebalance.delay.ms": "0",
}
ERR_TRANSACTIONAL_ID_NOT_FOUND = 105


def start_broker(broker_factory, **sets):
    return broker_factory().start(sets={**TXN_SETS, **{k: str(v) for k, v in sets.items()}})


def keyed(tag: str, n: int, partitions: int = PARTITIONS) -> list[dict]:
    """n records <tag><i> = "<tag>-<i>", round-robin over the partitions."""
    return [dict(key=f"{tag}{i}".encode(), value=f"{tag}-{i}".encode(), partition=i % partitions) for i in range(n)]


def run_transaction(producer, topic: str, items: list[dict], commit: bool, what: str):
    """One transaction: produce, flush (so every record is in the log, also for an abort),
    then commit or abort. Returns the delivery reports."""
    producer.begin_transaction()
    results = send(producer, topic, items)
    assert producer.flush(30) == 0, f"{what}: records undelivered after 30 s"
    delivered = assert_all_delivered(results, what)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)
    return delivered


def wait_stable(bootstrap: str, topic: str, expected_hw: dict[int, int], timeout: float = 15.0) -> None:
    """Waits until every partition's high watermark is `expected_hw` and its last stable
    offset equals it (commit_transaction returns once the commit is decided; the markers
    may be written just after)."""
    last = {}

    def done():
        hw = high_watermarks(bootstrap, topic, sorted(expected_hw))
        lso = stable_offsets(bootstrap, topic, sorted(expected_hw))
        last.update(hw=hw, lso=lso)
        return hw == expected_hw and lso == expected_hw

    try:
        wait_until(done, timeout, "the high watermarks and last stable offsets", interval=0.2)
    except AssertionError:
        raise AssertionError(f"{topic}: expected high watermark = last stable offset = {expected_hw}, "
                             f"last seen {last}") from None


def view(msgs) -> list[tuple[int, bytes, bytes]]:
    return [(m.offset, m.key, m.value) for m in msgs]


# ---------------------------------------------------------------- a. committed vs aborted


def test_read_committed_sees_committed_transactions_only(broker_factory):
    """Transactions A (commit), B (abort, its records flushed into the log first), C
    (commit), 4 records per partition each. Each transaction leaves exactly one control
    record per partition, so partition offsets are A 0-3, commit 4, B 5-8, abort 9, C
    10-13, commit 14. read_committed returns A then C per partition, read_uncommitted A, B,
    C; both end at position 15 = the high watermark (control records are skipped)."""
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    topic = unique("txn-basic")
    create_topic(bootstrap, topic, PARTITIONS)
    errors: list[KafkaError] = []
    p = txn_producer(bootstrap, unique("txn-basic-id"), errors)
    per_part = 4
    delivered = {}
    try:
        p.init_transactions(30)
        for tag, commit in (("A", True), ("B", False), ("C", True)):
            items = keyed(tag, per_part * PARTITIONS)
            delivered[tag] = list(zip(items, run_transaction(p, topic, items, commit, f"transaction {tag}")))
        assert not [e for e in errors if e.fatal()], [describe(e) for e in errors]
    finally:
        close_quietly(p)

    # Offsets as acknowledged: dense within a transaction, one marker between transactions.
    expected: dict[str, dict[int, list[tuple[int, bytes, bytes]]]] = {}
    for t, (tag, pairs) in enumerate(delivered.items()):
        for part in range(PARTITIONS):
            mine = [(d.offset, it["key"], it["value"]) for it, d in pairs if d.partition == part]
            base = t * (per_part + 1)
            assert [o for o, _, _ in mine] == list(range(base, base + per_part)), \
                f"transaction {tag}, partition {part}: acknowledged offsets {[o for o, _, _ in mine]}"
            expected.setdefault(tag, {})[part] = mine
    end = 3 * (per_part + 1)
    ends = {part: end for part in range(PARTITIONS)}
    wait_stable(bootstrap, topic, ends)

    committed = read_to_end(bootstrap, topic, PARTITIONS, READ_COMMITTED, ends=ends)
    by_part = committed.by_partition()
    for part in range(PARTITIONS):
        assert view(by_part.get(part, [])) == expected["A"][part] + expected["C"][part], \
            f"read_committed, partition {part}: {view(by_part.get(part, []))}"
    assert committed.positions == ends, f"read_committed positions {committed.positions}, expected {ends}"
    assert committed.eof_offsets == ends, committed.eof_offsets

    uncommitted = read_to_end(bootstrap, topic, PARTITIONS, READ_UNCOMMITTED, ends=ends)
    by_part = uncommitted.by_partition()
    for part in range(PARTITIONS):
        assert view(by_part.get(part, [])) == expected["A"][part] + expected["B"][part] + expected["C"][part], \
            f"read_uncommitted, partition {part}: {view(by_part.get(part, []))}"
    assert uncommitted.positions == ends, f"read_uncommitted positions {uncommitted.positions}, expected {ends}"


def test_fetch_v4_last_stable_offset_aborted_transactions_and_markers(broker_factory):
    """Fetch v4 by hand on partition 0 after A (3 records, commit), B (3, abort) and C (2,
    still open): offsets A 0-2, commit marker 3, B 4-6, abort marker 7, C 8-9. The
    read_committed answer has HW 10, LSO 8, (producer id, 4) in its aborted transactions,
    and no batch at or beyond the LSO; the read_uncommitted one returns C's batches too.
    Data batches are transactional; markers are transactional control batches of one
    control record (type 1 commit, 0 abort) with the same producer id. After C commits,
    LSO = HW = 11 (marker at 10)."""
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    topic = unique("txn-wire")
    create_topic(bootstrap, topic, PARTITIONS)
    p = txn_producer(bootstrap, unique("txn-wire-id"))
    try:
        p.init_transactions(30)
        run_transaction(p, topic, keyed("A", 3, 1), True, "A")
        run_transaction(p, topic, keyed("B", 3, 1), False, "B")
        p.begin_transaction()
        c_results = send(p, topic, keyed("C", 2, 1))
        assert p.flush(30) == 0
        assert [d.offset for d in assert_all_delivered(c_results, "C")] == [8, 9]

        wait_until(lambda: high_watermarks(bootstrap, topic, [0])[0] == 10, 10, "high watermark 10 (B's abort marker)")
        rc = raw_fetch(bootstrap, topic, 0, 0, isolation=1)
        assert rc.error_code == 0, rc
        assert (rc.high_watermark, rc.last_stable_offset) == (10, 8), rc
        data = [b for b in rc.batches if not b.control]
        markers = [b for b in rc.batches if b.control]
        assert data and all(b.transactional for b in data), rc.batches
        pid = data[0].producer_id
        assert pid >= 0 and all(b.producer_id == pid for b in rc.batches), rc.batches
        assert all(b.last_offset < 8 for b in rc.batches), f"read_committed fetch returned data at or past the LSO: {rc.batches}"
        assert [(b.base_offset, b.last_offset) for b in markers] == [(3, 3), (7, 7)], markers
        assert [b.control_type for b in markers] == [CONTROL_COMMIT, CONTROL_ABORT], markers
        assert all(b.attributes & (ATTR_CONTROL | ATTR_TRANSACTIONAL) == ATTR_CONTROL | ATTR_TRANSACTIONAL
                   and b.record_count == 1 for b in markers), markers
        covered = sorted(o for b in data for o in range(b.base_offset, b.last_offset + 1))
        assert covered == [0, 1, 2, 4, 5, 6], covered
        assert rc.aborted is not None and (pid, 4) in rc.aborted, f"aborted transactions {rc.aborted}, expected ({pid}, 4)"
        assert all(first < 10 for _, first in rc.aborted), rc.aborted

        ru = raw_fetch(bootstrap, topic, 0, 0, isolation=0)
        assert (ru.high_watermark, ru.last_stable_offset) == (10, 8), ru
        covered = sorted(o for b in ru.batches if not b.control for o in range(b.base_offset, b.last_offset + 1))
        assert covered == [0, 1, 2, 4, 5, 6, 8, 9], ru.batches

        p.commit_transaction(30)
    finally:
        close_quietly(p)
    wait_stable(bootstrap, topic, {0: 11})
    rc = raw_fetch(bootstrap, topic, 0, 8, isolation=1)
    assert (rc.high_watermark, rc.last_stable_offset) == (11, 11), rc
    assert [(b.base_offset, b.control, b.control_type) for b in rc.batches if b.control] == [(10, True, CONTROL_COMMIT)], \
        rc.batches
    assert sorted(o for b in rc.batches if not b.control for o in range(b.base_offset, b.last_offset + 1)) == [8, 9]


# ---------------------------------------------------------------- b. exactly-once processing


def test_exactly_once_processing_across_sigkills(broker_factory, tmp_path):
    """2000 input records k<i> = "<i>" (i % 3 = partition). txn_processor.py (one
    transaction per batch of <= 25 records, 30 ms of "processing" inside each, static
    group membership so that a restarted instance takes over at once) is SIGKILLed at
    seeded random points (3-5 rounds); in some rounds the broker is SIGKILLed with it, in
    others only the broker (the processor must ride it out). A restarted instance reuses
    the transactional.id, which fences the killed one and aborts its open transaction.
    Finally the processor runs until it is idle and caught up. The read_committed output
    holds every index exactly once, as k<i> = "<2i>", in input order per partition, and the
    group's committed offsets are the input's end offsets."""
    broker = start_broker(broker_factory)
    inp, out = unique("eos-in"), unique("eos-out")
    create_topic(broker.bootstrap, inp, PARTITIONS)
    create_topic(broker.bootstrap, out, PARTITIONS)
    n = 2000
    items = [dict(key=f"k{i}".encode(), value=str(i).encode(), partition=i % PARTITIONS) for i in range(n)]
    assert_delivered(produce_confluent(confluent_producer(broker.bootstrap, **{"enable.idempotence": True}), inp, items))
    input_end = high_watermarks(broker.bootstrap, inp, PARTITIONS)
    assert sum(input_end.values()) == n, input_end

    group, tid = unique("eos-group"), unique("eos-txn")
    rnd = random.Random(SEED)
    rounds = rnd.randint(3, 5)
    kinds = ["proc", "broker+proc", "broker"] + [rnd.choice(["proc", "broker+proc", "broker"]) for _ in range(rounds - 3)]
    rnd.shuffle(kinds)
    print(f"seed {SEED}: {rounds} rounds {kinds}")
    procs: list[Processor] = []
    restarts_on_request = 0

    def start_proc() -> Processor:
        p = Processor(tmp_path, f"proc-{len(procs)}", broker.bootstrap, group, inp, out, tid,
                      "--batch", "25", "--delay-ms", "30", "--idle-exit", "3", "--transaction-timeout-ms", "10000",
                      "--instance-id", "eos-processor", "--deadline", "170")
        procs.append(p)
        return p

    def check(proc: Processor, round_: int | None = None) -> Processor:
        """Fails on an unexpected exit; restarts a processor that asked for it (exit 5)."""
        nonlocal restarts_on_request
        rc = proc.returncode
        if rc is None:
            return proc
        if rc == 0 and round_ is not None:
            raise AssertionError(f"the processor finished all input before round {round_} of {kinds}: "
                                 f"the kill schedule needs more input\n{proc.describe()}")
        if rc == 5 and restarts_on_request < 3:
            restarts_on_request += 1
            print(f"{proc.name} exited 5 (could not rewind after an abort): restarting")
            return start_proc()
        raise AssertionError(f"processor exited unexpectedly\n{proc.describe()}")

    try:
        proc = start_proc()
        for r, kind in enumerate(kinds):
            target = rnd.randint(60, 160)
            counted, base = proc, proc.committed_records()
            deadline = time.monotonic() + 45
            while True:
                proc = check(proc, r)
                if proc is not counted:
                    counted, base = proc, 0
                if proc.committed_records() - base >= target:
                    break
                assert time.monotonic() < deadline, f"round {r}: no progress of {target} records in 45 s\n{proc.describe()}"
                time.sleep(0.02)
            time.sleep(rnd.uniform(0.0, 0.15))  # anywhere in the next few transactions
            proc = check(proc, r)
            down = rnd.uniform(0.05, 0.6)
            if kind == "proc":
                proc.kill()
                proc = start_proc()
            elif kind == "broker+proc":
                proc.kill()
                broker.kill()
                time.sleep(down)
                broker.start()
                proc = start_proc()
            else:
                broker.kill()
                time.sleep(down)
                broker.start()
            print(f"round {r}: {kind} after {target}+ records (broker down {down:.2f}s)")

        deadline = time.monotonic() + 90
        while True:
            rc = proc.wait(0.5)
            if rc == 0:
                break
            proc = check(proc)
            assert time.monotonic() < deadline, f"the last processor did not finish within 90 s\n{proc.describe()}"
    finally:
        for p in procs:
            p.cleanup()

    res = read_to_end(broker.bootstrap, out, PARTITIONS, READ_COMMITTED, timeout=60)
    got = []
    for m in res.msgs:
        i = int(m.key.decode()[1:])
        assert m.value == str(2 * i).encode(), (m.partition, m.offset, m.key, m.value)
        assert m.partition == i % PARTITIONS, (m.partition, m.key)
        got.append(i)
    counts = Counter(got)
    dups = sorted(i for i, c in counts.items() if c > 1)
    missing = sorted(set(range(n)) - set(counts))
    assert not dups, f"{len(dups)} input records in the committed output more than once, e.g. {dups[:10]}"
    assert not missing, f"{len(missing)} input records missing from the committed output, e.g. {missing[:10]}"
    assert len(got) == n
    by_part = res.by_partition()
    for part in range(PARTITIONS):
        seq = [int(m.key.decode()[1:]) for m in by_part.get(part, [])]
        assert seq == list(range(part, n, PARTITIONS)), f"output partition {part} out of input order"

    a = admin(broker.bootstrap)
    offsets = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=10)[group].result(timeout=15)
    committed = {tp.partition: tp.offset for tp in offsets.topic_partitions if tp.topic == inp}
    assert committed == input_end, f"group {group} committed {committed}, input ends at {input_end}"

    raw = read_to_end(broker.bootstrap, out, PARTITIONS, READ_UNCOMMITTED, timeout=60)
    print(f"{len(procs)} processor runs, {broker.starts} broker starts; output: {len(res.msgs)} committed records, "
          f"{len(raw.msgs) - len(res.msgs)} records of aborted transactions")


# ---------------------------------------------------------------- c. zombie fencing


def test_zombie_producer_is_fenced(broker_factory):
    """p1 begins a transaction and writes zombie-0 to partition 0; p2 with the same
    transactional.id runs init_transactions, which aborts p1's transaction and bumps the
    epoch. p1 (the zombie) then produces to partitions 0 and 1 and commits: the records
    fail and the commit raises a fatal fencing error. p2 commits normally. read_committed
    shows only p2's records; the log of partition 0 has zombie-0, then the abort marker,
    then p2's record and its commit marker; the zombie's later records are nowhere."""
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    topic = unique("txn-zombie")
    create_topic(bootstrap, topic, PARTITIONS)
    tid = unique("txn-zombie-id")
    errs1: list[KafkaError] = []
    errs2: list[KafkaError] = []
    p1 = txn_producer(bootstrap, tid, errs1)
    p2 = None
    try:
        p1.init_transactions(30)
        p1.begin_transaction()
        first = send(p1, topic, [dict(key=b"zombie-0", value=b"zombie-0", partition=0)])
        assert p1.flush(30) == 0
        assert [d.offset for d in assert_all_delivered(first, "zombie-0")] == [0]

        p2 = txn_producer(bootstrap, tid, errs2)
        p2.init_transactions(30)  # fences p1

        # No delivery callbacks on the zombie's records: confluent-kafka 2.16.1 raises the
        # fatal error from flush() and runs a delivery callback with that exception still
        # set, so any call inside the callback dies with SystemError (and error_cb is not
        # called). The log check below shows these records were not written.
        raised: list[KafkaError | None] = []
        try:
            p1.produce(topic, key=b"zombie-1", value=b"zombie-1", partition=0)
            p1.produce(topic, key=b"zombie-2", value=b"zombie-2", partition=1)
        except KafkaException as e:  # already in the fatal state
            raised.append(kafka_error(e))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if p1.flush(1) == 0:
                    break
            except KafkaException as e:
                raised.append(kafka_error(e))
        with pytest.raises(KafkaException) as info:
            p1.commit_transaction(15)
        err = kafka_error(info.value)
        print(f"zombie commit: {describe(err)}; raised by produce/flush: {[describe(e) for e in raised]}; "
              f"error_cb: {[describe(e) for e in errs1]}")
        assert err is not None and err.fatal(), f"expected a fatal error from the zombie's commit, got {describe(err)}"
        assert err.code() in FENCED_CODES, f"expected a fencing error ({sorted(FENCED_CODES)}), got {describe(err)}"
        assert all(e is not None and e.fatal() and e.code() in FENCED_CODES for e in raised), \
            [describe(e) for e in raised]

        run_transaction(p2, topic, keyed("p2-", PARTITIONS), True, "p2")
        assert not [e for e in errs2 if e.fatal()], [describe(e) for e in errs2]
    finally:
        close_quietly(p1)
        if p2 is not None:
            close_quietly(p2)

    ends = {0: 4, 1: 2, 2: 2}  # p0: zombie-0, abort, p2-0, commit; p1/p2: record, commit
    wait_stable(bootstrap, topic, ends)
    committed = read_to_end(bootstrap, topic, PARTITIONS, READ_COMMITTED, ends=ends)
    assert sorted(m.key for m in committed.msgs) == [b"p2-0", b"p2-1", b"p2-2"], view(committed.msgs)
    uncommitted = read_to_end(bootstrap, topic, PARTITIONS, READ_UNCOMMITTED, ends=ends)
    keys = sorted(m.key for m in uncommitted.msgs)
    assert keys == [b"p2-0", b"p2-1", b"p2-2", b"zombie-0"], keys
    ru = raw_fetch(bootstrap, topic, 0, 0, isolation=0)
    assert [(b.base_offset, b.control_type) for b in ru.batches if b.control] == [(1, CONTROL_ABORT), (3, CONTROL_COMMIT)], \
        ru.batches


# ---------------------------------------------------------------- d. transaction timeout


TXN_TIMEOUT_MS = 5000


def test_broker_aborts_timed_out_transaction(broker_factory):
    """A producer with transaction.timeout.ms=5000 writes 3 records to partition 0 in a
    transaction and then does nothing; an idempotent producer then writes X (offset 3).
    Before the timeout: the last stable offset is 0, the high watermark 4, and a
    read_committed consumer reaches end-of-partition at 0 without any record. Within 15 s
    the broker (cleanup interval 500 ms) aborts the transaction: the read_committed
    consumer then gets X and nothing else and ends at 5 (abort marker at 4), LSO = HW = 5,
    and the abandoned producer's commit_transaction() fails with a fencing error."""
    broker = start_broker(broker_factory, **{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"})
    bootstrap = broker.bootstrap
    topic = unique("txn-timeout")
    create_topic(bootstrap, topic, PARTITIONS)
    errors: list[KafkaError] = []
    p = txn_producer(bootstrap, unique("txn-timeout-id"), errors, **{"transaction.timeout.ms": TXN_TIMEOUT_MS})
    plain = confluent_producer(bootstrap, **{"enable.idempotence": True})
    assert_delivered(produce_confluent(plain, topic, [dict(key=b"warm-up", value=b"w", partition=2)]))
    c = confluent_consumer(bootstrap, **{"isolation.level": READ_COMMITTED, "group.id": unique("txn-timeout-reader")})
    try:
        p.init_transactions(30)
        t0 = time.monotonic()
        p.begin_transaction()
        txn = send(p, topic, keyed("T", 3, 1))
        assert p.flush(30) == 0
        assert [d.offset for d in assert_all_delivered(txn, "transactional records")] == [0, 1, 2]
        x = produce_confluent(plain, topic, [dict(key=b"X", value=b"X", partition=0)])
        assert_delivered(x)
        assert x[0].offset == 3, x

        lso = stable_offsets(bootstrap, topic, [0])[0]
        hw = high_watermarks(bootstrap, topic, [0])[0]
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        early, early_eofs = poll_window(c, 1.5)
        elapsed = time.monotonic() - t0
        if elapsed < TXN_TIMEOUT_MS / 1000 - 0.25:
            assert (lso, hw) == (0, 4), f"with the transaction open: LSO {lso}, HW {hw}; expected 0, 4"
            assert not early, f"read_committed consumer saw records of/after an open transaction: {view(early)}"
            assert early_eofs.get(0) == 0, f"read_committed end-of-partition offsets {early_eofs}, expected 0 (the LSO)"
        else:
            print(f"open-transaction checks skipped: they took {elapsed:.1f}s, past the transaction timeout")

        seen, eofs = [], {}
        deadline = t0 + TXN_TIMEOUT_MS / 1000 + 15
        while time.monotonic() < deadline and not (seen and eofs.get(0, 0) >= 5):
            got, e = poll_window(c, 0.3)
            seen += got
            eofs.update(e)
        assert view(seen) == [(3, b"X", b"X")], \
            f"after the timeout, read_committed should see X only; saw {view(seen)} (end-of-partition at {eofs})"
        assert eofs.get(0) == 5, f"read_committed end-of-partition offsets {eofs}, expected 5 (after the abort marker)"
        assert c.position([TopicPartition(topic, 0)])[0].offset == 5
        print(f"X visible {time.monotonic() - t0:.1f}s after the transaction began")
        wait_stable(bootstrap, topic, {0: 5})
        ru = raw_fetch(bootstrap, topic, 0, 0, isolation=0)
        pid = ru.batches[0].producer_id
        assert [(b.base_offset, b.control_type, b.producer_id) for b in ru.batches if b.control] == \
            [(4, CONTROL_ABORT, pid)], ru.batches

        with pytest.raises(KafkaException) as info:
            p.commit_transaction(15)
        err = kafka_error(info.value)
        print(f"commit after the timeout: {describe(err)}; error_cb: {[describe(e) for e in errors]}")
        assert err is not None and err.code() in FENCED_CODES | {KafkaError.INVALID_TXN_STATE}, \
            f"commit of a transaction the broker aborted: expected a fencing error, got {describe(err)}"
    finally:
        c.close()
        close_quietly(p)
        plain.flush(5)


# ---------------------------------------------------------------- broker restart


def test_transaction_state_survives_sigkill(broker_factory):
    """P1 commits A and aborts B (one record per partition each); P2
    (transaction.timeout.ms=8000) leaves a transaction open on partitions 0 and 1 (X). The
    broker is SIGKILLed and restarted. After recovery the aborted transaction is still
    reported to read_committed fetches, the open one still holds the last stable offset
    of partitions 0 and 1 (4) while partition 2 is stable; P1, the same producer instance,
    runs and commits C; the coordinator, reloaded, aborts P2's transaction when it times
    out. Then read_committed sees exactly A and C per partition, read_uncommitted A, B, X
    and C."""
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    topic = unique("txn-restart")
    create_topic(bootstrap, topic, PARTITIONS)
    survive = {"metadata.recovery.strategy": "none"}  # see txn_processor.py: no re-bootstrap
    p1 = txn_producer(bootstrap, unique("txn-restart-p1"), **survive)
    p2 = txn_producer(bootstrap, unique("txn-restart-p2"), **{"transaction.timeout.ms": 8000, **survive})
    try:
        p1.init_transactions(30)
        run_transaction(p1, topic, keyed("A", PARTITIONS), True, "A")
        run_transaction(p1, topic, keyed("B", PARTITIONS), False, "B")
        wait_stable(bootstrap, topic, {q: 4 for q in range(PARTITIONS)})
        p2.init_transactions(30)
        p2.begin_transaction()
        x = send(p2, topic, keyed("X", 2))
        assert p2.flush(30) == 0
        assert [(d.partition, d.offset) for d in assert_all_delivered(x, "X")] == [(0, 4), (1, 4)]
        pid1 = raw_fetch(bootstrap, topic, 2, 0, isolation=0).batches[0].producer_id

        broker.kill()
        broker.start()

        for q in (0, 1):
            rc = raw_fetch(bootstrap, topic, q, 0, isolation=1)
            assert (rc.high_watermark, rc.last_stable_offset) == (5, 4), (q, rc)
            assert rc.aborted is not None and (pid1, 2) in rc.aborted, (q, rc.aborted)
        rc = raw_fetch(bootstrap, topic, 2, 0, isolation=1)
        assert (rc.high_watermark, rc.last_stable_offset) == (4, 4), rc
        assert rc.aborted is not None and (pid1, 2) in rc.aborted, rc.aborted

        run_transaction(p1, topic, keyed("C", PARTITIONS), True, "C after the restart")
        ends = {0: 8, 1: 8, 2: 6}  # + C and its commit marker everywhere, + P2's abort marker on 0 and 1
        wait_stable(bootstrap, topic, ends, timeout=30)
    finally:
        close_quietly(p1)
        close_quietly(p2)

    committed = read_to_end(bootstrap, topic, PARTITIONS, READ_COMMITTED, ends=ends)
    uncommitted = read_to_end(bootstrap, topic, PARTITIONS, READ_UNCOMMITTED, ends=ends)
    for q in range(PARTITIONS):
        keys = [m.key for m in committed.by_partition().get(q, [])]
        assert keys == [f"A{q}".encode(), f"C{q}".encode()], (q, keys)
        keys = [m.key for m in uncommitted.by_partition().get(q, [])]
        assert keys == [f"A{q}".encode(), f"B{q}".encode()] + ([f"X{q}".encode()] if q < 2 else []) + [f"C{q}".encode()], \
            (q, keys)
    assert committed.positions == ends, committed.positions


# ---------------------------------------------------------------- offsets in transactions


def test_send_offsets_commit_only_with_the_transaction(broker_factory):
    """send_offsets_to_transaction (AddOffsetsToTxn + TxnOffsetCommit) for a group with no
    members (generation -1): an aborted transaction leaves the group's offsets unchanged;
    while a transaction is open its offsets are not visible (OffsetFetch without
    require_stable); once it commits they are."""
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    inp, out = unique("txn-offsets-in"), unique("txn-offsets-out")
    create_topic(bootstrap, inp, PARTITIONS)
    create_topic(bootstrap, out, PARTITIONS)
    assert_delivered(produce_confluent(confluent_producer(bootstrap), inp, keyed("in", 30)))
    group = unique("txn-offsets-group")
    meta_consumer = confluent_consumer(bootstrap, **{"group.id": group})
    a = admin(bootstrap)

    def group_offsets() -> dict[int, int]:
        res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(inp, q) for q in range(PARTITIONS)])],
                                            request_timeout=10)[group].result(timeout=15)
        return {tp.partition: tp.offset for tp in res.topic_partitions if tp.offset >= 0}

    p = txn_producer(bootstrap, unique("txn-offsets-id"))
    try:
        p.init_transactions(30)
        md = meta_consumer.consumer_group_metadata()

        p.begin_transaction()
        send(p, out, keyed("aborted", 3))
        p.send_offsets_to_transaction([TopicPartition(inp, 0, 5), TopicPartition(inp, 1, 3)], md, 30)
        p.abort_transaction(30)
        assert group_offsets() == {}, "offsets of an aborted transaction were committed"

        p.begin_transaction()
        send(p, out, keyed("committed", 3))
        p.send_offsets_to_transaction([TopicPartition(inp, 0, 7), TopicPartition(inp, 1, 4)], md, 30)
        assert p.flush(30) == 0
        assert group_offsets() == {}, "offsets of an open transaction are visible"
        p.commit_transaction(30)
        wait_until(lambda: group_offsets() == {0: 7, 1: 4}, 10, "the transaction's offsets to be committed")

        p.begin_transaction()
        p.send_offsets_to_transaction([TopicPartition(inp, 0, 9)], md, 30)  # offsets only, no records
        p.commit_transaction(30)
        wait_until(lambda: group_offsets() == {0: 9, 1: 4}, 10, "the offsets-only transaction to be committed")
    finally:
        close_quietly(p)
        meta_consumer.close()
    ends = high_watermarks(bootstrap, out, PARTITIONS)
    committed = read_to_end(bootstrap, out, PARTITIONS, READ_COMMITTED, ends=ends)
    assert sorted(m.key for m in committed.msgs) == sorted(f"committed{i}".encode() for i in range(3))


# ---------------------------------------------------------------- e. kafka-python


def test_kafka_python_transactional_producer(broker_factory):
    """kafka-python's KafkaProducer(transactional_id=...): init_transactions, then A
    (commit), B (abort, flushed first), C (commit), 6 records each. A confluent-kafka
    read_committed consumer sees A and C in order per partition, read_uncommitted sees A,
    B, C; a kafka-python read_committed consumer sees A and C too."""
    from kafka import KafkaProducer
    from kafka import TopicPartition as KTP

    if not all(hasattr(KafkaProducer, f) for f in ("init_transactions", "begin_transaction", "commit_transaction",
                                                   "abort_transaction")):
        pytest.skip("this kafka-python has no transactional producer API")
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    topic = unique("txn-kp")
    create_topic(bootstrap, topic, PARTITIONS)
    kp = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique("txn-kp-id"), enable_idempotence=True,
                       acks="all", linger_ms=5, max_block_ms=30000, request_timeout_ms=15000)
    expected: dict[str, dict[int, list[tuple[int, bytes, bytes]]]] = {}
    try:
        call_with_timeout(kp.init_transactions, 45, "kafka-python init_transactions")
        for tag, commit in (("A", True), ("B", False), ("C", True)):
            kp.begin_transaction()
            items = keyed(tag, 2 * PARTITIONS)
            futures = [kp.send(topic, key=it["key"], value=it["value"], partition=it["partition"]) for it in items]
            call_with_timeout(lambda: kp.flush(timeout=30), 35, f"kafka-python flush of {tag}")
            for it, f in zip(items, futures):
                md = f.get(timeout=30)
                expected.setdefault(tag, {}).setdefault(md.partition, []).append((md.offset, it["key"], it["value"]))
            call_with_timeout(kp.commit_transaction if commit else kp.abort_transaction, 45,
                              f"kafka-python {'commit' if commit else 'abort'} of {tag}")
    finally:
        call_with_timeout(lambda: kp.close(timeout=10), 20, "kafka-python close")

    ends = {part: 9 for part in range(PARTITIONS)}  # 2 records + 1 marker per transaction
    for tag, per_part in expected.items():
        for part, recs in per_part.items():
            assert len(recs) == 2, (tag, part, recs)
    wait_stable(bootstrap, topic, ends)
    committed = read_to_end(bootstrap, topic, PARTITIONS, READ_COMMITTED, ends=ends)
    uncommitted = read_to_end(bootstrap, topic, PARTITIONS, READ_UNCOMMITTED, ends=ends)
    for part in range(PARTITIONS):
        assert view(committed.by_partition().get(part, [])) == expected["A"][part] + expected["C"][part], part
        assert view(uncommitted.by_partition().get(part, [])) == \
            expected["A"][part] + expected["B"][part] + expected["C"][part], part
    assert committed.positions == ends, committed.positions

    c = kp_consumer(bootstrap, isolation_level="read_committed")
    try:
        tps = [KTP(topic, part) for part in range(PARTITIONS)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got: dict[int, list[tuple[int, bytes, bytes]]] = {}
        want = 4 * PARTITIONS
        deadline = time.monotonic() + 20
        settle_until = None
        while time.monotonic() < deadline:
            for _tp, records in c.poll(timeout_ms=200).items():
                for r in records:
                    got.setdefault(r.partition, []).append((r.offset, r.key, r.value))
            if settle_until is None and sum(len(v) for v in got.values()) >= want:
                settle_until = time.monotonic() + 1.0  # anything more would be an aborted record
            if settle_until is not None and time.monotonic() >= settle_until:
                break
        for part in range(PARTITIONS):
            assert got.get(part, []) == expected["A"][part] + expected["C"][part], f"kafka-python read_committed, {part}"
    finally:
        c.close()


# ---------------------------------------------------------------- f. admin


def test_list_offsets_by_isolation_level(broker_factory):
    """AdminClient.list_offsets(latest) with READ_COMMITTED is the last stable offset: with
    a transaction open on partitions 0 and 1 (after a committed one) it is the open
    transaction's first offset there and the high watermark on partition 2; after the
    commit it equals the high watermark everywhere."""
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    topic = unique("txn-lso")
    create_topic(bootstrap, topic, PARTITIONS)
    p = txn_producer(bootstrap, unique("txn-lso-id"))
    try:
        p.init_transactions(30)
        run_transaction(p, topic, keyed("A", 2 * PARTITIONS), True, "A")  # 2 records + marker per partition
        wait_stable(bootstrap, topic, {q: 3 for q in range(PARTITIONS)})
        p.begin_transaction()
        results = send(p, topic, [dict(key=b"o0", value=b"o", partition=0), dict(key=b"o1", value=b"o", partition=1),
                                  dict(key=b"o1b", value=b"o", partition=1)])
        assert p.flush(30) == 0
        assert [(d.partition, d.offset) for d in assert_all_delivered(results)] == [(0, 3), (1, 3), (1, 4)]
        assert high_watermarks(bootstrap, topic, PARTITIONS) == {0: 4, 1: 5, 2: 3}
        assert stable_offsets(bootstrap, topic, PARTITIONS) == {0: 3, 1: 3, 2: 3}
        p.commit_transaction(30)
    finally:
        close_quietly(p)
    wait_stable(bootstrap, topic, {0: 5, 1: 6, 2: 3})


def _open_and_completed_transactions(bootstrap: str, topic: str):
    """An open transaction (partitions 0 and 1, timeout 45 s) and a committed one; returns
    (open id, its producer id, committed id, the open producer) — the caller closes it."""
    open_id, done_id = unique("txn-open"), unique("txn-done")
    done = txn_producer(bootstrap, done_id)
    try:
        done.init_transactions(30)
        run_transaction(done, topic, keyed("done", 2, 1), True, "completed transaction")
    finally:
        close_quietly(done)
    p = txn_producer(bootstrap, open_id, **{"transaction.timeout.ms": 45000})
    p.init_transactions(30)
    p.begin_transaction()
    results = send(p, topic, [dict(key=b"o0", value=b"o", partition=0), dict(key=b"o1", value=b"o", partition=1)])
    assert p.flush(30) == 0
    assert_all_delivered(results, "the open transaction's records")
    batches = raw_fetch(bootstrap, topic, 1, 0, isolation=0).batches
    assert batches and batches[0].transactional, batches
    return open_id, batches[0].producer_id, done_id, p


def test_admin_client_transaction_apis(broker_factory):
    """confluent-kafka's AdminClient calls for transactions, where this version has them
    (2.16.1 has none of list_transactions, describe_transactions, describe_producers)."""
    names = [n for n in ("list_transactions", "describe_transactions", "describe_producers") if hasattr(AdminClient, n)]
    if not names:
        pytest.skip("confluent-kafka's AdminClient has no list_transactions/describe_transactions/describe_producers; "
                    "the broker side is covered by the hand-built requests of the tests below")
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    topic = unique("txn-admin")
    create_topic(bootstrap, topic, PARTITIONS)
    open_id, _pid, _done_id, p = _open_and_completed_transactions(bootstrap, topic)
    try:
        a = admin(bootstrap)
        # Generic checks that hold whatever shape the results take: the open transaction's id
        # is in what list_transactions and describe_transactions return.
        if "list_transactions" in names:
            res = a.list_transactions(request_timeout=10).result(timeout=15)
            assert open_id in repr(res) or open_id in str(res), res
        if "describe_transactions" in names:
            res = a.describe_transactions([open_id], request_timeout=10)
            res = {k: f.result(timeout=15) for k, f in res.items()} if isinstance(res, dict) else res.result(timeout=15)
            assert "ongoing" in repr(res).lower() or "ongoing" in str(res).lower(), res
        if "describe_producers" in names:
            res = a.describe_producers([TopicPartition(topic, 0)], request_timeout=10)
            res = {k: f.result(timeout=15) for k, f in res.items()} if isinstance(res, dict) else res.result(timeout=15)
            assert res, res
    finally:
        close_quietly(p)


def _require_api(bootstrap: str, key: int, name: str) -> None:
    apis = api_versions(bootstrap)
    if key not in apis or apis[key][0] > 0:
        pytest.skip(f"the broker does not advertise {name} v0 (ApiVersions: {apis.get(key)})")


def test_list_and_describe_transactions_by_hand(broker_factory):
    """ListTransactions v0 and DescribeTransactions v0 (KIP-664), sent by hand: an open
    transaction is listed as Ongoing with its producer id, a committed one as
    CompleteCommit; a state filter selects; DescribeTransactions gives the open one's
    timeout, start time, producer id and partitions, and TRANSACTIONAL_ID_NOT_FOUND for an
    unknown id."""
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    _require_api(bootstrap, API_LIST_TRANSACTIONS, "ListTransactions")
    _require_api(bootstrap, API_DESCRIBE_TRANSACTIONS, "DescribeTransactions")
    topic = unique("txn-describe")
    create_topic(bootstrap, topic, PARTITIONS)
    before = int(time.time() * 1000)
    open_id, pid, done_id, p = _open_and_completed_transactions(bootstrap, topic)
    try:
        error, txns = list_transactions_v0(bootstrap)
        assert error == 0
        listed = {t.transactional_id: t for t in txns}
        assert open_id in listed and listed[open_id].state == "Ongoing" and listed[open_id].producer_id == pid, txns
        assert done_id in listed and listed[done_id].state == "CompleteCommit", txns
        error, ongoing = list_transactions_v0(bootstrap, ["Ongoing"])
        assert error == 0
        ids = {t.transactional_id for t in ongoing}
        assert open_id in ids and done_id not in ids, ongoing

        unknown = unique("txn-unknown")
        described = {d.transactional_id: d for d in describe_transactions_v0(bootstrap, [open_id, done_id, unknown])}
        d = described[open_id]
        assert (d.error_code, d.state, d.timeout_ms, d.producer_id) == (0, "Ongoing", 45000, pid), d
        assert before - 5000 <= d.start_time_ms <= int(time.time() * 1000) + 5000, d
        assert {t: sorted(ps) for t, ps in d.partitions.items()} == {topic: [0, 1]}, d
        d = described[done_id]
        assert (d.error_code, d.state) == (0, "CompleteCommit"), d
        assert not any(d.partitions.values()), d
        assert described[unknown].error_code == ERR_TRANSACTIONAL_ID_NOT_FOUND, described[unknown]
    finally:
        close_quietly(p)


def test_describe_producers_by_hand(broker_factory):
    """DescribeProducers v0 (KIP-664), sent by hand: on partition 0 the open transaction's
    producer is active with current_txn_start_offset = its first offset there; the
    idempotent producer that wrote 5 records to partition 2 is active with last sequence 4
    and no transaction."""
    broker = start_broker(broker_factory)
    bootstrap = broker.bootstrap
    _require_api(bootstrap, API_DESCRIBE_PRODUCERS, "DescribeProducers")
    topic = unique("txn-producers")
    create_topic(bootstrap, topic, PARTITIONS)
    assert_delivered(produce_confluent(confluent_producer(bootstrap, **{"enable.idempotence": True}), topic,
                                       [dict(key=b"i", value=str(i).encode(), partition=2) for i in range(5)]))
    open_id, pid, done_id, p = _open_and_completed_transactions(bootstrap, topic)
    try:
        # partition 0: done-0, done-1, commit marker, then the open transaction's o0 at 3
        res = describe_producers_v0(bootstrap, topic, [0, 1, 2])
        error, producers = res[0]
        assert error == 0, res[0]
        mine = [q for q in producers if q.producer_id == pid]
        assert len(mine) == 1 and mine[0].current_txn_start_offset == 3, producers
        error, producers = res[2]
        assert error == 0
        assert len(producers) == 1, producers
        assert (producers[0].last_sequence, producers[0].current_txn_start_offset) == (4, -1), producers[0]
    finally:
        close_quietly(p)
