"""The fault schedule and how each fault is injected and healed.

The schedule is drawn from random.Random(seed) before the run: the kinds (every kind once
in a shuffled order, then again, so any 8 consecutive faults cover all kinds), each
fault's duration and the gap after it, and a `pick` in [0, 1) and a partition that choose
its target. Targets that depend on the cluster's state (a leader, the active controller)
are looked up when the fault starts, so a replay repeats the schedule, not necessarily
the exact victims.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import netns
from .log import elapsed, log
from .nodes import SESSION_TIMEOUT_S, Cluster

KINDS = ["kill-random", "kill-controller", "kill-leader", "pause-leader",
         "isolate", "split", "one-way", "netem"]


@dataclass
class Fault:
    index: int
    kind: str
    duration: float  # seconds from injection to heal
    gap: float  # seconds of calm after the cluster is whole again
    pick: float  # chooses among candidate nodes
    partition: int  # the partition whose leader leader faults aim at
    # filled in when it runs:
    targets: list[int] = field(default_factory=list)
    detail: str = ""
    start: float | None = None
    heal: float | None = None
    recovered: float | None = None
    not_recovered: list[str] = field(default_factory=list)


def schedule(seed: int, count: int, partitions: int, kinds: list[str] = KINDS) -> list[Fault]:
    rng = random.Random(seed)
    order: list[str] = []
    while len(order) < count:
        block = list(kinds)
        rng.shuffle(block)
        order += block
    faults = []
    for i, kind in enumerate(order[:count]):
        duration = SESSION_TIMEOUT_S + rng.uniform(2, 4) if kind == "pause-leader" else rng.uniform(3, 8)
        faults.append(Fault(i + 1, kind, round(duration, 1), round(rng.uniform(3, 8), 1),
                            rng.random(), rng.randrange(partitions)))
    return faults


def choose(candidates: list[int], pick: float) -> int:
    return sorted(candidates)[int(pick * len(candidates))]


class Injector:
    """Injects and heals faults on `cluster`, aiming leader faults at `topic`."""

    def __init__(self, cluster: Cluster, topic: str, timeline: Path):
        self.cluster, self.topic, self.timeline = cluster, topic, timeline
        self.ids = cluster.ids

    # ------------------------------------------------------------ targets

    def leader(self, f: Fault) -> int:
        leader = self.cluster.leader_of(self.topic, f.partition)
        if leader in self.ids:
            f.detail += f"leader of {self.topic}-{f.partition}; "
            return leader
        f.detail += f"no leader of partition {f.partition}, random node; "
        return choose(self.ids, f.pick)

    def controller(self, f: Fault) -> int:
        c = self.cluster.active_controller()
        if c in self.ids:
            f.detail += f"active controller {c}; "
            return c
        f.detail += "active controller unknown, random node; "
        return choose(self.ids, f.pick)

    # ------------------------------------------------------------ inject / heal

    def inject(self, f: Fault) -> None:
        getattr(self, "inject_" + f.kind.replace("-", "_"))(f)

    def inject_kill_random(self, f: Fault) -> None:
        self.kill(f, choose(self.ids, f.pick))

    def inject_kill_controller(self, f: Fault) -> None:
        self.kill(f, self.controller(f))

    def inject_kill_leader(self, f: Fault) -> None:
        self.kill(f, self.leader(f))

    def kill(self, f: Fault, node: int) -> None:
        f.targets = [node]
        self.cluster.nodes[node].kill()

    def inject_pause_leader(self, f: Fault) -> None:
        node = self.leader(f)
        f.targets = [node]
        self.cluster.nodes[node].pause()

    def inject_isolate(self, f: Fault) -> None:
        """One node cut from every peer (clients still reach it)."""
        node = choose(self.ids, f.pick)
        f.targets = [node]
        netns.cut(node, [i for i in self.ids if i != node])

    def inject_split(self, f: Fault) -> None:
        """The active controller and (5 nodes) one more node against the rest."""
        controller = self.controller(f)
        minority = [controller]
        if len(self.ids) >= 5:
            minority.append(choose([i for i in self.ids if i != controller], f.pick))
        majority = [i for i in self.ids if i not in minority]
        f.targets = minority
        f.detail += f"minority {minority} | majority {majority}; "
        for node in minority:
            netns.cut(node, majority)
        for node in majority:
            netns.cut(node, minority)

    def inject_one_way(self, f: Fault) -> None:
        """The leader of a partition stops receiving from one of that partition's
        followers (or another node); it can still send to it."""
        leader = self.leader(f)
        others = [r for r in self.cluster.replicas_of(self.topic, f.partition) if r != leader and r in self.ids]
        peer = choose(others or [i for i in self.ids if i != leader], f.pick)
        f.targets = [leader]
        f.detail += f"node {leader} drops everything from node {peer}; "
        netns.drop_from(leader, peer)

    def inject_netem(self, f: Fault) -> None:
        node = choose(self.ids, f.pick)
        delay, jitter, loss = 100 + int(f.pick * 200), 50, 5 + f.pick * 15
        f.targets = [node]
        f.detail += netns.netem(node, delay, jitter, loss) + "; "

    def heal(self, f: Fault) -> None:
        for node in f.targets:
            n = self.cluster.nodes[node]
            if f.kind.startswith("kill"):
                n.start()
            elif f.kind == "pause-leader":
                n.resume()
        self.heal_network()

    def heal_network(self) -> None:
        for node in self.ids:
            netns.heal(node)

    def heal_all(self) -> None:
        """Whatever state the run was left in: rules and qdiscs gone, every node awake and up."""
        self.heal_network()
        for n in self.cluster.nodes.values():
            if n.paused:
                n.resume()
            if not n.running:
                n.start()

    # ------------------------------------------------------------ one fault

    def run(self, f: Fault, recovery_timeout: float = 60.0) -> None:
        """Injects, holds for its duration, heals, waits (bounded) until the cluster is
        whole again, then records the fault in the timeline."""
        f.start = elapsed()
        try:
            self.inject(f)
            log(f"fault {f.index} {f.kind} on {f.targets} for {f.duration} s {f.detail}")
            time.sleep(f.duration)
        finally:
            self.heal(f)
            f.heal = elapsed()
        log(f"fault {f.index} healed")
        f.not_recovered = self.wait_whole(recovery_timeout)
        f.recovered = None if f.not_recovered else elapsed()
        self.record(f)

    def wait_whole(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        problems = self.cluster.unhealthy()
        while problems and time.monotonic() < deadline:
            time.sleep(0.5)
            problems = self.cluster.unhealthy()
        if problems:
            log(f"cluster not whole {timeout} s after the heal: {problems[:6]}")
        return problems

    def record(self, f: Fault) -> None:
        with open(self.timeline, "a") as out:
            out.write(json.dumps({k: (round(v, 2) if isinstance(v, float) else v)
                                  for k, v in asdict(f).items()}) + "\n")

