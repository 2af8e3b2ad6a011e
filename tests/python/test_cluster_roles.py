"""Node roles and dynamic voters (KIP-853) in a cluster of real `gregor serve` processes.

Contract: a `process.roles=broker` node given the controllers' addresses joins as an
observer of the metadata quorum (no controller listener in its config, as in Kafka's),
registers, serves clients and takes replicas, and never votes; a
`process.roles=controller` node serves no clients; a controller started outside the
voters joins as an observer, `gregor cluster add-controller` makes it a voter and
`gregor cluster remove-controller` removes another, after which the quorum survives the
loss of its leader with the new voter set.
"""
from __future__ import annotations

import json
import socket
import subprocess
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import broker_binary
from test_cluster import active_controller, bootstrap, create_with_retries, free_ports, start_cluster


def gregor(servers: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(broker_binary()), "--bootstrap-server", servers, *args],
                          capture_output=True, text=True, timeout=60)


def quorum(servers: str) -> dict:
    out = gregor(servers, "cluster", "quorum", "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def ids(replicas: list) -> set:
    return {r["node_id"] for r in replicas}


def broker_ids(servers: str) -> list:
    admin = AdminClient({"bootstrap.servers": servers})  # kept alive until the result
    return sorted(b.id for b in admin.describe_cluster(request_timeout=10).result(15).nodes)


def voters_of(nodes: dict) -> str:
    """The `--controller-quorum` the three voters of `start_cluster` were given."""
    args = nodes[1].extra_args
    return args[args.index("--controller-quorum") + 1]


def test_a_broker_only_node_observes_the_quorum_and_serves_clients(broker_factory):
    nodes = start_cluster(broker_factory, "role")
    observer = broker_factory("role4")
    observer.extra_args = ["--node-id", "4", "--controller-quorum", voters_of(nodes)]
    observer.sets = {"process.roles": "broker"}
    observer.start(timeout=60)
    servers = bootstrap(nodes)

    deadline = time.monotonic() + 15
    while broker_ids(servers) != [1, 2, 3, 4]:
        assert time.monotonic() < deadline, "the broker-only node did not register"
        time.sleep(0.2)
    status = quorum(observer.bootstrap)
    assert ids(status["voters"]) == {1, 2, 3}
    assert 4 in ids(status["observers"])

    admin = AdminClient({"bootstrap.servers": observer.bootstrap})
    admin.create_topics([NewTopic("wide", 8, 1)])["wide"].result(15)
    meta = admin.list_topics("wide", timeout=10)
    leaders = {p.leader for p in meta.topics["wide"].partitions.values()}
    assert 4 in leaders and leaders <= {1, 2, 3, 4}, leaders
    p = Producer({"bootstrap.servers": observer.bootstrap, "acks": "all"})
    for i in range(40):
        p.produce("wide", key=f"k{i}", value=f"v{i}")
    assert p.flush(30) == 0

    # Restarted (a new port for its metadata listener), it is admitted again and serves.
    observer.stop()
    observer.start(timeout=60)
    admin = AdminClient({"bootstrap.servers": observer.bootstrap})
    admin.create_topics([NewTopic("later", 1, 1)])["later"].result(15)


def test_controllers_are_added_and_removed_at_run_time(broker_factory):
    nodes = start_cluster(broker_factory, "dyn")
    servers = bootstrap(nodes)
    controller_port, = free_ports(1)
    new = broker_factory("dyn5")
    new.port = controller_port
    new.sets = {"process.roles": "controller"}
    new.extra_args = ["--node-id", "5", "--controller-listen", f"127.0.0.1:{controller_port}",
                      "--controller-quorum", voters_of(nodes)]
    new.start(timeout=60)
    assert "controller listening" in new.banner
    # A controller-only node serves no clients: nothing answers Kafka requests on it.
    with socket.create_connection(("127.0.0.1", controller_port), timeout=5):
        pass
    assert broker_ids(servers) == [1, 2, 3]

    added = gregor(servers, "cluster", "add-controller", "--controller-id", "5",
                   "--controller-address", f"127.0.0.1:{controller_port}")
    assert added.returncode == 0, added.stderr
    assert ids(quorum(servers)["voters"]) == {1, 2, 3, 5}
    again = gregor(servers, "cluster", "add-controller", "--controller-id", "5",
                   "--controller-address", f"127.0.0.1:{controller_port}")
    assert again.returncode == 1 and "voter already" in again.stderr

    leader = active_controller(servers)
    gone = next(i for i in (1, 2, 3) if i != leader)
    removed = gregor(servers, "cluster", "remove-controller", "--controller-id", str(gone))
    assert removed.returncode == 0, removed.stderr
    assert ids(quorum(servers)["voters"]) == {1, 2, 3, 5} - {gone}
    nodes[gone].stop()

    # The new voter set elects a new leader when the old one dies: {remaining, 5} hold a majority.
    nodes[leader].kill()
    survivors = [i for i in (1, 2, 3) if i not in (gone, leader)]
    started = time.monotonic()
    admin = AdminClient({"bootstrap.servers": bootstrap(nodes, survivors)})
    create_with_retries(admin, NewTopic("after-change", 1, 1), started + 15)
    assert active_controller(bootstrap(nodes, survivors)) in set(survivors) | {5}
