"""Helpers of the transaction tests (`test_transactions.py`): transactional producers
with delivery reports, reading partitions to their end at either isolation level,
ListOffsets by isolation level, the processor subprocess of the exactly-once test
(`txn_processor.py`), and hand-built frames for what no Python client sends: Fetch v4
with an isolation level (LSO, aborted transactions, control batches), ListTransactions,
DescribeTransactions and DescribeProducers. Every loop is bounded by a deadline."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, IsolationLevel, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import OffsetSpec

import gregor_wire as w
from gregor_support import FAST_RECONNECT, Delivery, Msg, admin, confluent_consumer, send_unflushed

HERE = Path(__file__).resolve().parent

# librdkafka normalizes both broker fencing errors to the local _FENCED (-144) and makes
# it fatal (rd_kafka_txn_normalize_err / rd_kafka_idemp_check_error); the broker codes are
# accepted too in case a path reports them unnormalized.
FENCED_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}

READ_COMMITTED = "read_committed"
READ_UNCOMMITTED = "read_uncommitted"

API_FETCH = 1
API_DESCRIBE_PRODUCERS = 61
API_DESCRIBE_TRANSACTIONS = 65
API_LIST_TRANSACTIONS = 66

# RecordBatch v2 attributes
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
CONTROL_ABORT = 0
CONTROL_COMMIT = 1


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def kafka_error(exc: BaseException) -> KafkaError | None:
    """The KafkaError inside a confluent-kafka KafkaException (None for anything else)."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def describe(err: KafkaError | None) -> str:
    if err is None:
        return "None"
    flags = [f for f, on in (("fatal", err.fatal()), ("retriable", err.retriable()),
                             ("txn_requires_abort", err.txn_requires_abort())) if on]
    return f"{err.name()}({err.code()}){'[' + ','.join(flags) + ']' if flags else ''}: {err.str()}"


# ---------------------------------------------------------------- confluent-kafka producers


def txn_producer(bootstrap: str, transactional_id: str, errors: list | None = None, **conf) -> Producer:
    """A confluent-kafka transactional producer; errors reported through error_cb are
    appended to `errors`."""
    sink = errors if errors is not None else []
    base = {
        "bootstrap.servers": bootstrap,
        "transactional.id": transactional_id,
        "linger.ms": 5,
        "error_cb": sink.append,
        **FAST_RECONNECT,
    }
    base.update(conf)
    return Producer(base)


# Produces without flushing; deliveries are known once flushed or the transaction commits.
send = send_unflushed


def assert_all_delivered(results: list[Delivery | None], what: str = "records") -> list[Delivery]:
    missing = [i for i, r in enumerate(results) if r is None]
    assert not missing, f"{what}: no delivery report for items {missing[:10]}"
    bad = [r for r in results if r.error is not None]
    assert not bad, f"{what}: {len(bad)} deliveries failed, e.g. {[(d.index, describe(d.error)) for d in bad[:5]]}"
    return results  # type: ignore[return-value]


def close_quietly(client) -> None:
    """Closes a producer or consumer. confluent-kafka 2.16's Producer.close() aborts an open
    transaction; for a producer in a fatal state (fenced, or refused by the broker) it warns
    or raises KafkaException: that is not a test failure here."""
    with warnings.catch_warnings():
        # "Producer abort_transaction failed during close" (a fenced producer)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            client.close()
        except (KafkaException, RuntimeError):
            pass


# ---------------------------------------------------------------- offsets and reading


def list_offsets(bootstrap: str, topic: str, partitions: int | list[int], isolation: IsolationLevel) -> dict[int, int]:
    """ListOffsets(latest) through the AdminClient at `isolation`: the high watermark for
    READ_UNCOMMITTED, the last stable offset for READ_COMMITTED."""
    parts = list(range(partitions)) if isinstance(partitions, int) else list(partitions)
    a = admin(bootstrap)  # must outlive its futures
    futs = a.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in parts}, isolation_level=isolation,
                          request_timeout=10)
    return {tp.partition: f.result(timeout=20).offset for tp, f in futs.items()}


def high_watermarks(bootstrap: str, topic: str, partitions: int | list[int]) -> dict[int, int]:
    return list_offsets(bootstrap, topic, partitions, IsolationLevel.READ_UNCOMMITTED)


def stable_offsets(bootstrap: str, topic: str, partitions: int | list[int]) -> dict[int, int]:
    return list_offsets(bootstrap, topic, partitions, IsolationLevel.READ_COMMITTED)


def to_msg(m) -> Msg:
    ts_type, ts = m.timestamp()
    return Msg(m.topic(), m.partition(), m.offset(), m.key(), m.value(), list(m.headers() or []), ts, ts_type == 1)


@dataclass
class ReadResult:
    msgs: list[Msg]
    positions: dict[int, int]  # Consumer.position() after the last end-of-partition
    eof_offsets: dict[int, int]  # offset of the last _PARTITION_EOF event per partition

    def by_partition(self) -> dict[int, list[Msg]]:
        out: dict[int, list[Msg]] = {}
        for m in self.msgs:
            out.setdefault(m.partition, []).append(m)
        return out


def read_to_end(bootstrap: str, topic: str, partitions: int, isolation: str, ends: dict[int, int] | None = None,
                timeout: float = 30.0, **conf) -> ReadResult:
    """Reads every partition from its beginning with `isolation.level=isolation` until the
    consumer reports end-of-partition at an offset >= ends[p] (default: the high
    watermark, which a read_committed consumer reaches only when no transaction is open on
    the partition). Control records are never returned by the client; its position moves
    past them."""
    if ends is None:
        ends = high_watermarks(bootstrap, topic, partitions)
    c = confluent_consumer(bootstrap, **{"isolation.level": isolation, "enable.partition.eof": True,
                                         "group.id": unique("txn-tests-reader"), **conf})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        pending = set(range(partitions))
        out: list[Msg] = []
        eofs: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    eofs[m.partition()] = m.offset()
                    if m.offset() >= ends[m.partition()]:
                        pending.discard(m.partition())
                    continue
                raise KafkaException(err)
            out.append(to_msg(m))
        assert not pending, (f"{isolation} consumer did not reach the end {ends} of {topic} partitions {sorted(pending)} "
                             f"within {timeout}s (last end-of-partition offsets {eofs}, "
                             f"{len(out)} records read)")
        positions = {tp.partition: tp.offset for tp in c.position([TopicPartition(topic, p) for p in range(partitions)])}
        return ReadResult(out, positions, eofs)
    finally:
        c.close()


def poll_window(consumer, seconds: float) -> tuple[list[Msg], dict[int, int]]:
    """Polls `consumer` for `seconds`; returns (records, last end-of-partition offset per
    partition). Fails on any other consumer error."""
    out: list[Msg] = []
    eofs: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        m = consumer.poll(min(0.1, max(0.0, deadline - time.monotonic())))
        if m is None:
            continue
        err = m.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                eofs[m.partition()] = m.offset()
                continue
            raise KafkaException(err)
        out.append(to_msg(m))
    return out, eofs


# ---------------------------------------------------------------- kafka-python calls with a deadline


def call_with_timeout(fn, timeout: float, what: str):
    """Runs fn() on a daemon thread and returns its result (or raises its exception);
    fails the test if it has not returned within `timeout` (kafka-python's
    commit_transaction/abort_transaction wait without a deadline)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised on the caller's thread
            box["error"] = e

    t = threading.Thread(target=run, name=f"call-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"{what} did not return within {timeout}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ---------------------------------------------------------------- the processor subprocess


class Processor:
    """`txn_processor.py` as a subprocess (stdout: JSON lines, to a file; stderr to a file).
    Exit codes: 0 done (idle and caught up), 2 fatal error, 3 own deadline, 5 could not
    rewind after an aborted transaction (a restart is the recovery)."""

    def __init__(self, tmp_path: Path, name: str, bootstrap: str, group: str, input_topic: str, output_topic: str,
                 transactional_id: str, *extra: str):
        self.name = name
        self.out_path = tmp_path / f"{name}.stdout"
        self.err_path = tmp_path / f"{name}.stderr"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        cmd = [sys.executable, str(HERE / "txn_processor.py"), bootstrap, group, input_topic, output_topic,
               transactional_id, *extra]
        with open(self.out_path, "wb") as o, open(self.err_path, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, cwd=tmp_path, env=env,
                                         start_new_session=True)
        self.events: list[dict] = []
        self._pos = 0
        self._buf = ""
        self.killed = False

    def poll_events(self) -> list[dict]:
        with open(self.out_path, "r") as f:
            f.seek(self._pos)
            chunk = f.read()
            self._pos = f.tell()
        self._buf += chunk
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            if line.strip():
                self.events.append(json.loads(line))
        return self.events

    def committed_records(self) -> int:
        self.poll_events()
        return sum(ev["n"] for ev in self.events if ev["ev"] == "committed")

    def commits(self) -> int:
        self.poll_events()
        return sum(1 for ev in self.events if ev["ev"] == "committed")

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.killed = True
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.poll_events()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr_tail(self, chars: int = 6000) -> str:
        try:
            return self.err_path.read_text(errors="replace")[-chars:]
        except OSError as e:
            return f"<cannot read {self.err_path}: {e}>"

    def describe(self) -> str:
        """Its state for a failure message; a running processor first dumps its Python
        stacks to stderr (SIGUSR1, faulthandler), to show where it is stuck."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.5)
        self.poll_events()
        tail = [ev for ev in self.events if ev["ev"] != "committed"][-10:]
        return (f"processor {self.name}: exit {self.proc.poll()}, {self.commits()} commits, "
                f"{self.committed_records()} records committed, last events {tail}\n--- stderr ---\n{self.stderr_tail()}")

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# ---------------------------------------------------------------- wire: Fetch v4 with an isolation level


def fetch_v4(correlation_id: int, topic: str, partition: int, offset: int, isolation: int,
             max_wait_ms: int = 50, max_bytes: int = 1 << 20) -> bytes:
    """A whole Fetch v4 request frame for one partition; isolation 0 = read_uncommitted,
    1 = read_committed."""
    body = (
        struct.pack(">iiiib", -1, max_wait_ms, 0, max_bytes, isolation)
        + struct.pack(">i", 1)
        + w.string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">iqi", partition, offset, max_bytes)
    )
    return w.frame(w.request_header(API_FETCH, 4, correlation_id) + body)


@dataclass
class Batch:
    base_offset: int
    last_offset: int
    attributes: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int
    control_type: int | None  # CONTROL_ABORT / CONTROL_COMMIT for a control batch

    @property
    def transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)


@dataclass
class FetchResult:
    error_code: int
    high_watermark: int
    last_stable_offset: int
    aborted: list[tuple[int, int]] | None  # (producer id, first offset); None when null
    batches: list[Batch]


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n, pos = w.read_uvarint(buf, pos)
    return (n >> 1) ^ -(n & 1), pos


def parse_batches(records: bytes) -> list[Batch]:
    """The whole RecordBatch v2 headers in `records` (a trailing partial batch is skipped);
    for a control batch, the type of its (single) control record."""
    out = []
    pos = 0
    while pos + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        end = pos + 12 + length
        if end > len(records):
            break
        magic = records[pos + 16]
        assert magic == 2, f"batch at offset {base} has magic {magic}"
        attributes, last_delta = struct.unpack_from(">hi", records, pos + 21)
        pid, epoch, base_seq, count = struct.unpack_from(">qhii", records, pos + 43)
        control_type = None
        if attributes & ATTR_CONTROL:
            rpos = pos + 61
            _length, rpos = _read_varint(records, rpos)
            rpos += 1  # record attributes
            _ts_delta, rpos = _read_varint(records, rpos)
            _off_delta, rpos = _read_varint(records, rpos)
            key_len, rpos = _read_varint(records, rpos)
            assert key_len >= 4, f"control record at {base} has a key of {key_len} bytes"
            _version, control_type = struct.unpack_from(">hh", records, rpos)
        out.append(Batch(base, base + last_delta, attributes, pid, epoch, base_seq, count, control_type))
        pos = end
    return out


def parse_fetch_v4(payload: bytes) -> tuple[int, FetchResult]:
    corr, _throttle, ntopics = struct.unpack_from(">iii", payload, 0)
    assert ntopics == 1, ntopics
    pos = 12
    (nlen,) = struct.unpack_from(">h", payload, pos)
    pos += 2 + nlen
    (nparts,) = struct.unpack_from(">i", payload, pos)
    assert nparts == 1, nparts
    pos += 4
    _index, error, hw, lso, naborted = struct.unpack_from(">ihqqi", payload, pos)
    pos += 26
    aborted = None
    if naborted >= 0:
        aborted = []
        for _ in range(naborted):
            aborted.append(struct.unpack_from(">qq", payload, pos))
            pos += 16
    (rlen,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    records = payload[pos: pos + max(rlen, 0)]
    return corr, FetchResult(error, hw, lso, aborted, parse_batches(records))


def raw_fetch(bootstrap: str, topic: str, partition: int, offset: int, isolation: int) -> FetchResult:
    with w.RawConnection(bootstrap) as c:
        corr, res = parse_fetch_v4(c.request(fetch_v4(7, topic, partition, offset, isolation)))
        assert corr == 7
        return res


# ---------------------------------------------------------------- wire: the transaction admin APIs (flexible v0)


def api_versions(bootstrap: str) -> dict[int, tuple[int, int]]:
    with w.RawConnection(bootstrap) as c:
        res = w.parse_api_versions(c.request(w.api_versions_request(0, 1)), 0)
    assert res.error_code == 0, res
    return res.apis


class Reader:
    """Reads flexible-version (compact) fields of a response body."""

    def __init__(self, buf: bytes, pos: int = 0):
        self.buf = buf
        self.pos = pos

    def _unpack(self, fmt: str):
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def i16(self) -> int:
        return self._unpack(">h")

    def i32(self) -> int:
        return self._unpack(">i")

    def i64(self) -> int:
        return self._unpack(">q")

    def uvarint(self) -> int:
        v, self.pos = w.read_uvarint(self.buf, self.pos)
        return v

    def compact_string(self) -> str | None:
        n = self.uvarint()
        if n == 0:
            return None
        s = self.buf[self.pos: self.pos + n - 1].decode()
        self.pos += n - 1
        return s

    def compact_array(self, item) -> list | None:
        n = self.uvarint()
        if n == 0:
            return None
        return [item() for _ in range(n - 1)]

    def tags(self) -> None:
        for _ in range(self.uvarint()):
            _tag = self.uvarint()
            size = self.uvarint()
            self.pos += size


def _compact_array(items: list[bytes]) -> bytes:
    return w.uvarint(len(items) + 1) + b"".join(items)


def flexible_request(bootstrap: str, api_key: int, version: int, body: bytes) -> Reader:
    """Sends one flexible request (header v2) and returns a Reader positioned after the
    response header v1 (correlation id and tagged fields)."""
    with w.RawConnection(bootstrap) as c:
        payload = c.request(w.frame(w.request_header(api_key, version, 11, flexible=True) + body))
    r = Reader(payload)
    assert r.i32() == 11
    r.tags()
    return r


@dataclass
class ListedTransaction:
    transactional_id: str
    producer_id: int
    state: str


def list_transactions_v0(bootstrap: str, states: list[str] | None = None) -> tuple[int, list[ListedTransaction]]:
    body = (_compact_array([w.compact_string(s) for s in states or []])
            + _compact_array([])  # producer id filters
            + w.uvarint(0))
    r = flexible_request(bootstrap, API_LIST_TRANSACTIONS, 0, body)
    r.i32()  # throttle
    error = r.i16()
    r.compact_array(r.compact_string)  # unknown state filters

    def state():
        t = ListedTransaction(r.compact_string(), r.i64(), r.compact_string())
        r.tags()
        return t

    txns = r.compact_array(state) or []
    r.tags()
    return error, txns


@dataclass
class DescribedTransaction:
    error_code: int
    transactional_id: str
    state: str
    timeout_ms: int
    start_time_ms: int
    producer_id: int
    producer_epoch: int
    partitions: dict[str, list[int]]


def describe_transactions_v0(bootstrap: str, transactional_ids: list[str]) -> list[DescribedTransaction]:
    body = _compact_array([w.compact_string(t) for t in transactional_ids]) + w.uvarint(0)
    r = flexible_request(bootstrap, API_DESCRIBE_TRANSACTIONS, 0, body)
    r.i32()  # throttle

    def topic():
        name = r.compact_string()
        parts = r.compact_array(r.i32) or []
        r.tags()
        return name, parts

    def state():
        error, tid, st = r.i16(), r.compact_string(), r.compact_string()
        timeout, start, pid, epoch = r.i32(), r.i64(), r.i64(), r.i16()
        topics = dict(r.compact_array(topic) or [])
        r.tags()
        return DescribedTransaction(error, tid, st, timeout, start, pid, epoch, topics)

    out = r.compact_array(state) or []
    r.tags()
    return out


@dataclass
class ActiveProducer:
    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int
    current_txn_start_offset: int


def describe_producers_v0(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, tuple[int, list[ActiveProducer]]]:
    """{partition: (error code, active producers)}."""
    req_topic = w.compact_string(topic) + _compact_array([struct.pack(">i", p) for p in partitions]) + w.uvarint(0)
    body = _compact_array([req_topic]) + w.uvarint(0)
    r = flexible_request(bootstrap, API_DESCRIBE_PRODUCERS, 0, body)
    r.i32()  # throttle

    def producer():
        p = ActiveProducer(r.i64(), r.i32(), r.i32(), r.i64(), r.i32(), r.i64())
        r.tags()
        return p

    def partition():
        index, error = r.i32(), r.i16()
        r.compact_string()  # error message
        producers = r.compact_array(producer) or []
        r.tags()
        return index, (error, producers)

    def topic_resp():
        name = r.compact_string()
        parts = r.compact_array(partition) or []
        r.tags()
        return name, parts

    topics = r.compact_array(topic_resp) or []
    r.tags()
    out: dict[int, tuple[int, list[ActiveProducer]]] = {}
    for name, parts in topics:
        assert name == topic, name
        out.update(dict(parts))
    return out
