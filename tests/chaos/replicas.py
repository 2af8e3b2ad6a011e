"""Replica comparison: once the cluster is whole and quiet, every replica's own copy of
each partition (its segment files, read offline with `gregor dump-log --print-data-log`)
must hold exactly the final log up to the high watermark, and nothing past it."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .checker import FinalLog

RECORD = re.compile(r"^\| offset: (\d+) .* payload: (\S*)$")


def replica_log(binary: Path, partition_dir: Path) -> dict[int, str]:
    out = subprocess.run([str(binary), "dump-log", "--print-data-log", str(partition_dir)],
                         capture_output=True, text=True, timeout=300)
    records = {}
    for line in out.stdout.splitlines():
        m = RECORD.match(line.strip())
        if m:
            records[int(m[1])] = m[2]
    return records


def diverged(binary: Path, data_dirs: dict[int, Path], topic: str, final: FinalLog) -> tuple[int, list[dict]]:
    """Returns (replicas compared, differences): a record missing or different below the
    high watermark, or present at or above it."""
    compared, found = 0, []
    hws = final.high_watermarks[-1]
    for node, data_dir in sorted(data_dirs.items()):
        for p, expected in sorted(final.records.items()):
            pdir = data_dir / f"{topic}-{p}"
            if not pdir.is_dir():
                continue  # not a replica of p (5 nodes, RF 3)
            compared += 1
            copy = replica_log(binary, pdir)
            for o in sorted(set(expected) | set(copy)):
                want = expected.get(o) if o < hws[p] else None
                if copy.get(o) != want:
                    found.append({"node": node, "partition": p, "offset": o, "replica": copy.get(o),
                                  "final": want, "high_watermark": hws[p]})
    return compared, found
