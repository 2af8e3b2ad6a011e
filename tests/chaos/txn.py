"""The transactional consume-transform-produce job (`--txn`): a read_committed consumer in
its own group reads the main topic and, per batch, one transaction writes each record
transformed to the output topic (same partition) and commits the batch's offsets with
send_offsets_to_transaction. Output record: key "<partition>:<offset>" of its source,
value "<source value>|t|<txn>|<size>", where txn numbers every transaction this run began
(aborted ones too) and size is how many records it wrote, so the checker can tell whole
transactions from half visible ones.

An abortable error aborts and rewinds the consumer to the group's committed offsets; a
retriable one is retried; a fatal one (fenced, or the coordinator timed the transaction
out) replaces the producer (init_transactions with the same transactional.id completes
or aborts what the old one left open) and then rewinds."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from .log import log
from .nodes import FAST_RECONNECT
from .workload import Client

RETRY_FOR_S = 60.0  # a retriable error for longer than this: the producer is replaced


@dataclass
class Txn:
    number: int
    size: int = 0
    state: str = "open"  # committed | aborted | unknown (the client never learned the outcome)
    offsets: dict[int, int] = field(default_factory=dict)  # partition -> next offset to read
    error: str = ""


class Fatal(Exception):
    pass


def err_of(e: BaseException) -> KafkaError | None:
    return e.args[0] if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError) else None


class TxnJob(Client):
    def __init__(self, bootstrap: str, source: str, output: str, group: str, transactional_id: str):
        super().__init__("txn")
        self.bootstrap, self.source, self.output, self.group = bootstrap, source, output, group
        self.transactional_id = transactional_id
        self.txns: list[Txn] = []
        self.committed: dict[int, int] = {}  # offsets of the transactions confirmed committed
        self.replaced = 0  # producers replaced after a fatal error
        self.rewinds = 0
        self.assignments = 0
        self.notes: list[str] = []  # errors met (recovered from)

    def note(self, what: str) -> None:
        if len(self.notes) < 100:
            self.notes.append(what)

    def body(self) -> None:
        self.c = self.new_consumer()
        try:
            while not self.stopping.is_set():
                p = None
                try:
                    p = self.new_producer()
                    self.retrying("init_transactions", p.init_transactions)
                    self.rewind()
                    while not self.stopping.is_set():
                        self.step(p)
                except Fatal as e:
                    self.note(f"fatal: {e}")
                    log(f"txn: {e}; replacing the producer")
                    self.replaced += 1
                finally:
                    if p is not None:
                        close_quietly(p)
        finally:
            close_quietly(self.c)

    def new_consumer(self) -> Consumer:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "isolation.level": "read_committed",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                      "fetch.wait.max.ms": 200, **FAST_RECONNECT})
        # With on_assign the assignment changes only inside consume(), never while a
        # transaction is open: librdkafka's own assign would fetch the committed offsets
        # concurrently, before this transaction's offsets are sent, and re-read its batch.
        c.subscribe([self.source], on_assign=self.on_assign)
        return c

    def on_assign(self, _c, partitions) -> None:
        self.assignments += 1

    def new_producer(self) -> Producer:
        return Producer({"bootstrap.servers": self.bootstrap, "transactional.id": self.transactional_id,
                         "transaction.timeout.ms": 30000, "linger.ms": 5, "request.timeout.ms": 10000,
                         **FAST_RECONNECT})

    def retrying(self, where: str, fn):
        """fn(timeout) until it succeeds; retriable errors are retried (RETRY_FOR_S at most),
        an abortable one is raised as is, anything else (or stopping) as Fatal."""
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                return fn(10)
            except KafkaException as e:
                err = err_of(e)
                if err is None or err.fatal() or not (err.retriable() or err.txn_requires_abort()):
                    raise Fatal(f"{where}: {err or e!r}") from e
                if err.txn_requires_abort():
                    raise
                if time.monotonic() > deadline or self.stopping.is_set():
                    raise Fatal(f"{where}: still {err} after {RETRY_FOR_S:g} s") from e
                time.sleep(0.2)

    def step(self, p: Producer) -> None:
        batch = [m for m in self.c.consume(200, 0.5) if self.usable(m)]
        if not batch:
            return
        meta = self.c.consumer_group_metadata()  # this generation: a rebalance since fences the offsets
        txn = Txn(len(self.txns), len(batch))
        for m in batch:
            if m.offset() < self.committed.get(m.partition(), 0):
                self.note(f"txn {txn.number}: read {m.partition()}:{m.offset()} below the confirmed committed "
                          f"offset {self.committed[m.partition()]} (after {self.assignments} assignments)")
            txn.offsets[m.partition()] = max(txn.offsets.get(m.partition(), 0), m.offset() + 1)
        self.txns.append(txn)
        try:
            p.begin_transaction()
            for m in batch:
                value = f"{m.value().decode()}|t|{txn.number}|{txn.size}"
                self.produce(p, m.partition(), f"{m.partition()}:{m.offset()}", value)
            offsets = [TopicPartition(self.source, q, o) for q, o in txn.offsets.items()]
            self.retrying("send_offsets_to_transaction", lambda t: p.send_offsets_to_transaction(offsets, meta, t))
            self.retrying("commit_transaction", p.commit_transaction)
        except Fatal as e:
            txn.state, txn.error = "unknown", str(e)
            raise
        except KafkaException as e:
            err = err_of(e)
            if err is None or err.fatal() or not err.txn_requires_abort():
                txn.state, txn.error = "unknown", str(err or repr(e))
                raise Fatal(f"txn {txn.number}: {txn.error}") from e
            txn.error = str(err)
            self.note(f"txn {txn.number}: {txn.error}")
            try:
                self.retrying("abort_transaction", p.abort_transaction)
            except (Fatal, KafkaException) as f:
                txn.state = "unknown"
                raise Fatal(f"abort_transaction: {f}") from f
            txn.state = "aborted"
            self.rewind()
            return
        txn.state = "committed"
        for q, o in txn.offsets.items():
            self.committed[q] = max(self.committed.get(q, 0), o)

    def usable(self, m) -> bool:
        if m.error() is None:
            return True
        if m.error().fatal():
            raise Fatal(f"consume: {m.error()}")
        return False

    def produce(self, p: Producer, partition: int, key: str, value: str) -> None:
        while True:
            try:
                p.produce(self.output, key=key.encode(), value=value.encode(), partition=partition)
                p.poll(0)
                return
            except BufferError:
                p.poll(0.05)

    def rewind(self) -> None:
        """Back to the group's committed offsets (a new consumer if that fails)."""
        self.rewinds += 1
        try:
            assignment = self.c.assignment()
            for tp in self.c.committed(assignment, timeout=10) if assignment else []:
                self.c.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
        except KafkaException as e:
            self.note(f"rewind: {err_of(e) or e!r}; new consumer")
            close_quietly(self.c)
            self.c = self.new_consumer()


def close_quietly(client) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            client.close()
        except (KafkaException, RuntimeError):
            pass
