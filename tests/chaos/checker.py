"""The checker: reads the final log of every partition once the cluster is whole and
quiet, and compares it with what the clients were told.

- lost: an acknowledged (partition, offset, value) that is not at that offset in the final log;
- duplicated: a value stored more than once;
- reordered: within one producer and partition, a value at a higher offset than a later one;
- phantom: a record a group member read that is not at that offset in the final log;
- offsets_backwards: a committed offset lower than one confirmed before it was asked for
  (per partition), or a sample of the group's committed offsets lower than an earlier sample;
- max_unavailable_s: the longest time without any produce acknowledgement during the schedule.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from .log import START, log
from .nodes import FAST_RECONNECT
from .txn_check import KINDS as TXN_KINDS
from .workload import Ack, Commit, Read

EXAMPLES = 10
RETRIED = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.OFFSET_NOT_AVAILABLE,
           KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT, KafkaError._TRANSPORT}


@dataclass
class FinalLog:
    records: dict[int, dict[int, str]]  # partition -> offset -> value
    high_watermarks: list[dict[int, int]]  # successive looks, which must agree

    @property
    def stable(self) -> bool:
        return all(hw == self.high_watermarks[0] for hw in self.high_watermarks)


def watermarks(c: Consumer, topic: str, partitions: int, timeout: float = 60.0) -> dict[int, int]:
    """Each partition's high watermark from its leader, retried while leadership moves
    (a preferred-leader election may run at any time)."""
    return {p: watermark(c, TopicPartition(topic, p), timeout) for p in range(partitions)}


def watermark(c: Consumer, tp: TopicPartition, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return c.get_watermark_offsets(tp, timeout=10)[1]
        except KafkaException as e:
            if (not e.args[0].retriable() and e.args[0].code() not in RETRIED) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def read_final(bootstrap: str, topic: str, partitions: int, timeout: float = 180.0) -> FinalLog:
    """Every record up to the high watermark, read from offset 0 by assignment (no group);
    the high watermarks are looked at before, 5 s later, and after the read."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "gchaos-checker", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 100, **FAST_RECONNECT})
    try:
        hws = [watermarks(c, topic, partitions)]
        time.sleep(5)
        hws.append(watermarks(c, topic, partitions))
        records: dict[int, dict[int, str]] = {p: {} for p in range(partitions)}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while any(next_offset(records[p]) < hws[-1][p] for p in records):
            if time.monotonic() > deadline:
                raise RuntimeError(f"final log not read to {hws[-1]} within {timeout} s")
            for m in c.consume(1000, 0.5):
                if m.error() is None:
                    records[m.partition()][m.offset()] = m.value().decode()
        hws.append(watermarks(c, topic, partitions))
        return FinalLog(records, hws)
    finally:
        c.close()


def next_offset(by_offset: dict[int, str]) -> int:
    return max(by_offset) + 1 if by_offset else 0


@dataclass
class Report:
    faults: int
    acked: int
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    phantom: int = 0
    offsets_backwards: int = 0
    max_unavailable_s: float = 0.0
    max_partition_unavailable_s: float = 0.0  # the same, per partition, the worst one
    hw_stable: bool = True
    replicas_compared: int = 0
    diverged: int = 0  # replica records that differ from the final log (replicas.py)
    examples: dict[str, list] = field(default_factory=dict)
    txn: dict[str, int] | None = None  # the transactional job's counts (txn_check.py), None without --txn

    @property
    def violations(self) -> int:
        return self.lost + self.duplicated + self.reordered + self.phantom + self.offsets_backwards \
            + self.diverged + (0 if self.hw_stable else 1) + sum(v for k, v in (self.txn or {}).items() if k in TXN_KINDS)

    def line(self) -> str:
        line = (f"faults={self.faults} acked={self.acked} lost={self.lost} duplicated={self.duplicated} "
                f"reordered={self.reordered} phantom={self.phantom} offsets_backwards={self.offsets_backwards} "
                f"max_unavailable_s={self.max_unavailable_s:.1f}")
        return line + "".join(f" {k}={v}" for k, v in (self.txn or {}).items())

    def extra(self) -> str:
        """What the one line leaves out (logged, and in summary.json)."""
        return (f"max_partition_unavailable_s={self.max_partition_unavailable_s:.1f} "
                f"replicas_compared={self.replicas_compared} replicas_diverged={self.diverged} "
                f"hw_stable={str(self.hw_stable).lower()}")


def split_value(value: str) -> tuple[str, int]:
    producer, seq = value.rsplit("-", 1)
    return producer, int(seq)


def lost(acked: list[Ack], final: FinalLog) -> list[dict]:
    """An ack with an offset must find its value at that offset. librdkafka also acks
    without an offset (None) when a later request of the same idempotent producer
    succeeded after an earlier one timed out ("implicit ack": the earlier records must
    be in the log); those must find their value somewhere in their partition."""
    where = {v: (p, o) for p, recs in final.records.items() for o, v in recs.items()}

    def missing(a: Ack) -> bool:
        if a.offset is None or a.offset < 0:
            return where.get(a.value, (None,))[0] != a.partition
        return final.records.get(a.partition, {}).get(a.offset) != a.value
    return [{"partition": a.partition, "offset": a.offset, "value": a.value, "acked_at": round(a.time - START, 2),
             "final_at_offset": None if a.offset is None else final.records.get(a.partition, {}).get(a.offset),
             "final_position_of_value": where.get(a.value)}
            for a in acked if missing(a)]


def duplicated(final: FinalLog) -> list[dict]:
    counts = Counter(v for recs in final.records.values() for v in recs.values())
    return [{"value": v, "at": sorted((p, o) for p, recs in final.records.items() for o, x in recs.items() if x == v)}
            for v, n in counts.items() if n > 1]


def reordered(final: FinalLog) -> list[dict]:
    """Each step, in offset order within a partition, to a lower seq of the same producer."""
    found = []
    for p, recs in final.records.items():
        last: dict[str, tuple[int, int]] = {}  # producer -> (seq, offset)
        for o in sorted(recs):
            producer, seq = split_value(recs[o])
            if producer in last and seq < last[producer][0]:
                found.append({"partition": p, "offset": o, "value": recs[o],
                              "after": f"{producer}-{last[producer][0]} at {last[producer][1]}"})
            last[producer] = (seq, o)
    return found


def phantoms(reads: list[Read], final: FinalLog) -> list[dict]:
    seen = {(r.partition, r.offset, r.value): r.member for r in reads}
    return [{"partition": p, "offset": o, "value": v, "member": m,
             "final_at_offset": final.records.get(p, {}).get(o)}
            for (p, o, v), m in seen.items() if final.records.get(p, {}).get(o) != v]


def commits_backwards(commits: list[Commit]) -> list[dict]:
    """A confirmed commit below one confirmed before it was sent (same partition)."""
    found = []
    by_partition: dict[int, list[Commit]] = defaultdict(list)
    for c in commits:
        by_partition[c.partition].append(c)
    for cs in by_partition.values():
        by_end = sorted(cs, key=lambda c: c.end)
        i, best = 0, None
        for c in sorted(cs, key=lambda c: c.start):
            while i < len(by_end) and by_end[i].end < c.start:
                if best is None or by_end[i].offset > best.offset:
                    best = by_end[i]
                i += 1
            if best is not None and c.offset < best.offset:
                found.append({"partition": c.partition, "offset": c.offset, "member": c.member,
                              "asked_at": round(c.start - START, 2), "after": best.offset, "by": best.member,
                              "confirmed_at": round(best.end - START, 2)})
    return found


def samples_backwards(samples: list[tuple[float, int, int]]) -> list[dict]:
    found, best = [], {}
    for t, p, o in sorted(samples):
        if p in best and o < best[p][1]:
            found.append({"partition": p, "offset": o, "at": round(t - START, 2), "after": best[p][1],
                          "seen_at": round(best[p][0] - START, 2)})
        if p not in best or o > best[p][1]:
            best[p] = (t, o)
    return found


def max_gap(times: list[float], start: float, end: float) -> float:
    points = [start] + sorted(t for t in times if start <= t <= end) + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def check(faults: int, acked: list[Ack], reads: list[Read], commits: list[Commit],
          samples: list[tuple[float, int, int]], final: FinalLog, window: tuple[float, float]) -> Report:
    found = {"lost": lost(acked, final), "duplicated": duplicated(final), "reordered": reordered(final),
             "phantom": phantoms(reads, final), "commits_backwards": commits_backwards(commits),
             "samples_backwards": samples_backwards(samples)}
    report = Report(faults, len(acked), lost=len(found["lost"]), duplicated=len(found["duplicated"]),
                    reordered=len(found["reordered"]), phantom=len(found["phantom"]),
                    offsets_backwards=len(found["commits_backwards"]) + len(found["samples_backwards"]),
                    max_unavailable_s=max_gap([a.time for a in acked], *window), hw_stable=final.stable,
                    max_partition_unavailable_s=max(max_gap([a.time for a in acked if a.partition == p], *window)
                                                    for p in final.records))
    report.examples = {k: v[:EXAMPLES] for k, v in found.items() if v}
    for kind, items in report.examples.items():
        log(f"VIOLATION {kind}: {len(found[kind])}, e.g. {items[:3]}")
    if not final.stable:
        log(f"VIOLATION high watermarks moved while nothing was written: {final.high_watermarks}")
    return report
