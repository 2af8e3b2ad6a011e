"""The harness's driver: network and cluster up, workload on, the seeded fault schedule,
heal and settle, the checker, and teardown whatever happens.

Exit status: 0 clean; 1 the checker found violations; 3 no violation but a liveness
problem (a client stuck or failed fatally, the cluster not whole after a fault);
2 the harness itself failed, was interrupted or hit its time cap.
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from . import netns
from confluent_kafka import Consumer, KafkaException

from .checker import check, max_gap, read_final, watermarks
from .faults import KINDS, Injector, schedule
from .log import START, elapsed, log, to_file
from .nodes import FAST_RECONNECT, Cluster, wait_for
from .replicas import diverged
from .txn import TxnJob
from .txn_check import check_txn, group_offsets, read_committed
from .workload import Workload

REPO = Path(__file__).resolve().parents[2]
TOPIC, PARTITIONS, REPLICATION, MIN_ISR = "gchaos", 6, 3, "2"
TXN_OUT, TXN_GROUP = "gchaos-txn-out", "gchaos-txn"
END_RESERVE_S = 300  # kept from the cap for healing, draining, the checker and teardown


class Stop(BaseException):
    """A signal or the time cap: unwinds to the teardown."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    a = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__)
    a.add_argument("--nodes", type=int, choices=(3, 5), default=3)
    a.add_argument("--faults", type=int, default=6)
    a.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    a.add_argument("--duration-cap", type=float, default=900.0, help="hard cap in seconds (default 900)")
    a.add_argument("--keep", action="store_true", help="keep the run dir also when clean")
    a.add_argument("--bin", type=Path, default=REPO / "target" / "debug" / "gregor")
    a.add_argument("--rate", type=float, default=150.0, help="records/s per producer (default 150)")
    a.add_argument("--kinds", default=",".join(KINDS), help="fault kinds to draw from (comma-separated)")
    a.add_argument("--run-dir", type=Path, default=None, help="default: target/chaos/<time>-seed<seed>")
    a.add_argument("--cleanup", action="store_true", help="only remove a previous run's namespaces and links")
    a.add_argument("--txn", action=argparse.BooleanOptionalAction, default=False,
                   help="also run the transactional consume-transform-produce job (txn.py)")
    args = a.parse_args(argv)
    unknown = set(args.kinds.split(",")) - set(KINDS)
    if unknown:
        a.error(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
    return args


def replay_command(args: argparse.Namespace, seed: int) -> str:
    extra = "" if args.kinds == ",".join(KINDS) else f" --kinds {args.kinds}"
    extra += " --txn" if args.txn else ""
    return f"scripts/chaos --nodes {args.nodes} --faults {args.faults} --seed {seed} --rate {args.rate:g}{extra}"


class Run:
    def __init__(self, args: argparse.Namespace, seed: int, run_dir: Path):
        self.args, self.seed, self.run_dir = args, seed, run_dir
        self.ids = list(range(1, args.nodes + 1))
        self.cluster: Cluster | None = None
        self.workload: Workload | None = None
        self.summary: dict = {"seed": seed, "replay": replay_command(args, seed), "nodes": args.nodes}
        self.deadline = time.monotonic() + args.duration_cap - min(END_RESERVE_S, 0.4 * args.duration_cap)

    # ------------------------------------------------------------ phases

    def setup(self) -> None:
        leftovers = netns.destroy()
        if leftovers:
            log(f"removed a previous run's leftovers: {leftovers}")
        binary = self.copy_binary()
        netns.create(self.ids)
        log(f"network up: {netns.BRIDGE} {netns.BRIDGE_IP}, nodes {[netns.node_ip(i) for i in self.ids]}")
        self.cluster = Cluster(self.ids, binary, self.run_dir)
        self.cluster.start_all()
        self.cluster.create_topic(TOPIC, PARTITIONS, REPLICATION, {"min.insync.replicas": MIN_ISR})
        if self.args.txn:
            self.cluster.create_topic(TXN_OUT, PARTITIONS, REPLICATION, {"min.insync.replicas": MIN_ISR})

    def copy_binary(self) -> Path:
        """A copy in the run dir: a rebuild during the run must not change the nodes (and a
        copy taken while the linker writes is taken again)."""
        binary = self.run_dir / "gregor"
        for _ in range(10):
            shutil.copy2(self.args.bin, binary)
            if subprocess.run([str(binary), "--version"], capture_output=True).returncode == 0:
                return binary
            time.sleep(5)
        raise RuntimeError(f"{self.args.bin} does not run")

    def start_workload(self) -> None:
        self.workload = Workload(self.cluster.bootstrap, TOPIC, PARTITIONS, self.args.rate)
        if self.args.txn:
            self.workload.job = TxnJob(self.cluster.bootstrap, TOPIC, TXN_OUT, TXN_GROUP, f"gchaos-txn-{self.seed}")
        self.workload.start()
        wait_for(lambda: min(self.workload.acks_per_partition()) > 0, 60, "acks on every partition")
        wait_for(lambda: self.workload.reads(), 60, "the group reading")
        if self.args.txn:
            wait_for(lambda: self.workload.job.committed, 60, "the transactional job committing")
        time.sleep(5)

    def faults(self) -> tuple[float, float]:
        """Runs the schedule; returns its (start, end) in monotonic time."""
        plan = schedule(self.seed, self.args.faults, PARTITIONS, self.args.kinds.split(","))
        log("schedule: " + ", ".join(f"{f.index}:{f.kind}" for f in plan))
        injector = Injector(self.cluster, TOPIC, self.run_dir / "timeline.jsonl")
        start, done = time.monotonic(), []
        for f in plan:
            if time.monotonic() > self.deadline:
                log(f"time cap near: {len(plan) - len(done)} faults not run")
                break
            injector.run(f)
            done.append(f)
            time.sleep(f.gap)
        self.summary["faults"] = [asdict(f) for f in done]
        end = time.monotonic()
        injector.heal_all()
        self.summary["not_whole_after"] = [f.index for f in done if f.not_recovered]
        return start, end

    def wait_whole(self) -> list[str]:
        try:
            wait_for(lambda: not self.cluster.unhealthy(), 120, "the cluster whole after the schedule")
            return []
        except RuntimeError as e:
            return [f"{e}: {self.cluster.unhealthy()[:10]}"]

    def drain(self) -> list[str]:
        """Producers stopped and flushed, then the group given time to commit up to the
        end; returns the liveness problems seen."""
        problems = [f"producer {n} did not stop" for n in self.workload.stop_producers()]
        ends = self.high_watermarks()
        try:
            wait_for(lambda: all(self.workload.committed().get(p, 0) >= o for p, o in ends.items()), 120,
                     "the group committed up to the end")
        except RuntimeError as e:
            problems.append(f"{e}: committed {self.workload.committed()}, ends {ends}")
        job = self.workload.job
        if job is not None:
            try:
                wait_for(lambda: all(job.committed.get(p, 0) >= o for p, o in ends.items()), 120,
                         "the transactional job committed up to the end")
            except RuntimeError as e:
                problems.append(f"{e}: committed {job.committed}, ends {ends}")
        self.workload.stop_consumers()
        if job is not None and job.is_alive():
            problems.append("the transactional job did not stop (its stack: stacks.txt)")
            with open(self.run_dir / "stacks.txt", "w") as f:
                faulthandler.dump_traceback(f, all_threads=True)
        return problems

    def high_watermarks(self) -> dict[int, int]:
        c = Consumer({"bootstrap.servers": self.cluster.bootstrap, "group.id": "gchaos-hw", **FAST_RECONNECT})
        try:
            return watermarks(c, TOPIC, PARTITIONS)
        finally:
            c.close()

    def client_problems(self) -> list[str]:
        problems = []
        for c in self.workload.clients:
            if c.crash is not None:
                problems.append(f"{c.name} crashed: {c.crash!r}")
            problems += [f"{c.name}: {e}" for e in c.errors if e.startswith("fatal")]
        for p in self.workload.producers:
            if p.unflushed:
                problems.append(f"{p.name}: {p.unflushed} records never answered")
        return problems

    def execute(self) -> int:
        self.setup()
        self.start_workload()
        window = self.faults()
        liveness = self.wait_whole()
        liveness += self.drain() + self.client_problems()
        if self.summary["not_whole_after"]:
            liveness.append(f"cluster not whole within 60 s after faults {self.summary['not_whole_after']}")
        log("settling 5 s, then reading the final log")
        time.sleep(5)
        final = read_final(self.cluster.bootstrap, TOPIC, PARTITIONS)
        w = self.workload
        report = check(len(self.summary["faults"]), w.acked(), w.reads(), w.commits(), w.sampler.samples,
                       final, window)
        self.compare_replicas(report, final)
        if w.job is not None:
            liveness += self.check_txn(report, final)
        self.record(report, final, liveness)
        print(report.line(), flush=True)
        for problem in liveness:
            log(f"LIVENESS {problem}")
        return 1 if report.violations else 3 if liveness else 0

    def compare_replicas(self, report, final) -> None:
        dirs = {i: n.data_dir for i, n in self.cluster.nodes.items()}
        report.replicas_compared, found = diverged(self.cluster.binary, dirs, TOPIC, final)
        report.diverged = len(found)
        if found:
            report.examples["replicas_diverged"] = found[:10]
            log(f"VIOLATION replicas_diverged: {len(found)}, e.g. {found[:3]}")
        log(report.extra())

    def check_txn(self, report, final) -> list[str]:
        """The transactional job's output against the final log (txn_check.py); returns
        liveness problems (the output not readable to its end)."""
        job = self.workload.job
        states = [t.state for t in job.txns]
        self.summary["txn"] = {"txns": len(states), "unknown": states.count("unknown"), "replaced": job.replaced,
                               "rewinds": job.rewinds, "assignments": job.assignments, "told_committed": job.committed,
                               "notes": job.notes[:30], "last_txns": [t.__dict__ for t in job.txns[-5:]],
                               "unknown_txns": [t.__dict__ for t in job.txns if t.state == "unknown"][:10]}
        try:
            ends = group_offsets(self.cluster.bootstrap, TXN_GROUP, TOPIC, PARTITIONS)
            output = read_committed(self.cluster.bootstrap, TXN_OUT, PARTITIONS)
        except (RuntimeError, KafkaException) as e:
            return [f"transactional output not checked: {e!r}"]
        found = check_txn(final.records, output, ends, job.txns, job.committed)
        report.txn = {"txn_committed": states.count("committed"), "txn_aborted": states.count("aborted"),
                      **{k: len(v) for k, v in found.items()}}
        for kind, items in found.items():
            if items:
                report.examples[kind] = items[:10]
                log(f"VIOLATION {kind}: {len(items)}, e.g. {items[:3]}")
        self.summary["txn"].update({"final_committed": ends, "output_records": len(output)})
        log(f"txn: {report.txn} {self.summary['txn']['unknown']} unknown, {job.replaced} producers replaced")
        return []

    def record(self, report, final, liveness: list[str]) -> None:
        w = self.workload
        acks = [[a.time - START for a in w.acked() if a.partition == p] for p in range(PARTITIONS)]
        for f in self.summary["faults"]:  # the longest stall of one partition's acks around each fault
            end = (f["recovered"] or f["heal"]) + f["gap"]
            f["max_partition_ack_gap_s"] = round(max(max_gap(times, f["start"], end) for times in acks), 1)
        self.summary.update({
            "line": report.line(), "extra": report.extra(), "violations": report.violations, "examples": report.examples,
            "hw_stable": report.hw_stable, "high_watermarks": final.high_watermarks, "liveness": liveness,
            "clients": {p.name: {"produced": p.produced, "acked": len(p.acked), "failed": len(p.failed),
                                 "failed_examples": p.failed[:5], "errors": p.errors[:10]} for p in w.producers},
            "group": {m.name: {"reads": len(m.reads), "commits": len(m.commits)} for m in w.members},
            "acked_offset_unknown": [a.value for a in w.acked() if a.offset is None or a.offset < 0][:100],
            "offset_samples": len(w.sampler.samples), "elapsed_s": round(elapsed(), 1)})

    def teardown(self) -> None:
        if self.workload is not None:
            for c in self.workload.clients:
                c.stopping.set()
        if self.cluster is not None:
            self.cluster.stop_all()
        removed = netns.destroy()
        log(f"removed {removed}")
        (self.run_dir / "gregor").unlink(missing_ok=True)
        (self.run_dir / "summary.json").write_text(json.dumps(self.summary, indent=1, default=str))


_stopping = False


def on_signal(signum, _frame):
    """The first signal (or the cap's SIGALRM) unwinds to the teardown; later ones are
    ignored so they cannot interrupt it."""
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise Stop("time cap reached" if signum == signal.SIGALRM else f"signal {signal.Signals(signum).name}")


def run(args: argparse.Namespace) -> int:
    global _stopping
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = args.run_dir or REPO / "target" / "chaos" / f"{stamp}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    to_file(run_dir / "harness.log")
    log(f"seed {seed}, {args.nodes} nodes, {args.faults} faults, cap {args.duration_cap:g} s, run dir {run_dir}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, on_signal)
    signal.alarm(int(args.duration_cap))
    state, code = Run(args, seed, run_dir), 2
    try:
        code = state.execute()
    except (Stop, Exception) as e:
        log(f"harness stopped: {e!r}\n{traceback.format_exc()}")
        state.summary["error"] = repr(e)
    finally:
        _stopping = True  # let the teardown finish
        signal.alarm(0)
        state.teardown()
    conclude(code, args, seed, run_dir)
    return code


def conclude(code: int, args: argparse.Namespace, seed: int, run_dir: Path) -> None:
    if code == 0 and not args.keep:
        for path in [*run_dir.glob("node-*"), run_dir / "logs"]:
            shutil.rmtree(path, ignore_errors=True)
        log(f"clean; timeline and summary in {run_dir}")
        return
    outcome = {0: "clean (kept)", 1: "VIOLATIONS", 2: "HARNESS ERROR", 3: "LIVENESS PROBLEMS"}[code]
    log(f"{outcome}: seed {seed}; run dir kept: {run_dir} (logs/, node-*/, timeline.jsonl, summary.json)")
    log(f"replay: {replay_command(args, seed)}")


def main(argv: list[str] | None = None) -> None:
    faulthandler.enable(all_threads=True)  # a crash inside a client library shows every thread
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.cleanup:
        log(f"removed {netns.destroy()}")
        code = 0
    else:
        code = run(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # client threads may still sit in librdkafka: do not wait for them
