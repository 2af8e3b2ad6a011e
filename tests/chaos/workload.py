"""The workload: idempotent acks=all producers writing unique values "<producer>-<seq>"
(seq % partitions picks the partition) and a two-member consumer group that commits what
it read, all recording what the brokers told them, with monotonic times."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from kafka import KafkaProducer

from .log import log
from .nodes import FAST_RECONNECT


@dataclass(frozen=True)
class Ack:
    partition: int
    offset: int
    value: str
    time: float


@dataclass(frozen=True)
class Read:
    partition: int
    offset: int
    value: str
    member: str


@dataclass(frozen=True)
class Commit:
    """A committed offset the coordinator confirmed: asked at `start`, answered by `end`."""
    partition: int
    offset: int
    start: float
    end: float
    member: str


class Client(threading.Thread):
    def __init__(self, name: str):
        super().__init__(daemon=True, name=name)
        self.stopping = threading.Event()
        self.errors: list[str] = []  # fatal or unexpected errors
        self.crash: BaseException | None = None

    def run(self) -> None:
        try:
            self.body()
        except BaseException as e:  # reported, never raised in the harness thread
            self.crash = e
            log(f"{self.name} crashed: {e!r}")

    def body(self) -> None:
        raise NotImplementedError


class ProducerBase(Client):
    """Paced at `rate` records/s; `produced` counts records handed to the client."""

    def __init__(self, name: str, bootstrap: str, topic: str, partitions: int, rate: float):
        super().__init__(name)
        self.bootstrap, self.topic, self.partitions, self.rate = bootstrap, topic, partitions, rate
        self.acked: list[Ack] = []
        self.failed: list[tuple[str, str]] = []
        self.produced = 0
        self.unflushed: int | None = None

    def on_ack(self, partition: int, offset: int, value: str) -> None:
        self.acked.append(Ack(partition, offset, value, time.monotonic()))

    def body(self) -> None:
        seq, next_at = 0, time.monotonic()
        while not self.stopping.is_set():
            if self.send(f"{self.name}-{seq}", seq % self.partitions):
                seq += 1
                self.produced = seq
                next_at = max(next_at + 1.0 / self.rate, time.monotonic() - 1.0)  # no burst after a stall
                self.idle(max(0.0, next_at - time.monotonic()))
            else:
                self.idle(0.05)
        self.unflushed = self.finish()

    def send(self, value: str, partition: int) -> bool:
        raise NotImplementedError

    def idle(self, seconds: float) -> None:
        raise NotImplementedError

    def finish(self) -> int:
        """Flushes (bounded); returns how many records are still unanswered."""
        raise NotImplementedError


class ConfluentProducer(ProducerBase):
    def body(self) -> None:
        self.p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 5, "message.timeout.ms": 300000, "request.timeout.ms": 10000,
                           "error_cb": self.on_error, **FAST_RECONNECT})
        super().body()

    def on_error(self, err) -> None:
        if err.fatal():
            self.errors.append(f"fatal: {err}")
            log(f"{self.name}: fatal error {err}")
            self.stopping.set()  # a fatal idempotent producer can send nothing more

    def delivered(self, err, msg) -> None:
        if err is None:
            self.on_ack(msg.partition(), msg.offset(), msg.value().decode())
        else:
            self.failed.append((msg.value().decode(), str(err)))

    def send(self, value: str, partition: int) -> bool:
        try:
            self.p.produce(self.topic, value=value.encode(), partition=partition, on_delivery=self.delivered)
            return True
        except BufferError:
            return False

    def idle(self, seconds: float) -> None:
        self.p.poll(min(seconds, 0.1) if seconds > 0 else 0)

    def finish(self) -> int:
        left = self.p.flush(120)
        self.p = None  # destroyed here, not later against a cluster being torn down
        return left


class KafkaPythonProducer(ProducerBase):
    def body(self) -> None:
        self.p = KafkaProducer(bootstrap_servers=self.bootstrap.split(","), acks="all", enable_idempotence=True,
                               linger_ms=5, delivery_timeout_ms=300000, request_timeout_ms=10000,
                               reconnect_backoff_ms=50, reconnect_backoff_max_ms=500, retry_backoff_ms=50,
                               max_block_ms=10000)
        self.pending = 0
        self.lock = threading.Lock()
        super().body()

    def send(self, value: str, partition: int) -> bool:
        try:
            future = self.p.send(self.topic, value=value.encode(), partition=partition)
        except Exception as e:  # buffer full (max_block_ms) or metadata unavailable: try again
            self.note(f"send: {e!r}")
            return False
        with self.lock:
            self.pending += 1
        future.add_callback(lambda md, v=value: self.answered(v, md, None))
        future.add_errback(lambda exc, v=value: self.answered(v, None, exc))
        return True

    def answered(self, value: str, md, exc) -> None:
        with self.lock:
            self.pending -= 1
        if exc is None:
            self.on_ack(md.partition, md.offset, value)
        else:
            self.failed.append((value, repr(exc)))

    def note(self, error: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(error)

    def idle(self, seconds: float) -> None:
        time.sleep(seconds)

    def finish(self) -> int:
        try:
            self.p.flush(timeout=120)
        except Exception as e:
            self.note(f"flush: {e!r}")
        self.p.close(timeout=5)
        return self.pending


class GroupMember(Client):
    """Consumes everything from the beginning and commits its positions synchronously
    after each batch; records every read and every confirmed commit."""

    def __init__(self, name: str, bootstrap: str, topic: str, group: str):
        super().__init__(name)
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.reads: list[Read] = []
        self.commits: list[Commit] = []
        self.last_commit = time.monotonic()

    def body(self) -> None:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "fetch.wait.max.ms": 200,
                      "error_cb": self.on_error, **FAST_RECONNECT})
        try:
            c.subscribe([self.topic])
            while not self.stopping.is_set():
                positions = self.consume(c)
                if positions:
                    self.commit(c, positions)
        finally:
            c.close()

    def on_error(self, err) -> None:
        if err.fatal():
            self.errors.append(f"fatal: {err}")

    def consume(self, c: Consumer) -> dict[int, int]:
        positions = {}
        for m in c.consume(500, 0.5):
            if m.error() is not None:
                if m.error().fatal():
                    raise KafkaException(m.error())
                continue
            self.reads.append(Read(m.partition(), m.offset(), m.value().decode(), self.name))
            positions[m.partition()] = m.offset() + 1
        return positions

    def commit(self, c: Consumer, positions: dict[int, int]) -> None:
        start = time.monotonic()
        try:
            result = c.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in positions.items()],
                              asynchronous=False)
        except KafkaException:
            return  # coordinator moving or a rebalance: the next batch commits further
        end = time.monotonic()
        for tp in result:
            if tp.error is None:
                self.commits.append(Commit(tp.partition, tp.offset, start, end, self.name))
                self.last_commit = end


class OffsetSampler(Client):
    """Asks the group coordinator for the group's committed offsets every `every` s, with
    OffsetFetch from a consumer that shares the group id but never joins it (not with
    AdminClient.list_consumer_group_offsets: librdkafka 2.x aborts on an assertion,
    `eonce->refcnt > 0` in rd_kafka_admin_coord_response_parse, when the coordinator
    moves under it)."""

    def __init__(self, bootstrap: str, topic: str, group: str, partitions: int, every: float = 1.0):
        super().__init__("sampler")
        self.bootstrap, self.topic, self.group, self.partitions, self.every = bootstrap, topic, group, partitions, every
        self.samples: list[tuple[float, int, int]] = []  # (time answered, partition, offset)

    def body(self) -> None:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
                      **FAST_RECONNECT})
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        try:
            while not self.stopping.wait(self.every):
                try:
                    answer = c.committed(tps, timeout=5)
                except KafkaException:
                    continue
                now = time.monotonic()
                self.samples += [(now, tp.partition, tp.offset) for tp in answer if tp.error is None and tp.offset >= 0]
        finally:
            c.close()


class Workload:
    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: float, group: str = "gchaos-group"):
        self.topic, self.partitions, self.group = topic, partitions, group
        self.producers: list[ProducerBase] = [
            ConfluentProducer("ck1", bootstrap, topic, partitions, rate),
            ConfluentProducer("ck2", bootstrap, topic, partitions, rate),
            KafkaPythonProducer("kp1", bootstrap, topic, partitions, rate),
        ]
        self.members = [GroupMember(f"m{i}", bootstrap, topic, group) for i in (1, 2)]
        self.sampler = OffsetSampler(bootstrap, topic, group, partitions)
        self.job: Client | None = None  # the transactional job (txn.py), with --txn

    @property
    def clients(self) -> list[Client]:
        return [*self.producers, *self.members, self.sampler, *([self.job] if self.job else [])]

    def start(self) -> None:
        for c in self.clients:
            c.start()

    def acked(self) -> list[Ack]:
        return [a for p in self.producers for a in list(p.acked)]

    def acks_per_partition(self) -> list[int]:
        counts = [0] * self.partitions
        for a in self.acked():
            counts[a.partition] += 1
        return counts

    def stop_producers(self, timeout: float = 150.0) -> list[str]:
        """Stops and flushes the producers; returns the names of those still stuck."""
        for p in self.producers:
            p.stopping.set()
        for p in self.producers:
            p.join(timeout)
        return [p.name for p in self.producers if p.is_alive()]

    def committed(self) -> dict[int, int]:
        """The highest offset the members had confirmed per partition."""
        best: dict[int, int] = {}
        for m in self.members:
            for c in list(m.commits):
                best[c.partition] = max(best.get(c.partition, -1), c.offset)
        return best

    def stop_consumers(self) -> None:
        readers = [*self.members, self.sampler, *([self.job] if self.job else [])]
        for c in readers:
            c.stopping.set()
        for c in readers:
            c.join(30)

    def reads(self) -> list[Read]:
        return [r for m in self.members for r in list(m.reads)]

    def commits(self) -> list[Commit]:
        return [c for m in self.members for c in list(m.commits)]
