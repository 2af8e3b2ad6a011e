"""Checks of the transactional job (`txn.py`): its output topic read to the end with
read_committed, against the final log of the source topic, the offsets its group has
committed in the end, and what the job was told about each transaction.

- txn_dupes: a source record visible more than once in the output;
- txn_missing: a source record below the group's final committed offset not in the output;
- txn_half: a transaction with some records visible, not all (value tags "|<txn>|<size>");
- txn_aborted_visible: a visible record of a transaction abort_transaction() confirmed;
- txn_lost: a transaction commit_transaction() confirmed with none of its records visible;
- txn_bad: an output record whose value is not its source's, in another partition, or at
  or above the final committed offset of its source partition (its transaction's offsets
  were not committed with it), or a final committed offset below one the job was told
  was committed (offsets backwards) or above the source's end.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from .nodes import FAST_RECONNECT
from .txn import Txn

KINDS = ("txn_dupes", "txn_missing", "txn_half", "txn_aborted_visible", "txn_lost", "txn_bad")


def group_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets (OffsetFetch from a consumer that never joins)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False, **FAST_RECONNECT})
    try:
        for _ in range(10):
            try:
                tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
                return {tp.partition: max(tp.offset, 0) for tp in tps}
            except KafkaException:
                time.sleep(1)
        raise RuntimeError(f"no committed offsets of {group}")
    finally:
        c.close()


def read_committed(bootstrap: str, topic: str, partitions: int, timeout: float = 120.0) -> list[tuple[int, int, str, str]]:
    """(partition, offset, key, value) of every record visible under read_committed, up to
    the last stable offset (end-of-partition events say when each partition is done)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "gchaos-txn-checker", "isolation.level": "read_committed",
                  "enable.auto.commit": False, "enable.partition.eof": True, "fetch.wait.max.ms": 100,
                  **FAST_RECONNECT})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=20, cached=False)[1]
                for p in range(partitions)}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out, pending = [], {p for p, e in ends.items() if e > 0}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic} not read to its last stable offsets {ends} within {timeout} s "
                                   f"(partitions {sorted(pending)} short)")
            for m in c.consume(1000, 0.5):
                err = m.error()
                if err is None:
                    out.append((m.partition(), m.offset(), m.key().decode(), m.value().decode()))
                elif err.code() == KafkaError._PARTITION_EOF and m.offset() >= ends[m.partition()]:
                    pending.discard(m.partition())
        return out
    finally:
        c.close()


def check_txn(source: dict[int, dict[int, str]], output: list[tuple[int, int, str, str]], final: dict[int, int],
              txns: list[Txn], told: dict[int, int]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {k: [] for k in KINDS}
    by_source: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    visible: Counter = Counter()
    for p, o, key, value in output:
        sp, so = map(int, key.split(":"))
        body, _t, number, size = value.rsplit("|", 3)
        by_source[(sp, so)].append((p, o))
        visible[(int(number), int(size))] += 1
        if sp != p or source.get(sp, {}).get(so) != body or so >= final.get(sp, 0):
            found["txn_bad"].append({"partition": p, "offset": o, "key": key, "value": value,
                                     "source": source.get(sp, {}).get(so), "final_committed": final.get(sp)})
    found["txn_dupes"] = [{"source": s, "at": at} for s, at in by_source.items() if len(at) > 1]
    for p, end in final.items():
        found["txn_missing"] += [{"partition": p, "offset": o, "value": source[p][o]}
                                 for o in range(end) if o in source.get(p, {}) and (p, o) not in by_source]
        source_end = max(source.get(p, {}), default=-1) + 1
        if end > source_end or end < told.get(p, 0):
            found["txn_bad"].append({"partition": p, "final_committed": end, "told_committed": told.get(p),
                                     "source_end": source_end})
    found["txn_half"] = [{"txn": n, "size": size, "visible": k} for (n, size), k in visible.items() if k != size]
    states = {t.number: t for t in txns}
    found["txn_aborted_visible"] = [{"txn": n, "visible": k, "error": states[n].error} for (n, _s), k in visible.items()
                                    if n in states and states[n].state == "aborted"]
    seen = {n for n, _s in visible}
    found["txn_lost"] = [{"txn": t.number, "size": t.size, "offsets": t.offsets} for t in txns
                         if t.state == "committed" and t.number not in seen]
    return found
