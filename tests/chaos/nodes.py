"""The cluster under test: one `gregor serve` process per node, each started inside its
namespace with `ip netns exec` (which execs, so the process we hold is gregor itself and
SIGKILL/SIGSTOP reach it), plus the cluster queries faults need (leaders, the active
controller, health)."""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from . import netns, wire
from .log import CLIENTS, log

CLIENT_PORT, CONTROLLER_PORT = 9092, 9093
FAILOVER = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "5000",
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "6",
    "leader.imbalance.check.interval.seconds": "30",  # preferred elections during the run too
}
SESSION_TIMEOUT_S = int(FAILOVER["broker.session.timeout.ms"]) / 1000
FAST_RECONNECT = {
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "retry.backoff.ms": 50,
    "retry.backoff.max.ms": 500,
    "socket.connection.setup.timeout.ms": 5000,
    "logger": CLIENTS,  # to clients.log in the run dir, not the console
}


class Node:
    """One node: its data dir survives kills and restarts; each start logs to fresh
    files logs/node-<id>.<start>.{out,err}."""

    def __init__(self, node_id: int, binary: Path, run_dir: Path, voters: str):
        self.id, self.binary, self.voters = node_id, binary, voters
        self.data_dir = run_dir / f"node-{node_id}"
        self.log_dir = run_dir / "logs"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.paused = False

    @property
    def address(self) -> str:
        return f"{netns.node_ip(self.id)}:{CLIENT_PORT}"

    def command(self) -> list[str]:
        ip = netns.node_ip(self.id)
        cmd = ["ip", "netns", "exec", netns.ns_name(self.id), str(self.binary), "serve",
               "--node-id", str(self.id), "--listen", f"{ip}:{CLIENT_PORT}",
               "--controller-listen", f"{ip}:{CONTROLLER_PORT}", "--controller-quorum", self.voters,
               "--data-dir", str(self.data_dir)]
        for k, v in FAILOVER.items():
            cmd += ["--set", f"{k}={v}"]
        return cmd

    def spawn(self) -> Path:
        """Starts the process; returns its stdout file (the banner is its first line)."""
        assert not self.running, f"node {self.id} already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        out = self.log_dir / f"node-{self.id}.{self.starts}.out"
        err = self.log_dir / f"node-{self.id}.{self.starts}.err"
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info"), "RUST_BACKTRACE": "1"}
        with open(out, "wb") as o, open(err, "wb") as e:
            self.proc = subprocess.Popen(self.command(), stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        self.paused = False
        return out

    def wait_banner(self, out: Path, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "\n" in out.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.id} exited with {self.proc.returncode} before its banner "
                                   f"(see {out.with_suffix('.err')})")
            time.sleep(0.05)
        raise RuntimeError(f"node {self.id}: no banner within {timeout} s")

    def start(self, timeout: float = 90.0) -> None:
        self.wait_banner(self.spawn(), timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.running:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL (waking it first if paused) and reap."""
        if self.running:
            self.signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(15)
        self.paused = False

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False


class Cluster:
    def __init__(self, ids: list[int], binary: Path, run_dir: Path):
        self.ids, self.binary = ids, binary
        voters = ",".join(f"{i}@{netns.node_ip(i)}:{CONTROLLER_PORT}" for i in ids)
        self.nodes = {i: Node(i, binary, run_dir, voters) for i in ids}
        self.bootstrap = ",".join(n.address for n in self.nodes.values())
        self._admin: AdminClient | None = None

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, **FAST_RECONNECT})
        return self._admin

    def start_all(self) -> None:
        """All at once: each node waits for the quorum before printing its banner."""
        outs = {i: n.spawn() for i, n in self.nodes.items()}
        for i, out in outs.items():
            self.nodes[i].wait_banner(out)
        wait_for(lambda: self.broker_ids() == self.ids, 60, "every broker registered")

    def stop_all(self) -> None:
        for n in self.nodes.values():
            n.kill()

    def broker_ids(self) -> list[int]:
        try:
            return sorted(self.admin.list_topics(timeout=5).brokers)
        except KafkaException:
            return []

    def create_topic(self, name: str, partitions: int, rf: int, config: dict[str, str]) -> None:
        topic = NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config)
        self.admin.create_topics([topic], request_timeout=20)[name].result(30)
        wait_for(lambda: self.unhealthy() == [], 60, f"{name} fully in sync")

    def view(self) -> wire.MetadataView | None:
        """Metadata from the first live node that answers (faults start with the cluster
        whole, when the nodes agree)."""
        for n in self.nodes.values():
            if n.running and not n.paused:
                try:
                    return wire.metadata(n.address)
                except (OSError, struct.error):
                    continue
        return None

    def leader_of(self, topic: str, partition: int) -> int:
        v = self.view()
        pv = v and v.partitions.get((topic, partition))
        return pv.leader if pv else -1

    def replicas_of(self, topic: str, partition: int) -> list[int]:
        v = self.view()
        pv = v and v.partitions.get((topic, partition))
        return list(pv.replicas) if pv else []

    def active_controller(self) -> int:
        """The quorum leader from DescribeQuorum (`gregor cluster quorum -o json`); -1 if unknown."""
        cmd = [str(self.binary), "--bootstrap-server", self.bootstrap, "--request-timeout", "5000",
               "cluster", "quorum", "-o", "json"]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            return int(json.loads(out.stdout)["leader_id"]) if out.returncode == 0 else -1
        except (subprocess.TimeoutExpired, ValueError, KeyError):
            return -1

    def unhealthy(self) -> list[str]:
        """What keeps the cluster from being whole, as every node itself sees it (Metadata
        asked of each node: a node just cut off answers from a stale image): a node down,
        paused or silent, a broker missing, a partition without a leader or with a
        replica out of its ISR, nodes that disagree on the leaders."""
        problems = [f"node {i} down" for i, n in self.nodes.items() if not n.running]
        problems += [f"node {i} paused" for i, n in self.nodes.items() if n.paused]
        if problems:
            return problems
        views = {}
        for i, n in self.nodes.items():
            try:
                views[i] = wire.metadata(n.address)
            except (OSError, struct.error) as e:
                problems.append(f"node {i} does not answer Metadata: {e!r}")
        for i, v in views.items():
            if list(v.brokers) != self.ids:
                problems.append(f"node {i} sees brokers {list(v.brokers)}")
            problems += [f"node {i} sees {t}-{p} leader {pv.leader} isr {sorted(pv.isr)} of {sorted(pv.replicas)}"
                         for (t, p), pv in sorted(v.partitions.items())
                         if pv.leader < 0 or sorted(pv.isr) != sorted(pv.replicas)]
        leaders = {tuple(sorted((k, pv.leader) for k, pv in v.partitions.items())) for v in views.values()}
        if len(leaders) > 1:
            problems.append("nodes disagree on partition leaders")
        return problems


def wait_for(probe, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not {what} within {timeout} s")
        time.sleep(0.3)
    log(what)
