"""A three-node cluster of real `gregor serve` processes (cluster part 1: metadata quorum,
registration, placement).

Contract: three nodes started with the same `--controller-quorum` and no format step form
one cluster (one cluster id); every broker lists all three and the same controller;
topics created through any broker are visible from all, with replicas and leaders
spread; confluent-kafka produces to the leaders and consumes in a group through any
bootstrap address; SIGKILL of the active controller elects another within seconds and
admin calls through the survivors succeed (after the client's retries); the killed node
rejoins on restart and sees what changed meanwhile; a paused broker (SIGSTOP) is fenced
after `broker.session.timeout.ms` and unfenced when it heartbeats again (KIP-631).
`gregor local-cluster` starts and stops such a cluster. Partition data is not replicated yet (cluster part 2).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import broker_binary


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_cluster(broker_factory, prefix: str, sets: dict[str, str] | None = None) -> dict:
    """Three combined nodes (broker + controller) started together, as the same
    `--controller-quorum` lets them: each start waits for the quorum to agree on the
    cluster id. Returns {node id: Broker}."""
    ports = free_ports(6)
    voters = ",".join(f"{i + 1}@127.0.0.1:{ports[2 * i + 1]}" for i in range(3))
    nodes = {}
    for i in range(3):
        b = broker_factory(f"{prefix}{i + 1}")
        b.port = ports[2 * i]
        b.sets = dict(sets or {})
        b.extra_args = ["--node-id", str(i + 1), "--controller-listen", f"127.0.0.1:{ports[2 * i + 1]}",
                        "--controller-quorum", voters]
        nodes[i + 1] = b
    procs = [b.spawn(b.command()) for b in nodes.values()]
    for b, (proc, out, err) in zip(nodes.values(), procs):
        b.proc = proc
        b._wait_banner(proc, out, err, 60)
    return nodes


@pytest.fixture
def cluster(broker_factory):
    return start_cluster(broker_factory, "node")


def bootstrap(nodes: dict, only=None) -> str:
    return ",".join(b.bootstrap for i, b in nodes.items() if only is None or i in only)


def active_controller(servers: str) -> int:
    """The quorum's leader, from DescribeQuorum (`gregor cluster quorum`): brokers give
    clients an alive broker as "controller", as Kafka's KRaft brokers do."""
    out = subprocess.run([str(broker_binary()), "--bootstrap-server", servers, "cluster", "quorum", "-o", "json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["leader_id"]


def create_with_retries(admin: AdminClient, topic: NewTopic, deadline: float) -> None:
    while True:
        try:
            admin.create_topics([topic], request_timeout=5)[topic.topic].result(10)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_three_nodes_form_one_cluster_and_place_topics_across_brokers(cluster):
    assert len({b.cluster_id for b in cluster.values()}) == 1
    leaders = set()
    for i, b in cluster.items():
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        desc = admin.describe_cluster(request_timeout=10).result(15)
        assert sorted(n.id for n in desc.nodes) == [1, 2, 3]
        leaders.add(active_controller(b.bootstrap))
    assert len(leaders) == 1 and leaders <= {1, 2, 3}, leaders

    admin = AdminClient({"bootstrap.servers": cluster[2].bootstrap})
    admin.create_topics([NewTopic("orders", 6, 3)])["orders"].result(15)
    for b in cluster.values():
        meta = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics("orders", timeout=15)
        partitions = meta.topics["orders"].partitions
        assert len(partitions) == 6
        assert sorted({p.leader for p in partitions.values()}) == [1, 2, 3], "leaders spread"
        assert all(sorted(p.replicas) == [1, 2, 3] for p in partitions.values())

    # replication.factor above the number of brokers is refused with a message.
    with pytest.raises(Exception) as refused:
        admin.create_topics([NewTopic("too-wide", 1, 4)])["too-wide"].result(15)
    assert "replication" in str(refused.value).lower()

    p = Producer({"bootstrap.servers": cluster[3].bootstrap, "acks": "all"})
    for i in range(60):
        p.produce("orders", key=f"user-{i}", value=f"order-{i}")
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": cluster[1].bootstrap, "group.id": "billing",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["orders"])
    seen = set()
    deadline = time.monotonic() + 60
    while len(seen) < 60 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.add(m.value().decode())
    c.commit(asynchronous=False)
    c.close()
    assert seen == {f"order-{i}" for i in range(60)}


def test_killing_the_controller_elects_another_and_it_rejoins(cluster):
    admin = AdminClient({"bootstrap.servers": bootstrap(cluster)})
    admin.create_topics([NewTopic("before", 3, 3)])["before"].result(15)
    old = active_controller(bootstrap(cluster))
    cluster[old].kill()
    survivors = [i for i in cluster if i != old]
    started = time.monotonic()
    admin = AdminClient({"bootstrap.servers": bootstrap(cluster, survivors)})
    create_with_retries(admin, NewTopic("during", 2, 2), started + 10)
    assert time.monotonic() - started < 10, "admin calls resumed within 10 s"
    new = active_controller(bootstrap(cluster, survivors))
    assert new != old and new in survivors

    cluster[old].start()
    meta = AdminClient({"bootstrap.servers": cluster[old].bootstrap})
    deadline = time.monotonic() + 15
    while "during" not in meta.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "the restarted node caught up"
        time.sleep(0.2)
    assert active_controller(cluster[old].bootstrap) == new


def free_port_run(n: int) -> int:
    """A base port with `n` consecutive free ports, below Linux's ephemeral range
    (32768-60999) so that ports the OS hands other tests never land in it."""
    import random
    for _ in range(200):
        base = random.randrange(20000, 32000 - n)
        sockets = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no run of {n} free ports")


def test_local_cluster_starts_and_stops_three_nodes(tmp_path):
    base = free_port_run(6)
    proc = subprocess.Popen([str(broker_binary()), "local-cluster", "--nodes", "3", "--data-dir", str(tmp_path / "lc"),
                             "--base-port", str(base)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "bootstrap.servers=" in first, first + proc.stderr.read()
        lines = [proc.stdout.readline() for _ in range(3)]
        assert all(line.startswith(f"node {i + 1}: pid ") for i, line in enumerate(lines)), lines
        servers = first.strip().split("bootstrap.servers=")[1]
        admin = AdminClient({"bootstrap.servers": servers})
        desc = admin.describe_cluster(request_timeout=10).result(20)
        assert sorted(n.id for n in desc.nodes) == [1, 2, 3]
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    for i in (1, 2, 3):
        assert (tmp_path / "lc" / f"node-{i}" / "meta.properties").exists()
        assert "shutting down" in (tmp_path / "lc" / f"node-{i}.log").read_text()


def test_kafka_python_uses_the_cluster_through_any_broker(cluster):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic as KPNewTopic

    admin = KafkaAdminClient(bootstrap_servers=cluster[1].bootstrap)
    try:
        admin.create_topics([KPNewTopic("kp-events", num_partitions=3, replication_factor=2)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=cluster[3].bootstrap, acks="all")
    for i in range(30):
        producer.send("kp-events", key=f"k{i}".encode(), value=f"v{i}".encode())
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer("kp-events", bootstrap_servers=cluster[2].bootstrap, group_id="kp-group",
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=20000)
    seen = set()
    for m in consumer:
        seen.add(m.value.decode())
        if len(seen) == 30:
            break
    consumer.commit()
    consumer.close()
    assert seen == {f"v{i}" for i in range(30)}


def test_a_paused_broker_is_fenced_and_unfenced_when_it_heartbeats_again(broker_factory):
    nodes = start_cluster(broker_factory, "hb", {"broker.session.timeout.ms": "2000", "broker.heartbeat.interval.ms": "300"})
    leader = active_controller(bootstrap(nodes))
    paused = next(i for i in nodes if i != leader)
    other = next(i for i in nodes if i not in (leader, paused))

    def brokers_seen() -> tuple[set, set]:
        out = subprocess.run([str(broker_binary()), "--bootstrap-server", nodes[other].bootstrap, "cluster", "describe",
                              "-o", "json"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        brokers = json.loads(out.stdout)["brokers"]
        return {b["id"] for b in brokers if not b["fenced"]}, {b["id"] for b in brokers if b["fenced"]}

    assert brokers_seen() == ({1, 2, 3}, set())
    os.kill(nodes[paused].pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 15
        while brokers_seen() != ({1, 2, 3} - {paused}, {paused}):
            assert time.monotonic() < deadline, f"broker {paused} was not fenced: {brokers_seen()}"
            time.sleep(0.2)
        # Clients no longer see it (Metadata lists unfenced brokers only).
        meta = AdminClient({"bootstrap.servers": nodes[other].bootstrap}).list_topics(timeout=15)
        assert paused not in meta.brokers
    finally:
        os.kill(nodes[paused].pid, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while brokers_seen() != ({1, 2, 3}, set()):
        assert time.monotonic() < deadline, f"broker {paused} was not unfenced: {brokers_seen()}"
        time.sleep(0.2)
