"""Consumer groups (the classic protocol: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups,
OffsetDelete) with real clients.

Each confluent-kafka member polls in its own thread (`Member.step()` consumes one batch,
records it as processed, then commits the next offsets synchronously); a member that must
die without leaving runs the same code in a subprocess (`python test_groups.py member
...`) and prints JSON lines. Each kafka-python consumer also runs in its own thread
(`KPWorker`). Brokers start with
`group.initial.rebalance.delay.ms=0`, except in the test of Kafka's default 3000 ms delay.
Every wait is bounded.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from gregor_support import FAST_RECONNECT, admin, assert_delivered, confluent_producer, create_topic, produce_confluent
from gregor_wire import RawConnection, api_versions_request, frame, parse_api_versions, request_header, string

HERE = Path(__file__).resolve().parent
GROUP_SETS = {"group.initial.rebalance.delay.ms": "0"}

API_OFFSET_DELETE = 47
ERR_NONE = 0
ERR_INVALID_SESSION_TIMEOUT = 26
ERR_NON_EMPTY_GROUP = 68
ERR_GROUP_ID_NOT_FOUND = 69
ERR_GROUP_SUBSCRIBED_TO_TOPIC = 86

# librdkafka member defaults of these tests: fast heartbeats so that rebalances are
# noticed within half a second; a rebalance timeout (max.poll.interval.ms) short enough
# that a stuck rebalance fails the test instead of hanging it.
MEMBER_CONF = {
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 20000,
    "fetch.wait.max.ms": 100,
    "enable.partition.eof": False,
    **FAST_RECONNECT,
}


# ---------------------------------------------------------------- small helpers


def wait_until(pred, timeout: float, what: str, interval: float = 0.05, tick=None):
    """Calls `tick()` (if any) and `pred()` until pred is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        if tick is not None:
            tick()
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        if tick is None:
            time.sleep(interval)


def start_group_broker(broker_factory, name: str = "broker", **sets):
    return broker_factory(name).start(sets={**GROUP_SETS, **{k: str(v) for k, v in sets.items()}})


def produce_keyed(bootstrap: str, topic: str, start: int, n: int, producer=None,
                  **conf) -> dict[tuple[int, int], tuple[bytes, bytes]]:
    """Produces keys k<i>/values v<i> for i in [start, start+n); returns {(partition, offset): (key, value)}."""
    items = [dict(key=f"k{i}".encode(), value=f"v{i}".encode()) for i in range(start, start + n)]
    deliveries = produce_confluent(producer or confluent_producer(bootstrap, **conf), topic, items)
    assert_delivered(deliveries)
    return {(d.partition, d.offset): (it["key"], it["value"]) for d, it in zip(deliveries, items)}


def kp_admin(bootstrap: str):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets, by kafka-python's KafkaAdminClient (OffsetFetch)."""
    a = kp_admin(bootstrap)
    try:
        return {(tp.topic, tp.partition): om.offset for tp, om in a.list_consumer_group_offsets(group).items()}
    finally:
        a.close()


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "gregor-tests-watermarks", **FAST_RECONNECT})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


# The confluent-kafka AdminClient must outlive its futures (a temporary one is destroyed
# before they complete), hence the local variables below.


def group_listing(bootstrap: str) -> dict[str, object]:
    """confluent-kafka ListGroups: {group_id: ConsumerGroupState}."""
    a = admin(bootstrap)
    res = a.list_consumer_groups(request_timeout=10).result(timeout=15)
    assert not res.errors, res.errors
    return {g.group_id: g.state for g in res.valid}


def describe_group(bootstrap: str, group: str):
    a = admin(bootstrap)
    return a.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)


def assert_exactly_once(records: list[tuple[int, int, bytes, bytes]], produced: dict) -> None:
    seen: dict[tuple[int, int], int] = {}
    for p, o, _, _ in records:
        seen[(p, o)] = seen.get((p, o), 0) + 1
    dups = sorted(k for k, n in seen.items() if n > 1)
    assert not dups, f"{len(dups)} records processed more than once, e.g. {dups[:10]}"
    missing = sorted(set(produced) - set(seen))
    assert not missing, f"{len(missing)} of {len(produced)} records never processed, e.g. {missing[:10]}"
    extra = sorted(set(seen) - set(produced))
    assert not extra, f"processed records that were not produced: {extra[:10]}"
    for p, o, k, v in records:
        assert (k, v) == produced[(p, o)], ((p, o), (k, v), produced[(p, o)])


# ---------------------------------------------------------------- a confluent-kafka member


class Member:
    """One confluent-kafka group member with manual, synchronous commits, polled by its own
    thread as an application would (one consumer per thread: a synchronous commit may wait
    behind the member's JoinGroup on the coordinator connection, which completes only when
    every other member has rejoined, so members must not share a polling thread).

    `step()` consumes one batch, records every message of a partition the member owns as
    processed, and commits (partition, last offset + 1) synchronously. A failed commit
    (e.g. ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS around a rebalance) stays pending and is
    retried by the next step; `on_revoke` commits what is pending for the revoked partitions
    before giving them up, as a real application would. The test's thread only reads the
    member's state (under `lock`), never calls the consumer while the thread runs."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str, emit=None, threaded: bool = True, **conf):
        self.name = name
        self.topic = topic
        self.emit = emit
        self.lock = threading.Lock()
        self.records: list[tuple[int, int, bytes, bytes]] = []
        self.times: list[float] = []  # when each record was processed (monotonic)
        self.events: list[tuple[float, str, list[int]]] = []
        self.owned: set[int] = set()
        self.last_assignment: set[int] = set()  # Consumer.assignment() after the last step
        self.pending: dict[int, int] = {}
        self.commit_errors: list[str] = []
        self.slow_commits: list[tuple[float, float, list[int]]] = []  # (start, seconds, partitions)
        self.errors: list[KafkaError] = []
        self.discarded = 0
        self.closed = False
        self.failure: BaseException | None = None
        base = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name, **MEMBER_CONF,
                "error_cb": self._on_error}
        base.update(conf)
        self.c = Consumer(base)
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._stop = threading.Event()
        self._thread = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name=f"member-{name}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step()
        except BaseException as e:  # reported by poke()
            self.failure = e

    # rebalance callbacks (run inside consume()/close())
    def _event(self, kind: str, parts: list[int]) -> None:
        with self.lock:
            self.events.append((time.monotonic(), kind, parts))
        if self.emit:
            self.emit({"ev": kind, "parts": parts})

    def _on_assign(self, c, parts) -> None:
        ps = sorted(p.partition for p in parts)
        with self.lock:
            self.owned |= set(ps)
        self._event("assign", ps)

    def _on_revoke(self, c, parts) -> None:
        ps = sorted(p.partition for p in parts)
        self.commit_pending(set(ps))
        with self.lock:
            for p in ps:
                self.pending.pop(p, None)
            self.owned -= set(ps)
        self._event("revoke", ps)

    def _on_lost(self, c, parts) -> None:
        ps = sorted(p.partition for p in parts)
        with self.lock:
            for p in ps:
                self.pending.pop(p, None)
            self.owned -= set(ps)
        self._event("lost", ps)

    def _on_error(self, err) -> None:
        with self.lock:
            self.errors.append(err)
        if self.emit:
            self.emit({"ev": "error", "code": err.code(), "str": err.str()})

    # polling (the member's thread, or the caller when not threaded)
    def step(self, timeout: float = 0.05) -> int:
        msgs = self.c.consume(500, timeout)
        batch = []
        errors = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    errors.append(err)
                    if self.emit:
                        self.emit({"ev": "error", "code": err.code(), "str": err.str()})
                continue
            if m.partition() not in self.owned:  # fetched before a revoke: not ours to process
                self.discarded += 1
                continue
            batch.append((m.partition(), m.offset(), m.key(), m.value()))
        with self.lock:
            self.errors.extend(errors)
            for p, o, _, _ in batch:
                self.pending[p] = o + 1
            self.records.extend(batch)
            self.times.extend([time.monotonic()] * len(batch))
        if batch and self.emit:
            self.emit({"ev": "records", "recs": [[p, o, k.decode(), v.decode()] for p, o, k, v in batch]})
        self.commit_pending()
        assignment = {tp.partition for tp in self.c.assignment()}
        with self.lock:
            self.last_assignment = assignment
        return len(batch)

    def commit_pending(self, only: set[int] | None = None) -> bool:
        with self.lock:
            todo = {p: o for p, o in self.pending.items() if only is None or p in only}
        if not todo:
            return True
        t0 = time.monotonic()
        try:
            self.c.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in sorted(todo.items())],
                          asynchronous=False)
        except KafkaException as e:
            with self.lock:
                self.commit_errors.append(f"{e} (after {time.monotonic() - t0:.2f}s)")
            if self.emit:
                self.emit({"ev": "commit_error", "str": str(e)})
            return False
        finally:
            if time.monotonic() - t0 > 1.0:
                with self.lock:
                    self.slow_commits.append((t0, round(time.monotonic() - t0, 2), sorted(todo)))
        with self.lock:
            for p, o in todo.items():
                if self.pending.get(p) == o:
                    del self.pending[p]
        return True

    # the test's view
    def poke(self) -> None:
        if self.failure is not None:
            raise AssertionError(f"member {self.name}'s thread failed: {self.failure!r}") from self.failure
        if self._thread is None and not self.closed:
            self.step()

    def assignment(self) -> set[int]:
        """What Consumer.assignment() returned after the last step, when it agrees with the
        on_assign/on_revoke bookkeeping (else the empty set: mid-rebalance)."""
        with self.lock:
            return set(self.last_assignment) if self.last_assignment == self.owned else set()

    def processed(self) -> list[tuple[int, int, bytes, bytes]]:
        with self.lock:
            return list(self.records)

    def has_pending(self) -> bool:
        with self.lock:
            return bool(self.pending)

    def history(self) -> list[tuple[float, str, list[int]]]:
        with self.lock:
            return list(self.events)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._thread is not None:
            self._stop.set()
            self._thread.join(30)
            assert not self._thread.is_alive(), f"member {self.name}'s thread did not stop"
        self.c.close()  # on_revoke (commits) runs here, on the test's thread

    def __repr__(self) -> str:
        return f"Member({self.name}, owned={sorted(self.owned)}, records={len(self.records)})"


def step_all(members) -> None:
    """Checks threaded members, steps the others (ProcMember reads its output)."""
    for m in members:
        if not getattr(m, "closed", False):
            m.poke()
    time.sleep(0.02)


def balanced(members, partitions: int):
    """The members' assignments when they are disjoint, cover every partition, and each
    member has partitions//n or partitions//n + 1 of them; else None."""
    sets = [m.assignment() for m in members]
    union = set().union(*sets)
    if sum(len(s) for s in sets) != partitions or union != set(range(partitions)):
        return None
    lo = partitions // len(members)
    if not all(lo <= len(s) <= lo + (1 if partitions % len(members) else 0) for s in sets):
        return None
    return sets


def settle(members, partitions: int, timeout: float = 30.0):
    return wait_until(lambda: balanced(members, partitions), timeout,
                      f"a balanced assignment of {partitions} partitions over {members}", tick=lambda: step_all(members))


def drain(members, produced: dict, timeout: float = 30.0, also=()) -> None:
    """Waits until every produced record was processed by `members` or by `also` (members
    closed or killed earlier), then until no commit is pending."""
    def done():
        got = {(p, o) for m in [*members, *also] for p, o, _, _ in m.processed()}
        return set(produced) <= got

    wait_until(done, timeout, f"all {len(produced)} records processed by {members}", tick=lambda: step_all(members))
    # let every commit of the last batches go through
    wait_until(lambda: all(not m.has_pending() for m in members if not m.closed), 10, "pending commits",
               tick=lambda: step_all(members))


def all_records(members) -> list:
    return [r for m in members for r in m.processed()]


# ---------------------------------------------------------------- a member in a subprocess


def member_process_main(argv: list[str]) -> None:
    """`python test_groups.py member <bootstrap> <group> <topic> <name> <json conf>`: a
    Member printing its events as JSON lines until it is killed."""
    bootstrap, group, topic, name, conf = argv
    lock = threading.Lock()

    def emit(obj):
        with lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    m = Member(name, bootstrap, group, topic, emit=emit, threaded=False, **json.loads(conf))
    emit({"ev": "started"})
    while True:
        m.step(0.1)


class ProcMember:
    """The test's view of a Member running in a subprocess (stdout to a file)."""

    def __init__(self, tmp_path: Path, name: str, bootstrap: str, group: str, topic: str, **conf):
        self.name = name
        self.closed = False
        self.out_path = tmp_path / f"{name}.stdout"
        self.err_path = tmp_path / f"{name}.stderr"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.out_path, "wb") as o, open(self.err_path, "wb") as e:
            self.proc = subprocess.Popen([sys.executable, str(HERE / "test_groups.py"), "member", bootstrap, group, topic,
                                          name, json.dumps(conf)], stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                                         cwd=tmp_path, env=env)
        self._pos = 0
        self._buf = ""
        self.owned: set[int] = set()
        self.records: list[tuple[int, int, bytes, bytes]] = []
        self.events: list[dict] = []
        self.pending: dict[int, int] = {}  # its commits are its own business

    def step(self) -> int:
        with open(self.out_path, "r") as f:
            f.seek(self._pos)
            chunk = f.read()
            self._pos = f.tell()
        self._buf += chunk
        *lines, self._buf = self._buf.split("\n")
        n = 0
        for line in lines:
            ev = json.loads(line)
            self.events.append(ev)
            kind = ev["ev"]
            if kind == "assign":
                self.owned |= set(ev["parts"])
            elif kind in ("revoke", "lost"):
                self.owned -= set(ev["parts"])
            elif kind == "records":
                for p, o, k, v in ev["recs"]:
                    self.records.append((p, o, k.encode(), v.encode()))
                    n += 1
        if self.proc.poll() is not None and not self.closed:
            raise AssertionError(f"member process {self.name} exited {self.proc.returncode}:\n"
                                 f"{self.err_path.read_text(errors='replace')[-3000:]}")
        return n

    poke = step

    def assignment(self) -> set[int]:
        return set(self.owned)

    def processed(self) -> list[tuple[int, int, bytes, bytes]]:
        return list(self.records)

    def has_pending(self) -> bool:
        return False

    def kill(self) -> None:
        self.step()
        self.closed = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __repr__(self) -> str:
        return f"ProcMember({self.name}, owned={sorted(self.owned)}, records={len(self.records)})"


# ---------------------------------------------------------------- kafka-python in a thread


class KPWorker(threading.Thread):
    """A kafka-python KafkaConsumer polled by its own thread. `call(fn)` runs fn(consumer)
    on that thread between polls and returns its result."""

    def __init__(self, name: str, bootstrap: str, group: str, topics: list[str], **conf):
        super().__init__(name=f"kp-{name}", daemon=True)
        self.client_name = name
        self.conf = dict(bootstrap_servers=bootstrap, group_id=group, client_id=name, enable_auto_commit=False,
                         auto_offset_reset="earliest", fetch_max_wait_ms=100, heartbeat_interval_ms=300,
                         session_timeout_ms=6000, max_poll_interval_ms=20000, request_timeout_ms=30000)
        self.conf.update(conf)
        self.topics = topics
        self.records: list[tuple[int, int, bytes, bytes]] = []
        self.calls: queue.Queue = queue.Queue()
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None
        self._assignment: set[int] = set()
        self.started_ok = threading.Event()
        self.start()

    def run(self) -> None:
        from kafka import KafkaConsumer

        c = None
        try:
            c = KafkaConsumer(*self.topics, **self.conf)
            self.started_ok.set()
            while not self.stop_flag.is_set():
                while True:
                    try:
                        fn, fut = self.calls.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        fut.set_result(fn(c))
                    except BaseException as e:  # handed to the caller
                        fut.set_exception(e)
                batches = c.poll(timeout_ms=100)
                for tp, recs in batches.items():
                    for r in recs:
                        self.records.append((r.partition, r.offset, r.key, r.value))
                self._assignment = {tp.partition for tp in c.assignment()}
        except BaseException as e:
            self.error = e
            self.started_ok.set()
        finally:
            while True:  # fail whoever still waits for a call
                try:
                    _, fut = self.calls.get_nowait()
                except queue.Empty:
                    break
                fut.set_exception(RuntimeError(f"worker {self.client_name} stopped: {self.error!r}"))
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass

    def call(self, fn, timeout: float = 20.0):
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self.calls.put((fn, fut))
        return fut.result(timeout)

    def poke(self) -> None:
        if self.error is not None:
            raise AssertionError(f"kafka-python worker {self.client_name} failed: {self.error!r}")

    def assignment(self) -> set[int]:
        self.poke()
        return set(self._assignment)

    def processed(self) -> list[tuple[int, int, bytes, bytes]]:
        return list(self.records)

    def stop(self, timeout: float = 20.0) -> None:
        self.stop_flag.set()
        self.join(timeout)
        assert not self.is_alive(), f"kafka-python worker {self.client_name} did not stop within {timeout}s"

    def __repr__(self) -> str:
        return f"KPWorker({self.client_name}, assignment={sorted(self._assignment)}, records={len(self.records)})"


# ---------------------------------------------------------------- OffsetDelete by hand


def offset_delete_v0(correlation_id: int, group: str, topics: dict[str, list[int]]) -> bytes:
    body = string(group) + struct.pack(">i", len(topics))
    for name, parts in topics.items():
        body += string(name) + struct.pack(">i", len(parts)) + b"".join(struct.pack(">i", p) for p in parts)
    return frame(request_header(API_OFFSET_DELETE, 0, correlation_id) + body)


def parse_offset_delete_v0(payload: bytes) -> tuple[int, int, dict[str, dict[int, int]]]:
    """(correlation id, top-level error, {topic: {partition: error}})."""
    corr, error, _throttle, n = struct.unpack_from(">ihii", payload, 0)
    pos = 14
    out: dict[str, dict[int, int]] = {}
    for _ in range(n):
        (ln,) = struct.unpack_from(">h", payload, pos)
        pos += 2
        name = payload[pos:pos + ln].decode()
        pos += ln
        (np_,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        parts = {}
        for _ in range(np_):
            p, e = struct.unpack_from(">ih", payload, pos)
            pos += 6
            parts[p] = e
        out[name] = parts
    assert pos == len(payload), f"{len(payload) - pos} trailing bytes in the OffsetDelete response"
    return corr, error, out


def offset_delete(bootstrap: str, group: str, topics: dict[str, list[int]]):
    with RawConnection(bootstrap) as conn:
        corr, error, parts = parse_offset_delete_v0(conn.request(offset_delete_v0(7, group, topics)))
    assert corr == 7
    return error, parts


# ================================================================ tests


def test_three_members_leave_exactly_once(broker_factory):
    """3 members on 6 partitions: disjoint balanced assignment, 300 records once; one
    member closes (LeaveGroup) while records are in flight; the other two take over its
    partitions and 300 more records are processed, none lost, none twice."""
    broker = start_group_broker(broker_factory)
    topic, group, parts = "g-leave", "g-leave", 6
    create_topic(broker.bootstrap, topic, parts)
    members = [Member(n, broker.bootstrap, group, topic) for n in ("a", "b", "c")]
    try:
        sets = settle(members, parts)
        assert all(len(s) == 2 for s in sets), sets

        produced = produce_keyed(broker.bootstrap, topic, 0, 300)
        assert {p for p, _ in produced} == set(range(parts)), "keyed records should reach every partition"
        drain(members, produced)
        for m, s in zip(members, sets):
            assert {p for p, _, _, _ in m.processed()} <= s, (m, s)
        assert_exactly_once(all_records(members), produced)
        assert committed_offsets(broker.bootstrap, group) == {
            (topic, p): o for p, o in end_offsets(broker.bootstrap, topic, parts).items()}

        # 100 records in flight while "c" leaves, 200 more after the takeover.
        more = produce_keyed(broker.bootstrap, topic, 300, 100)
        step_all(members)
        leaver = members[2]
        t0 = time.monotonic()
        leaver.close()
        stayers = members[:2]
        sets2 = settle(stayers, parts, timeout=15)
        took = time.monotonic() - t0
        assert all(len(s) == 3 for s in sets2), sets2
        more.update(produce_keyed(broker.bootstrap, topic, 400, 200))
        produced.update(more)
        drain(stayers, produced, also=[leaver])
        assert_exactly_once(all_records(members), produced)
        assert committed_offsets(broker.bootstrap, group) == {
            (topic, p): o for p, o in end_offsets(broker.bootstrap, topic, parts).items()}
        d = describe_group(broker.bootstrap, group)
        assert d.state == ConsumerGroupState.STABLE and len(d.members) == 2, d
        print(f"takeover after leave: {took:.2f}s; commit errors: {[m.commit_errors for m in members]}")
    finally:
        for m in members:
            m.close()


def test_killed_member_expires_after_session_timeout(broker_factory, tmp_path):
    """A member SIGKILLed without LeaveGroup: its partitions move to the others once its
    session (6 s) expires, within 20 s; nothing lost or processed twice."""
    broker = start_group_broker(broker_factory)
    topic, group, parts = "g-kill", "g-kill", 6
    create_topic(broker.bootstrap, topic, parts)
    victim = ProcMember(tmp_path, "victim", broker.bootstrap, group, topic)
    members = [Member(n, broker.bootstrap, group, topic) for n in ("a", "b")]
    everyone = [*members, victim]
    try:
        sets = settle(everyone, parts)
        assert all(len(s) == 2 for s in sets), sets
        produced = produce_keyed(broker.bootstrap, topic, 0, 300)
        drain(everyone, produced)
        assert {p for p, _, _, _ in victim.processed()} == sets[2]
        # everything the victim processed is committed before it dies: a kill now loses nothing
        wait_until(lambda: committed_offsets(broker.bootstrap, group) == {
            (topic, p): o for p, o in end_offsets(broker.bootstrap, topic, parts).items()}, 10,
            "all offsets committed", tick=lambda: step_all(members))

        victim.kill()
        t0 = time.monotonic()
        sets2 = settle(members, parts, timeout=20)
        took = time.monotonic() - t0
        assert all(len(s) == 3 for s in sets2), sets2
        # Kafka keeps the dead member until its session times out: not much before 6 s.
        assert took >= 3.0, f"partitions of the killed member moved after {took:.2f}s, before its 6 s session expired"
        produced.update(produce_keyed(broker.bootstrap, topic, 300, 300))
        drain(members, produced, also=[victim])
        assert_exactly_once(all_records(everyone), produced)
        d = describe_group(broker.bootstrap, group)
        assert d.state == ConsumerGroupState.STABLE and sorted(mm.client_id for mm in d.members) == ["a", "b"], d
        print(f"takeover after SIGKILL: {took:.2f}s")
    finally:
        victim.cleanup()
        for m in members:
            m.close()


@pytest.mark.parametrize("strategy", ["range", "roundrobin"])
def test_kafka_python_group(broker_factory, strategy):
    """kafka-python: 2 members on 4 partitions with the range or the roundrobin assignor,
    balanced; every record once; commit() then committed(); ListGroups/DescribeGroups."""
    from kafka import TopicPartition as KTP
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignor = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[strategy]
    broker = start_group_broker(broker_factory)
    topic, group, parts = "kp-group", f"kp-{strategy}", 4
    create_topic(broker.bootstrap, topic, parts)
    workers = [KPWorker(n, broker.bootstrap, group, [topic], partition_assignment_strategy=[assignor])
               for n in ("kp-a", "kp-b")]
    try:
        sets = wait_until(lambda: balanced(workers, parts), 30, f"balanced assignment of {workers}")
        expected = {"range": {frozenset({0, 1}), frozenset({2, 3})},
                    "roundrobin": {frozenset({0, 2}), frozenset({1, 3})}}[strategy]
        assert {frozenset(s) for s in sets} == expected, sets

        a = kp_admin(broker.bootstrap)
        try:
            assert (group, "consumer") in a.list_consumer_groups()
            [info] = a.describe_consumer_groups([group])
        finally:
            a.close()
        assert info.error_code == 0 and info.group == group, info
        assert info.state == "Stable", info
        assert info.protocol_type == "consumer" and info.protocol == strategy, info
        assert sorted(m.client_id for m in info.members) == ["kp-a", "kp-b"], info
        for m in info.members:
            assert "127.0.0.1" in m.client_host, m
            assert m.member_id.startswith(m.client_id + "-"), m  # Kafka: client id + "-" + UUID
            assert list(m.member_metadata.topics) == [topic], m
            w = workers[["kp-a", "kp-b"].index(m.client_id)]
            assert [(t, sorted(ps)) for t, ps in m.member_assignment.assignment] == [(topic, sorted(w.assignment()))], m

        produced = produce_keyed(broker.bootstrap, topic, 0, 200, partitioner="murmur2_random")
        wait_until(lambda: {(p, o) for w in workers for p, o, _, _ in w.records} >= set(produced), 30,
                   "all records consumed")
        time.sleep(0.3)  # nothing more arrives
        assert_exactly_once([r for w in workers for r in w.records], produced)

        ends = end_offsets(broker.bootstrap, topic, parts)
        for w in workers:
            mine = sorted(w.assignment())

            def commit_and_read(c, mine=mine):
                c.commit()
                return {p: c.committed(KTP(topic, p)) for p in mine}

            assert w.call(commit_and_read) == {p: ends[p] for p in mine}
        assert committed_offsets(broker.bootstrap, group) == {(topic, p): o for p, o in ends.items()}
    finally:
        for w in workers:
            w.stop()


def test_cooperative_sticky_incremental_rebalance(broker_factory):
    """cooperative-sticky: two members consume; a third joins; the first two give up only
    some partitions (incremental revoke), keep consuming the others, and every record is
    processed exactly once."""
    broker = start_group_broker(broker_factory)
    topic, group, parts = "g-coop", "g-coop", 6
    create_topic(broker.bootstrap, topic, parts)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    a, b = (Member(n, broker.bootstrap, group, topic, **conf) for n in ("a", "b"))
    c = None
    producer = confluent_producer(broker.bootstrap)
    produced: dict = {}
    counter = [0]

    def produce_some(n: int = 12) -> None:
        i = counter[0]
        counter[0] += n
        produced.update(produce_keyed(broker.bootstrap, topic, i, n, producer=producer))

    try:
        before = settle([a, b], parts)
        assert all(len(s) == 3 for s in before), before
        produce_some(60)
        drain([a, b], produced)

        c = Member("c", broker.bootstrap, group, topic, **conf)
        t_join = time.monotonic()
        members = [a, b, c]

        def tick():
            produce_some()
            step_all(members)

        after = wait_until(lambda: balanced(members, parts), 30, "a balanced assignment over a, b, c", tick=tick)
        t_done = time.monotonic()
        events = {m.name: m.history() for m in members}
        history = {m.name: [(round(t - t_join, 2), kind, ps) for t, kind, ps in events[m.name]] for m in members}
        history["errors"] = [(m.name, str(e)) for m in members for e in m.errors]
        history["commit_errors"] = [(m.name, e) for m in members for e in m.commit_errors]
        history["slow_commits"] = [(m.name, round(t - t_join, 2), d, ps) for m in members for t, d, ps in m.slow_commits]
        assert all(len(s) == 2 for s in after), after
        during: dict[str, int] = {}
        for m, old, new in ((a, before[0], after[0]), (b, before[1], after[1])):
            assert new < old, f"{m.name}: {sorted(old)} -> {sorted(new)}: should keep a subset of its partitions; {history}"
            revoked = [ps for t, kind, ps in events[m.name] if kind == "revoke" and t >= t_join]
            assert revoked and all(set(ps) < old for ps in revoked), (m.name, history)
            assert set().union(*map(set, revoked)) == old - new, (m.name, history)
            assert not [e for e in events[m.name] if e[1] == "lost"], (m.name, history)
            # never without partitions during the rebalance (an eager revoke would empty it)
            with m.lock:
                during[m.name] = sum(1 for r, t in zip(m.records, m.times) if t_join <= t <= t_done and r[0] in new)
        for _ in range(5):
            tick()
        drain(members, produced)
        assert_exactly_once(all_records(members), produced)
        took = t_done - t_join
        print(f"incremental rebalance took {took:.2f}s; records processed from retained partitions meanwhile: "
              f"{during}; commit errors: {[m.commit_errors for m in members]}")
    finally:
        for m in (a, b, c):
            if m is not None:
                m.close()


def test_static_membership_rejoin_keeps_partitions(broker_factory):
    """group.instance.id: a static member that closes (no LeaveGroup for static members) and
    comes back with the same instance id within its session timeout gets the same partitions,
    and the other member is not rebalanced."""
    broker = start_group_broker(broker_factory)
    topic, group, parts = "g-static", "g-static", 4
    create_topic(broker.bootstrap, topic, parts)
    conf = {"session.timeout.ms": 10000}
    a = Member("a", broker.bootstrap, group, topic, **{"group.instance.id": "inst-a", **conf})
    b = Member("b", broker.bootstrap, group, topic, **{"group.instance.id": "inst-b", **conf})
    a2 = None
    try:
        sets = settle([a, b], parts)
        d = describe_group(broker.bootstrap, group)
        assert sorted(m.group_instance_id for m in d.members) == ["inst-a", "inst-b"], d
        old_a = next(m.member_id for m in d.members if m.group_instance_id == "inst-a")
        produced = produce_keyed(broker.bootstrap, topic, 0, 80)
        drain([a, b], produced)
        b_events = len(b.history())

        t0 = time.monotonic()
        a.close()
        a2 = Member("a", broker.bootstrap, group, topic, **{"group.instance.id": "inst-a", **conf})
        wait_until(lambda: a2.assignment(), 8, "the restarted static member's assignment",
                   tick=lambda: step_all([a2, b]))
        assert time.monotonic() - t0 < 10
        assert a2.assignment() == sets[0], (sets, a2.assignment())
        for _ in range(10):  # 0.5 s more: b is not asked to rebalance
            step_all([a2, b])
        assert b.history()[b_events:] == [], f"b was rebalanced although a static member only rejoined: {b.history()}"
        assert b.assignment() == sets[1]
        d = describe_group(broker.bootstrap, group)
        assert d.state == ConsumerGroupState.STABLE and len(d.members) == 2, d
        new_a = next(m.member_id for m in d.members if m.group_instance_id == "inst-a")
        assert new_a != old_a, "the rejoined static member should have a new member id"

        produced.update(produce_keyed(broker.bootstrap, topic, 80, 80))
        drain([a2, b], produced, also=[a])
        assert_exactly_once(all_records([a, a2, b]), produced)
    finally:
        for m in (a, a2, b):
            if m is not None:
                m.close()


def test_auto_offset_reset(broker_factory):
    """A new group starts at the log start (earliest), at the log end (latest), or fails
    (kafka-python 'none': NoOffsetForPartitionError; librdkafka 'error': ERR__AUTO_OFFSET_RESET)."""
    from kafka import TopicPartition as KTP
    from kafka.errors import NoOffsetForPartitionError

    broker = start_group_broker(broker_factory)
    topic, parts = "g-reset", 2
    create_topic(broker.bootstrap, topic, parts)
    produced = produce_keyed(broker.bootstrap, topic, 0, 10)
    ends = end_offsets(broker.bootstrap, topic, parts)

    # earliest (confluent-kafka)
    m = Member("earliest", broker.bootstrap, "reset-earliest", topic, **{"auto.offset.reset": "earliest"})
    try:
        drain([m], produced)
        assert_exactly_once(m.processed(), produced)
    finally:
        m.close()

    # latest (kafka-python: position() resolves the reset before anything new is produced)
    w = KPWorker("latest", broker.bootstrap, "reset-latest", [topic], auto_offset_reset="latest")
    try:
        wait_until(lambda: w.assignment() == {0, 1}, 20, "assignment of the 'latest' consumer")
        positions = w.call(lambda c: {p: c.position(KTP(topic, p)) for p in range(parts)})
        assert positions == ends, positions
        newer = produce_keyed(broker.bootstrap, topic, 10, 6)
        wait_until(lambda: len(w.records) >= 6, 20, "the records produced after the reset to latest")
        time.sleep(0.3)
        assert_exactly_once(w.records, newer)
    finally:
        w.stop()

    # none (kafka-python): no committed offset -> NoOffsetForPartitionError from poll()
    from kafka import KafkaConsumer

    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="reset-none", auto_offset_reset="none",
                      enable_auto_commit=False, heartbeat_interval_ms=300, fetch_max_wait_ms=100)
    try:
        deadline = time.monotonic() + 20
        with pytest.raises(NoOffsetForPartitionError):
            while time.monotonic() < deadline:
                got = c.poll(timeout_ms=200)
                assert not got, f"'none' consumer got records without a committed offset: {got}"
    finally:
        c.close()

    # error (librdkafka's 'none')
    e = Member("error", broker.bootstrap, "reset-error", topic, **{"auto.offset.reset": "error"})
    try:
        wait_until(lambda: any(err.code() == KafkaError._AUTO_OFFSET_RESET for err in e.errors), 20,
                   "ERR__AUTO_OFFSET_RESET", tick=lambda: step_all([e]))
        assert not e.processed()
    finally:
        e.close()


def test_offset_commit_with_metadata(broker_factory):
    """kafka-python commit({tp: OffsetAndMetadata(42, "meta", -1)}) by a consumer outside any
    generation (assign(), generation -1): committed(tp, metadata=True) returns it, and so do
    both admin clients."""
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    broker = start_group_broker(broker_factory)
    topic, group = "g-meta", "g-meta"
    create_topic(broker.bootstrap, topic, 2)
    produce_keyed(broker.bootstrap, topic, 0, 100)
    tp0, tp1 = KTP(topic, 0), KTP(topic, 1)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        c.assign([tp0, tp1])
        assert c.committed(tp0) is None
        c.commit({tp0: OffsetAndMetadata(42, "meta", -1), tp1: OffsetAndMetadata(7, "", -1)})
        got = c.committed(tp0, metadata=True)
        assert (got.offset, got.metadata) == (42, "meta"), got
        assert c.committed(tp1) == 7
        c.commit({tp0: OffsetAndMetadata(43, "meta-2" * 100, -1)})
        got = c.committed(tp0, metadata=True)
        assert (got.offset, got.metadata) == (43, "meta-2" * 100), got
    finally:
        c.close()

    a = kp_admin(broker.bootstrap)
    try:
        offs = a.list_consumer_group_offsets(group)
    finally:
        a.close()
    assert {tp: (om.offset, om.metadata) for tp, om in offs.items()} == {tp0: (43, "meta-2" * 100), tp1: (7, "")}
    ca = admin(broker.bootstrap)
    res = ca.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(15)
    # Offsets only: confluent-kafka 2.16 copies the fetched metadata without a NUL terminator
    # and reads it back as a C string (garbage after a metadata kafka-python wrote without one).
    assert sorted((tp.partition, tp.offset) for tp in res.topic_partitions) == [(0, 43), (1, 7)], res.topic_partitions
    # a group that only committed is listed, Empty
    assert group_listing(broker.bootstrap).get(group) == ConsumerGroupState.EMPTY


def test_offset_metadata_too_large(broker_factory):
    """Kafka refuses offset metadata above offset.metadata.max.bytes (4096) with
    OFFSET_METADATA_TOO_LARGE, and keeps the previous commit."""
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.errors import OffsetMetadataTooLargeError
    from kafka.structs import OffsetAndMetadata

    broker = start_group_broker(broker_factory)
    topic, group = "g-meta-big", "g-meta-big"
    create_topic(broker.bootstrap, topic, 1)
    tp = KTP(topic, 0)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        c.assign([tp])
        c.commit({tp: OffsetAndMetadata(5, "x" * 4096, -1)})
        assert c.committed(tp) == 5
        with pytest.raises(OffsetMetadataTooLargeError):
            c.commit({tp: OffsetAndMetadata(6, "x" * 4097, -1)})
        assert c.committed(tp) == 5
    finally:
        c.close()


def test_delete_groups_and_offsets(broker_factory):
    """DeleteGroups: an Empty group is deleted, an active one fails with NON_EMPTY_GROUP,
    an unknown one with GROUP_ID_NOT_FOUND. OffsetDelete (neither Python client has it;
    sent by hand, v0): deletes an Empty group's offsets partition by partition, refuses
    GROUP_SUBSCRIBED_TO_TOPIC for a topic an active group consumes, GROUP_ID_NOT_FOUND
    for an unknown group."""
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.errors import GroupIdNotFoundError, NonEmptyGroupError
    from kafka.structs import OffsetAndMetadata

    broker = start_group_broker(broker_factory)
    topic = "g-del"
    create_topic(broker.bootstrap, topic, 2)
    produce_keyed(broker.bootstrap, topic, 0, 20)

    def simple_commit(group: str, offsets: dict[int, int]) -> None:
        c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
        try:
            c.assign([KTP(topic, p) for p in offsets])
            c.commit({KTP(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
        finally:
            c.close()

    simple_commit("empty-a", {0: 3, 1: 4})
    simple_commit("empty-b", {0: 5, 1: 6})
    simple_commit("empty-c", {0: 1})
    active = Member("active", broker.bootstrap, "active", topic)
    try:
        wait_until(lambda: active.assignment() == {0, 1}, 20, "the active member's assignment",
                   tick=lambda: step_all([active]))
        listing = group_listing(broker.bootstrap)
        assert {g: listing.get(g) for g in ("empty-a", "empty-b", "empty-c", "active")} == {
            "empty-a": ConsumerGroupState.EMPTY, "empty-b": ConsumerGroupState.EMPTY,
            "empty-c": ConsumerGroupState.EMPTY, "active": ConsumerGroupState.STABLE}, listing

        # kafka-python DeleteGroups
        a = kp_admin(broker.bootstrap)
        try:
            results = dict(a.delete_consumer_groups(["empty-a", "active", "no-such-group"]))
            assert results["empty-a"].errno == 0, results
            assert results["active"] is NonEmptyGroupError, results
            assert results["no-such-group"] is GroupIdNotFoundError, results
            assert a.list_consumer_group_offsets("empty-a") == {}
        finally:
            a.close()
        # confluent-kafka DeleteGroups
        ca = admin(broker.bootstrap)
        futures = ca.delete_consumer_groups(["empty-b", "active"], request_timeout=10)
        assert futures["empty-b"].result(15) is None
        with pytest.raises(KafkaException) as ei:
            futures["active"].result(15)
        assert ei.value.args[0].code() == KafkaError.NON_EMPTY_GROUP, ei.value
        listing = group_listing(broker.bootstrap)
        assert "empty-a" not in listing and "empty-b" not in listing and "active" in listing, listing

        # OffsetDelete, by hand
        with RawConnection(broker.bootstrap) as conn:
            versions = parse_api_versions(conn.request(api_versions_request(0, 1)), 0).apis
        assert versions.get(API_OFFSET_DELETE, (None, None))[0] == 0, f"OffsetDelete not advertised: {versions}"
        error, res = offset_delete(broker.bootstrap, "empty-c", {topic: [0]})
        assert (error, res) == (ERR_NONE, {topic: {0: ERR_NONE}})
        assert committed_offsets(broker.bootstrap, "empty-c") == {}
        simple_commit("empty-c", {0: 1, 1: 2})
        error, res = offset_delete(broker.bootstrap, "empty-c", {topic: [1]})
        assert (error, res) == (ERR_NONE, {topic: {1: ERR_NONE}})
        assert committed_offsets(broker.bootstrap, "empty-c") == {(topic, 0): 1}

        error, res = offset_delete(broker.bootstrap, "active", {topic: [0, 1]})
        assert (error, res) == (ERR_NONE, {topic: {0: ERR_GROUP_SUBSCRIBED_TO_TOPIC, 1: ERR_GROUP_SUBSCRIBED_TO_TOPIC}})
        error, res = offset_delete(broker.bootstrap, "no-such-group", {topic: [0]})
        assert error == ERR_GROUP_ID_NOT_FOUND, (error, res)
    finally:
        active.close()

    # once the member left, the group is Empty and can go
    wait_until(lambda: group_listing(broker.bootstrap).get("active") == ConsumerGroupState.EMPTY, 5,
               "group 'active' Empty after its only member left")
    ca = admin(broker.bootstrap)
    assert ca.delete_consumer_groups(["active"], request_timeout=10)["active"].result(15) is None
    assert "active" not in group_listing(broker.bootstrap)


def test_session_timeout_below_broker_minimum(broker_factory):
    """JoinGroup with session.timeout.ms 1000 < group.min.session.timeout.ms (6000):
    INVALID_SESSION_TIMEOUT, raised by kafka-python and reported by librdkafka."""
    from kafka import KafkaConsumer
    from kafka.errors import InvalidSessionTimeoutError

    broker = start_group_broker(broker_factory)
    topic = "g-session"
    create_topic(broker.bootstrap, topic, 1)

    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="short-session-kp", session_timeout_ms=1000,
                      heartbeat_interval_ms=300, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 15
        with pytest.raises(InvalidSessionTimeoutError):
            while time.monotonic() < deadline:
                c.poll(timeout_ms=200)
    finally:
        c.close()

    m = Member("short", broker.bootstrap, "short-session-rd", topic,
               **{"session.timeout.ms": 1000, "heartbeat.interval.ms": 300, "max.poll.interval.ms": 6000})
    try:
        wait_until(lambda: any(e.code() == KafkaError.INVALID_SESSION_TIMEOUT for e in m.errors), 15,
                   "INVALID_SESSION_TIMEOUT from librdkafka", tick=lambda: step_all([m]))
        assert not m.assignment()
    finally:
        m.close()
    listing = group_listing(broker.bootstrap)
    assert all(listing.get(g) in (None, ConsumerGroupState.EMPTY) for g in ("short-session-kp", "short-session-rd")), listing


def test_default_initial_rebalance_delay(broker_factory):
    """With Kafka's default group.initial.rebalance.delay.ms (3000), the first rebalance of
    an empty group waits for more members: two members subscribing together get their
    final, balanced assignment in one generation, about 3 s later."""
    broker = broker_factory().start()
    topic, group, parts = "g-delay", "g-delay", 6
    create_topic(broker.bootstrap, topic, parts)
    t0 = time.monotonic()
    members = [Member(n, broker.bootstrap, group, topic) for n in ("a", "b")]
    try:
        sets = settle(members, parts, timeout=20)
        took = time.monotonic() - t0
        assert all(len(s) == 3 for s in sets), sets
        for m in members:
            assigns = [e for e in m.history() if e[1] == "assign"]
            assert len(assigns) == 1, f"{m.name} was assigned more than once: {m.history()}"
        assert took >= 2.0, f"assigned after {took:.2f}s: the 3 s initial rebalance delay was not applied"
        produced = produce_keyed(broker.bootstrap, topic, 0, 60)
        drain(members, produced)
        assert_exactly_once(all_records(members), produced)
        print(f"first assignment after {took:.2f}s")
    finally:
        for m in members:
            m.close()


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "member":
        member_process_main(sys.argv[2:])
    else:
        sys.exit("usage: test_groups.py member <bootstrap> <group> <topic> <name> <json conf>")
