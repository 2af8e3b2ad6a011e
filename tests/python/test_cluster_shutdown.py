"""Controlled shutdown in a three-node cluster (SIGTERM, as Kafka's controlled shutdown).

Contract: a node stopped with SIGTERM is fenced by the controller before it exits, so
clients stop being sent to it at once (no `broker.session.timeout.ms` to wait out, which
is set long here to prove it); when it was the active controller, the leadership moves to
another voter during the stop, and admin calls through the survivors work right after;
the node rejoins, unfenced, when it starts again. `controlled.shutdown.enable=false`
skips it (the session timeout fences the node instead).
"""
from __future__ import annotations

import json
import subprocess
import time

from confluent_kafka.admin import AdminClient, NewTopic

from conftest import broker_binary
from test_cluster import active_controller, bootstrap, start_cluster


def brokers_seen(servers: str) -> tuple[set, set]:
    """(unfenced ids, fenced ids) from DescribeCluster v2 (`gregor cluster describe`)."""
    out = subprocess.run([str(broker_binary()), "--bootstrap-server", servers, "cluster", "describe", "-o", "json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    brokers = json.loads(out.stdout)["brokers"]
    return {b["id"] for b in brokers if not b["fenced"]}, {b["id"] for b in brokers if b["fenced"]}


def epochs(servers: str) -> dict:
    """Each broker's epoch (KIP-631) as `gregor cluster describe` shows it."""
    out = subprocess.run([str(broker_binary()), "--bootstrap-server", servers, "cluster", "describe", "-o", "json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return {b["id"]: b["epoch"] for b in json.loads(out.stdout)["brokers"]}


def test_sigterm_fences_the_node_and_hands_the_controller_over(broker_factory):
    # A session timeout far longer than the test: only the controlled shutdown can fence.
    nodes = start_cluster(broker_factory, "cs", {"broker.session.timeout.ms": "600000"})
    leader = active_controller(bootstrap(nodes))
    survivors = [i for i in nodes if i != leader]
    servers = bootstrap(nodes, survivors)
    before = epochs(servers)
    assert all(isinstance(e, int) and e > 0 for e in before.values()), before

    started = time.monotonic()
    assert nodes[leader].stop() == 0
    stopped_in = time.monotonic() - started
    assert stopped_in < 10, f"the stop took {stopped_in:.1f} s"
    # Fenced before it exited, and another voter leads already (no election timeout).
    assert brokers_seen(servers) == (set(survivors), {leader})
    assert active_controller(servers) in survivors
    meta = AdminClient({"bootstrap.servers": servers}).list_topics(timeout=10)
    assert leader not in meta.brokers
    admin = AdminClient({"bootstrap.servers": servers})
    admin.create_topics([NewTopic("after-stop", 2, 2)])["after-stop"].result(10)

    nodes[leader].start()
    deadline = time.monotonic() + 15
    while brokers_seen(servers) != ({1, 2, 3}, set()):
        assert time.monotonic() < deadline, f"node {leader} was not unfenced: {brokers_seen(servers)}"
        time.sleep(0.2)
    # A restarted broker registers anew and gets a higher epoch (KIP-903's basis).
    after = epochs(servers)
    assert after[leader] > before[leader], (before, after)


def test_without_controlled_shutdown_the_node_stays_registered_until_its_session_ends(broker_factory):
    nodes = start_cluster(broker_factory, "ncs", {"controlled.shutdown.enable": "false",
                                                  "broker.session.timeout.ms": "600000"})
    leader = active_controller(bootstrap(nodes))
    follower = next(i for i in nodes if i != leader)
    assert nodes[follower].stop() == 0
    servers = bootstrap(nodes, [i for i in nodes if i != follower])
    assert brokers_seen(servers) == ({1, 2, 3}, set())
