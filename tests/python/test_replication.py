"""Partition replication (cluster part 2) in a three-node cluster of real `gregor serve`
processes, checked against Kafka's ISR semantics with confluent-kafka.

Contract, one test each:

- `test_acks_all_survives_leader_sigkill`: a record acknowledged with acks=all (min ISR 2)
  is on every in-sync replica, so SIGKILL of a partition's leader loses none of them: the
  controller elects a new leader from the ISR once the dead broker is fenced, the
  idempotent producer carries on there without duplicates or reordering (producer state
  is replicated with the log), and every acked record is read back once, at the offset it
  was acknowledged with, in production order. The producer stalls for seconds, not more.
- `test_not_enough_replicas`: acks=all needs only the ISR (one broker down: ISR 2 >= min
  2, produce succeeds); once the ISR is smaller than the topic's `min.insync.replicas`
  (altered at run time) acks=all is refused with NOT_ENOUGH_REPLICAS and nothing is
  appended, while acks=1 still succeeds but stays above the high watermark, which stands
  still under the minimum (KIP-966 part 1); when the replica is back in sync, the high
  watermark moves past those records and acks=all succeeds again.
- `test_follower_rejoins_isr`: a dead follower leaves the ISR (fencing or
  `replica.lag.time.max.ms`), acks=all keeps working without it, and after a restart it
  catches up from the leader and rejoins the ISR; its own log then holds the records.
- `test_group_consumes_through_failover`: a consumer group that commits synchronously
  keeps consuming while a leader fails over (fetches and commits move to the new leaders
  and coordinator, `__consumer_offsets` being replicated too); every acked record is
  consumed at least once and the committed offsets end at the log end offsets.
- `test_transactions_survive_leader_loss`: transactions over partitions led by different
  brokers (markers sent with WriteTxnMarkers, produces verified with the remote
  coordinator) keep committing through a leader SIGKILL; read_committed sees each
  committed record once.
- `test_transactional_offsets_with_coordinators_on_different_brokers`:
  send_offsets_to_transaction when the group's and the transaction's coordinators are
  on different brokers (TxnOffsetCommit verified with the remote transaction coordinator).
- `test_preferred_leader_election_moves_leadership_back`: ElectLeaders (preferred) makes
  the restarted first replica lead again while an idempotent producer writes, losing no
  acknowledged record.

Nodes are combined broker+controller voters, so killing one keeps the metadata quorum.
Failover is made fast with `--set broker.session.timeout.ms=3000`,
`broker.heartbeat.interval.ms=500` and `replica.lag.time.max.ms=5000`.
"""
from __future__ import annotations

import struct
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from gregor_support import FAST_RECONNECT, admin, assert_delivered, confluent_producer, produce_confluent, read_confluent
from test_cluster import active_controller, free_port_run
from test_groups import end_offsets  # {partition: high watermark}

pytestmark = pytest.mark.timeout(120)  # each should take well under a minute

ALL = [1, 2, 3]
FAILOVER = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "5000",
    "group.initial.rebalance.delay.ms": "0",
}
MAX_ACK_GAP = 15.0  # seconds without an ack on a partition that count as "stuck"


# ---------------------------------------------------------------- cluster fixture


class Cluster:
    """Three combined nodes (ids 1-3) on a run of six free ports below the ephemeral range
    (restarts reuse them): node i serves clients on base+2(i-1), its controller on the next."""

    def __init__(self, broker_factory, prefix: str, sets: dict[str, str]):
        base = free_port_run(6)
        voters = ",".join(f"{i}@127.0.0.1:{base + 2 * i - 1}" for i in ALL)
        self.nodes = {}
        for i in ALL:
            b = broker_factory(f"{prefix}{i}")  # registered at once: teardown kills it whatever happens
            b.port = base + 2 * (i - 1)
            b.sets = dict(sets)
            b.extra_args = ["--node-id", str(i), "--controller-listen", f"127.0.0.1:{base + 2 * i - 1}",
                            "--controller-quorum", voters]
            self.nodes[i] = b
        spawned = []
        for b in self.nodes.values():  # all together: each waits for the quorum before its banner
            proc, out, err = b.spawn(b.command())
            b.proc = proc
            spawned.append((b, proc, out, err))
        for b, proc, out, err in spawned:
            b._wait_banner(proc, out, err, 60)
        self.bootstrap = ",".join(b.bootstrap for b in self.nodes.values())
        self.admin = admin(self.bootstrap)  # kept for the test's lifetime (futures need it alive)
        wait_until(self.broker_ids, lambda ids: ids == ALL, 20, "all three brokers registered")

    def broker_ids(self) -> list[int]:
        try:
            return sorted(self.admin.list_topics(timeout=5).brokers)
        except KafkaException as e:
            return [str(e)]

    def kill(self, node: int) -> None:
        self.nodes[node].kill()  # SIGKILL: no controlled shutdown, the session timeout fences it

    def restart(self, node: int) -> None:
        self.nodes[node].start(timeout=60)  # same ports, data dir, id and --set keys

    def create_topic(self, name: str, partitions: int, config: dict[str, str] | None = None) -> None:
        """RF 3; waits until every partition has a leader and all three replicas in the ISR."""
        topic = NewTopic(name, num_partitions=partitions, replication_factor=3, config=config or {})
        self.admin.create_topics([topic], request_timeout=15)[name].result(20)
        for p in range(partitions):
            wait_until(lambda: isr_of(self.admin, name, p), lambda isr: isr == ALL, 20, f"{name}-{p} fully in sync")
            assert sorted(partition_metadata(self.admin, name, p).replicas) == ALL


@pytest.fixture
def replicated_cluster(broker_factory):
    """Starts a three-node cluster with fast failover: `replicated_cluster(prefix, **sets)`.
    Every node is made by broker_factory (conftest), which SIGKILLs each process it made
    at teardown, also when the test or a start failed, then prints each node's stderr
    tail on failure; data dirs are under tmp_path."""
    return lambda prefix, **sets: Cluster(broker_factory, prefix, {**FAILOVER, **sets})


# ---------------------------------------------------------------- helpers


def wait_until(probe, ok, timeout: float, what: str):
    """Calls probe() until ok(value); returns that value, fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout} s (last: {value!r})")
        time.sleep(0.2)


def partition_metadata(a, topic: str, partition: int, timeout: float = 15.0):
    """The partition's Metadata entry (leader, replicas, isrs), retried while the broker
    asked is down or the topic is not known yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            t = a.list_topics(topic=topic, timeout=5).topics.get(topic)
            if t is not None and t.error is None and partition in t.partitions:
                return t.partitions[partition]
        except KafkaException:
            pass
        assert time.monotonic() < deadline, f"no metadata for {topic}-{partition} within {timeout} s"
        time.sleep(0.2)


def leader_of(a, topic: str, partition: int) -> int:
    """The partition's leader as Metadata shows it (-1: none)."""
    return partition_metadata(a, topic, partition).leader


def isr_of(a, topic: str, partition: int) -> list[int]:
    return sorted(partition_metadata(a, topic, partition).isrs)


def follower_to_kill(cl: Cluster, topic: str) -> int:
    """A follower of partition 0 that is not the active controller (no election needed)."""
    leader, controller = leader_of(cl.admin, topic, 0), active_controller(cl.bootstrap)
    return next(i for i in ALL if i not in (leader, controller))


def fail_over(cl: Cluster, topic: str, partition: int = 0, down: float = 5.0) -> int:
    """SIGKILLs the leader of `partition`, waits until the controller elected another one
    from the ISR, keeps the old leader down `down` s in all, restarts it and waits until
    it is back in the ISR. Returns the killed node's id."""
    old = leader_of(cl.admin, topic, partition)
    isr_before = isr_of(cl.admin, topic, partition)
    assert old in ALL and old in isr_before, (old, isr_before)
    killed_at = time.monotonic()
    cl.kill(old)
    new = wait_until(lambda: leader_of(cl.admin, topic, partition), lambda l: l not in (-1, old), 20,
                     f"a new leader of {topic}-{partition} elected after node {old} was killed")
    assert new in isr_before, f"leader {new} was not in the ISR {isr_before} (no unclean election)"
    time.sleep(max(0.0, down - (time.monotonic() - killed_at)))
    cl.restart(old)
    wait_until(lambda: isr_of(cl.admin, topic, partition), lambda isr: isr == ALL, 30,
               f"node {old} back in the ISR of {topic}-{partition}")
    return old


def log_end_offset(partition_dir: Path) -> int:
    """The offset after the last whole batch in a partition's segment files, read from
    the record batch v2 headers (baseOffset int64, batchLength int32, ..., lastOffsetDelta
    int32 at byte 23) as Kafka lays them out on disk."""
    end = 0
    for segment in sorted(partition_dir.glob("*.log")):
        data, pos = segment.read_bytes(), 0
        while pos + 27 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length <= 0 or pos + 12 + length > len(data):
                break  # a torn or still-being-written tail
            end = max(end, base + struct.unpack_from(">i", data, pos + 23)[0] + 1)
            pos += 12 + length
    return end


class BackgroundProducer(threading.Thread):
    """An idempotent acks=all producer writing "k-{i}" to partition i % partitions (key
    "p{partition}") until stopped, then flushing; records each acked (partition, offset,
    value, time). Delivery reports run on this thread (in poll/flush)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.stopping = threading.Event()
        self.acked: list[tuple[int, int, str, float]] = []
        self.failed: list[tuple[str, str]] = []
        self.fatal: list[str] = []
        self.produced = 0
        self.remaining: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                          "linger.ms": 5, "message.timeout.ms": 60000, "error_cb": self._on_error, **FAST_RECONNECT})
            i = 0
            while not self.stopping.is_set():
                part = i % self.partitions
                try:
                    p.produce(self.topic, key=f"p{part}", value=f"k-{i}", partition=part, on_delivery=self._delivered)
                    i += 1
                except BufferError:
                    p.poll(0.1)
                    continue
                p.poll(0)
                time.sleep(0.003)
            self.produced = i
            self.remaining = p.flush(60)
        except BaseException as e:  # re-raised by finish()
            self.error = e

    def _on_error(self, err) -> None:
        if err.fatal():
            self.fatal.append(str(err))

    def _delivered(self, err, msg) -> None:
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value().decode(), time.monotonic()))
        else:
            self.failed.append((msg.value().decode(), str(err)))

    def acks_on(self, partition: int) -> int:
        return sum(1 for a in list(self.acked) if a[0] == partition)

    def finish(self) -> None:
        """Stops, waits for the flush and checks that everything was acked without stalls."""
        self.stopping.set()
        self.join(90)
        assert not self.is_alive(), "the producer's flush did not return"
        if self.error is not None:
            raise self.error
        assert not self.fatal, f"fatal producer errors: {self.fatal}"
        assert self.remaining == 0, f"{self.remaining} records undelivered 60 s after the producer stopped"
        assert not self.failed, f"{len(self.failed)} deliveries failed, e.g. {self.failed[:5]}"
        assert len(self.acked) == self.produced
        for part in range(self.partitions):
            times = [t for p, _, _, t in self.acked if p == part]
            gap = max((b - a for a, b in zip(times, times[1:])), default=0.0)
            assert gap <= MAX_ACK_GAP, f"partition {part}: no ack for {gap:.1f} s (the producer was stuck)"


def index(value: str) -> int:
    return int(value.split("-")[1])


# ---------------------------------------------------------------- tests


def test_acks_all_survives_leader_sigkill(replicated_cluster):
    cl = replicated_cluster("ha")
    cl.create_topic("ha", 3, {"min.insync.replicas": "2"})
    producer = BackgroundProducer(cl.bootstrap, "ha", 3)
    producer.start()
    try:
        wait_until(lambda: [producer.acks_on(p) for p in range(3)], lambda n: min(n) > 0, 30, "acks on every partition")
        first = fail_over(cl, "ha", 0)
        time.sleep(2)
        second = fail_over(cl, "ha", 0)  # whoever leads now, possibly on another node
        acked_before = len(producer.acked)
        time.sleep(2)
        assert len(producer.acked) > acked_before, "no acks after the second restart"
    finally:
        producer.stopping.set()
    producer.finish()
    print(f"killed {first} then {second}; {producer.produced} produced and acked")

    msgs = read_confluent(cl.bootstrap, "ha", {p: 0 for p in range(3)}, timeout=60)
    counts = Counter(m.value.decode() for m in msgs)
    dups = sorted((v for v, c in counts.items() if c > 1), key=index)
    assert not dups, f"{len(dups)} values stored more than once, e.g. {dups[:10]}"
    missing = [v for _, _, v, _ in producer.acked if v not in counts]
    assert not missing, f"{len(missing)} acknowledged values lost, e.g. {missing[:10]}"
    stored = {(m.partition, m.offset): m.value.decode() for m in msgs}
    moved = [(p, o, v, stored.get((p, o))) for p, o, v, _ in producer.acked if stored.get((p, o)) != v]
    assert not moved, f"acknowledged at one offset, stored at another: {moved[:10]}"
    for p in range(3):
        in_log = [index(m.value.decode()) for m in sorted((m for m in msgs if m.partition == p), key=lambda m: m.offset)]
        assert all(i % 3 == p for i in in_log), f"partition {p} holds another partition's values"
        assert in_log == sorted(in_log), f"partition {p}: values out of production order"


def test_not_enough_replicas(replicated_cluster):
    cl = replicated_cluster("ner")
    cl.create_topic("ner", 1, {"min.insync.replicas": "2"})
    victim = follower_to_kill(cl, "ner")
    cl.kill(victim)
    # acks=all waits for the ISR only: it shrinks to the two live replicas, >= min 2.
    assert_delivered(produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "ner",
                                       [{"partition": 0, "value": f"two-of-three-{i}"} for i in range(10)]))
    survivors = [i for i in ALL if i != victim]
    wait_until(lambda: isr_of(cl.admin, "ner", 0), lambda isr: isr == survivors, 20, f"node {victim} out of the ISR")

    resource = ConfigResource(ResourceType.TOPIC, "ner", incremental_configs=[
        ConfigEntry("min.insync.replicas", "3", incremental_operation=AlterConfigOpType.SET)])
    cl.admin.incremental_alter_configs([resource])[resource].result(15)
    # retries=0: the broker's answer is the delivery error. The new minimum reaches the
    # leader through the metadata log, so a few records may still get in before.
    strict = confluent_producer(cl.bootstrap, acks="all", retries=0, **{"message.timeout.ms": 5000})
    deadline, attempt, refused = time.monotonic() + 20, 0, None
    while refused is None:
        assert time.monotonic() < deadline, "acks=all kept succeeding with ISR 2 < min.insync.replicas 3"
        d = produce_confluent(strict, "ner", [{"partition": 0, "value": f"refused-{attempt}"}])[0]
        if d.error is not None:
            refused = (f"refused-{attempt}", d.error)
        else:
            time.sleep(0.3)
        attempt += 1
    value, err = refused
    # Kafka checks the ISR before appending: NOT_ENOUGH_REPLICAS (19). A timeout is
    # tolerated (the brief's "or a timeout whose last error was it").
    assert err.code() in (KafkaError.NOT_ENOUGH_REPLICAS, KafkaError._MSG_TIMED_OUT), err

    # acks=1 does not look at min.insync.replicas.
    leader_only = produce_confluent(confluent_producer(cl.bootstrap, acks=1), "ner",
                                    [{"partition": 0, "value": f"leader-only-{i}"} for i in range(10)])
    assert_delivered(leader_only)
    # KIP-966 part 1: under min.insync.replicas the high watermark stands still, so the
    # acks=1 records stay invisible to consumers until the ISR is back to three.
    last = max(d.offset for d in leader_only)
    assert end_offsets(cl.bootstrap, "ner", 1)[0] <= last, "the high watermark moved with ISR < min.insync"
    cl.restart(victim)
    wait_until(lambda: isr_of(cl.admin, "ner", 0), lambda isr: isr == ALL, 30, f"node {victim} back in the ISR")
    wait_until(lambda: end_offsets(cl.bootstrap, "ner", 1)[0], lambda hw: hw > last, 15, "acks=1 records committed")
    values = [m.value.decode() for m in read_confluent(cl.bootstrap, "ner", {0: 0})]
    assert values[-10:] == [f"leader-only-{i}" for i in range(10)]
    if err.code() == KafkaError.NOT_ENOUGH_REPLICAS:
        assert value not in values, "a record refused with NOT_ENOUGH_REPLICAS was appended"
    assert_delivered(produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "ner",
                                       [{"partition": 0, "value": "three-of-three"}]))


def test_follower_rejoins_isr(replicated_cluster):
    cl = replicated_cluster("rj")
    cl.create_topic("rejoin", 1, {"min.insync.replicas": "2"})
    leader = leader_of(cl.admin, "rejoin", 0)
    follower = follower_to_kill(cl, "rejoin")
    cl.kill(follower)

    deliveries = produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "rejoin",
                                   [{"partition": 0, "key": f"k{i}", "value": f"v{i}"} for i in range(1000)])
    assert_delivered(deliveries)
    assert sorted(d.offset for d in deliveries) == list(range(1000))
    wait_until(lambda: isr_of(cl.admin, "rejoin", 0), lambda isr: follower not in isr, 20,
               f"follower {follower} removed from the ISR")
    assert leader_of(cl.admin, "rejoin", 0) == leader, "a follower's death must not move the leader"

    cl.restart(follower)
    wait_until(lambda: isr_of(cl.admin, "rejoin", 0), lambda isr: isr == ALL, 30, f"follower {follower} back in the ISR")
    # In the ISR means caught up: the follower's own segment files hold the 1000 records.
    wait_until(lambda: log_end_offset(cl.nodes[follower].data_dir / "rejoin-0"), lambda end: end >= 1000, 10,
               f"follower {follower}'s log at offset 1000")
    values = [m.value.decode() for m in read_confluent(cl.bootstrap, "rejoin", {0: 0})]
    assert values == [f"v{i}" for i in range(1000)]


def test_group_consumes_through_failover(replicated_cluster):
    cl = replicated_cluster("grp", **{"offsets.topic.num.partitions": "3"})
    cl.create_topic("grp", 3, {"min.insync.replicas": "2"})
    group = "failover-group"
    consumed: list[str] = []
    committed: dict[int, int] = {}
    ends: dict[int, int] = {}  # filled in once the producer stopped
    stop, errors = threading.Event(), []

    def member() -> None:
        """Consumes a batch, commits its positions synchronously; a failed commit is
        retried after the next batch (or the next empty poll)."""
        c = Consumer({"bootstrap.servers": cl.bootstrap, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100, **FAST_RECONNECT})
        positions: dict[int, int] = {}
        try:
            c.subscribe(["grp"])
            while not stop.is_set():
                for m in c.consume(500, 0.5):
                    if m.error():
                        if m.error().fatal():
                            raise KafkaException(m.error())
                        continue
                    consumed.append(m.value().decode())
                    positions[m.partition()] = m.offset() + 1
                todo = {p: o for p, o in positions.items() if committed.get(p) != o}
                if todo:
                    try:
                        result = c.commit(offsets=[TopicPartition("grp", p, o) for p, o in todo.items()],
                                          asynchronous=False)
                        committed.update({tp.partition: tp.offset for tp in result if tp.error is None})
                    except KafkaException:
                        pass  # coordinator moving or rebalancing: retried
                if ends and all(committed.get(p, 0) == o for p, o in ends.items()):
                    return
        except BaseException as e:
            errors.append(e)
        finally:
            c.close()

    consumer = threading.Thread(target=member, daemon=True)
    producer = BackgroundProducer(cl.bootstrap, "grp", 3)
    consumer.start()
    producer.start()
    try:
        wait_until(lambda: len(consumed), lambda n: n > 0, 30, "the group consuming")
        fail_over(cl, "grp", 0)
        time.sleep(2)
        producer.finish()
        ends.update(end_offsets(cl.bootstrap, "grp", 3))
        consumer.join(60)
        assert not errors, f"the consumer failed: {errors[0]!r}"
        assert not consumer.is_alive(), f"committed {committed} never reached the end offsets {ends}"
    finally:
        stop.set()
        producer.stopping.set()

    seen = set(consumed)
    missing = [v for _, _, v, _ in producer.acked if v not in seen]
    assert not missing, f"{len(missing)} acked values never consumed, e.g. {missing[:10]}"
    check = Consumer({"bootstrap.servers": cl.bootstrap, "group.id": group, **FAST_RECONNECT})
    try:
        stored = check.committed([TopicPartition("grp", p) for p in range(3)], timeout=15)
    finally:
        check.close()
    assert {tp.partition: tp.offset for tp in stored} == ends


def test_transactions_survive_leader_loss(replicated_cluster):
    """Transactions over partitions led by different brokers (markers go to each leader
    with WriteTxnMarkers) keep committing while a partition leader is killed: a
    read_committed consumer sees every committed transaction exactly once and nothing of
    an aborted one."""
    cl = replicated_cluster("tx", **{"transaction.state.log.num.partitions": "3"})
    cl.create_topic("tx", 3, {"min.insync.replicas": "2"})
    committed, errors, stop = [], [], threading.Event()

    def transactions() -> None:
        p = Producer({"bootstrap.servers": cl.bootstrap, "transactional.id": "failover-txn",
                      "transaction.timeout.ms": 60000, **FAST_RECONNECT})
        try:
            p.init_transactions(60)
            n = 0
            while not stop.is_set():
                p.begin_transaction()
                for part in range(3):
                    p.produce("tx", value=f"t{n}-p{part}", partition=part)
                try:
                    p.commit_transaction(60)
                    committed.append(n)
                except KafkaException as e:
                    if not e.args[0].txn_requires_abort():
                        raise
                    p.abort_transaction(60)
                n += 1
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=transactions, daemon=True)
    worker.start()
    try:
        wait_until(lambda: len(committed), lambda c: c >= 5, 60, "transactions committing")
        fail_over(cl, "tx", 0)
        done = len(committed)
        wait_until(lambda: len(committed), lambda c: c >= done + 5, 60, "transactions committing after failover")
    finally:
        stop.set()
        worker.join(90)
    assert not errors, f"the transactional producer failed: {errors[0]!r}"
    counts = Counter(read_committed_values(cl.bootstrap, "tx", 3))
    expected = {f"t{n}-p{part}" for n in committed for part in range(3)}
    assert not [v for v, c in counts.items() if c > 1], "a committed record read twice"
    assert set(counts) == expected, (sorted(expected - set(counts))[:10], sorted(set(counts) - expected)[:10])


def java_hash_partition(key: str, partitions: int) -> int:
    """Kafka's coordinator partition of a group or transactional id: Utils.abs(String.hashCode) % n."""
    h = 0
    for ch in key.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= (1 << 31) else h
    return (h & 0x7FFFFFFF) % partitions


def test_transactional_offsets_with_coordinators_on_different_brokers(replicated_cluster):
    """send_offsets_to_transaction when the group's coordinator is not the transaction's:
    the group coordinator checks with the transaction coordinator on the other broker
    that the transaction added the group's __consumer_offsets partition (KIP-890), and
    the consume-transform-produce commits records and offsets together (this hung,
    retrying NOT_COORDINATOR, when the check was asked only of the local broker)."""
    internal = {"transaction.state.log.num.partitions": "3", "offsets.topic.num.partitions": "3"}
    cl = replicated_cluster("txg", **internal)
    cl.create_topic("txg-in", 1)
    cl.create_topic("txg-out", 1)
    produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "txg-in",
                      [{"value": f"v{i}".encode(), "partition": 0} for i in range(20)])
    p = Producer({"bootstrap.servers": cl.bootstrap, "transactional.id": "txg-id", **FAST_RECONNECT})
    p.init_transactions(30)
    txn_leader = leader_of(cl.admin, "__transaction_state", java_hash_partition("txg-id", 3))
    warm = Consumer({"bootstrap.servers": cl.bootstrap, "group.id": "txg-warmup", **FAST_RECONNECT})
    warm.subscribe(["txg-in"])  # its FindCoordinator creates __consumer_offsets

    def offsets_topic_leaders() -> list[int]:
        warm.poll(0.2)
        t = cl.admin.list_topics(timeout=5).topics.get("__consumer_offsets")
        return [] if t is None or t.error else [t.partitions[i].leader for i in sorted(t.partitions)]
    wait_until(offsets_topic_leaders, lambda ls: len(ls) == 3 and min(ls) >= 0, 30, "__consumer_offsets led")
    warm.close()
    group = next(g for g in (f"txg-group-{i}" for i in range(100))
                 if leader_of(cl.admin, "__consumer_offsets", java_hash_partition(g, 3)) != txn_leader)
    c = Consumer({"bootstrap.servers": cl.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed", **FAST_RECONNECT})
    c.subscribe(["txg-in"])
    try:
        seen = []
        deadline = time.monotonic() + 45
        while len(seen) < 20 and time.monotonic() < deadline:
            batch = [m for m in c.consume(20, 1.0) if m.error() is None]
            if not batch:
                continue
            p.begin_transaction()
            for m in batch:
                p.produce("txg-out", value=m.value(), partition=0)
            p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 20)
            p.commit_transaction(20)
            seen.extend(m.value() for m in batch)
        assert len(seen) == 20, f"consumed {len(seen)} of 20"
        committed = c.committed([TopicPartition("txg-in", 0)], timeout=10)
        assert committed[0].offset == 20, committed
    finally:
        c.close()
    assert sorted(read_committed_values(cl.bootstrap, "txg-out", 1)) == sorted(f"v{i}" for i in range(20))


def read_committed_values(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> list[str]:
    """Every committed value, read with isolation.level=read_committed until each
    partition's position reached its high watermark (markers take offsets but are never
    returned, so the position, not the last message, says when a partition is done)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "read-committed-check", "enable.auto.commit": False,
                  "isolation.level": "read_committed", **FAST_RECONNECT})
    try:
        tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
        c.assign(tps)
        values, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in c.consume(500, 0.5):
                if m.error() is None:
                    values.append(m.value().decode())
            positions = {tp.partition: tp.offset for tp in c.position([TopicPartition(topic, p) for p in range(partitions)])}
            if all(positions[p] >= ends[p] for p in range(partitions)):
                return values
        raise AssertionError(f"{topic} not read to {ends} within {timeout} s")
    finally:
        c.close()


def test_preferred_leader_election_moves_leadership_back(replicated_cluster):
    """After a failover the restarted broker is back in the ISR but leads nothing; a
    preferred election (ElectLeaders through confluent-kafka's AdminClient, as
    kafka-leader-election.sh does) makes each partition's first replica lead again while
    an idempotent acks=all producer writes, loses nothing of what was acknowledged (each
    record once, at its acknowledged offset), and a second election is
    ELECTION_NOT_NEEDED."""
    from confluent_kafka import ElectionType

    cl = replicated_cluster("el")
    cl.create_topic("el", 1, {"min.insync.replicas": "2"})
    preferred = partition_metadata(cl.admin, "el", 0).replicas[0]
    producer = BackgroundProducer(cl.bootstrap, "el", 1)
    producer.start()
    try:
        wait_until(lambda: producer.acks_on(0), lambda n: n > 50, 30, "acks before the failover")
        assert fail_over(cl, "el", 0) == preferred
        assert leader_of(cl.admin, "el", 0) != preferred
        tp = TopicPartition("el", 0)
        acked_before = producer.acks_on(0)
        results = cl.admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(30)
        assert results[tp] is None, results
        wait_until(lambda: leader_of(cl.admin, "el", 0), lambda l: l == preferred, 15, "the preferred replica leading")
        wait_until(lambda: producer.acks_on(0), lambda n: n > acked_before + 50, 30, "acks after the election")
        again = cl.admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(30)
        assert again[tp] is not None and again[tp].code() == KafkaError.ELECTION_NOT_NEEDED, again
    finally:
        producer.stopping.set()
    producer.finish()
    stored = {m.offset: m.value.decode() for m in read_confluent(cl.bootstrap, "el", {0: 0}, timeout=60)}
    assert len(set(stored.values())) == len(stored), "a value stored twice"
    wrong = [(o, v) for _, o, v, _ in producer.acked if stored.get(o) != v]
    assert not wrong, f"{len(wrong)} acknowledged records not at their offset, e.g. {wrong[:5]}"