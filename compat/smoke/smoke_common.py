"""The scenario and the checks of the client smoke matrix (compat/smoke/run), shared by
every client program. Standard library only: the kcat and kafkajs programs run on the
system python3, the Python clients in the project's venv.

A client program is called once per step, as

    PROGRAM STEP --bootstrap HOST:PORT --topic T --group G --state FILE

with STEP one of create, produce, consume, resume, describe (the driver restarts the
broker between consume and resume). It prints what it did on stderr and its verdict as
the last stdout line: "SMOKE pass DETAIL", "SMOKE fail WHY" or "SMOKE na WHY" (the
library cannot do the step). "SMOKE-NOTE TEXT" lines are footnotes for the table.
The state file (JSON) carries what earlier steps saw: the records produced, the offsets
committed before the restart.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import traceback
from pathlib import Path

PARTITIONS = 3
N = 200  # records produced
KEYS = 20  # distinct keys, so that every partition gets some and each key many records
FIRST = 120  # records read and committed before the restart; the rest come after it
POLL_DEADLINE = 30.0  # seconds a consumer waits for the records it expects
LINGER = 1.0  # seconds a consumer keeps polling after that, to see records it should not get
STEPS = ("create", "produce", "consume", "resume", "describe")


class Fail(Exception):
    """The broker answered, but not as Kafka would (or the client saw an error)."""


class NotApplicable(Exception):
    """The library has no way to do this step."""


def messages() -> list[tuple[str, str]]:
    return [(f"key-{i % KEYS:02d}", f"value-{i:03d}") for i in range(N)]


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def note(text: str) -> None:
    print(f"SMOKE-NOTE {text}", flush=True)


def expect(cond: bool, why: str) -> None:
    if not cond:
        raise Fail(why)


def errors_in(obj, path: str = "") -> list[str]:
    """Non-zero error_code fields anywhere in a decoded response (dicts and lists)."""
    found = []
    if isinstance(obj, dict):
        code = obj.get("error_code")
        if code not in (None, 0):
            found.append(f"{path or 'response'}: error_code {code} {obj.get('error_message') or ''}".strip())
        for k, v in obj.items():
            found += errors_in(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found += errors_in(v, f"{path}[{i}]")
    return found


def check_created(partitions: int) -> str:
    expect(partitions == PARTITIONS, f"topic has {partitions} partitions in the metadata, created with {PARTITIONS}")
    return f"{PARTITIONS} partitions"


def check_produced(state: dict, records: list) -> str:
    """records: [key, value, partition, offset] per message, from the delivery reports."""
    records = [[str(k), str(v), int(p), int(o)] for k, v, p, o in records]
    state["produced"] = records
    expect(len(records) == N, f"{len(records)} of {N} records acknowledged")
    expect(sorted((k, v) for k, v, _, _ in records) == sorted(messages()), "acknowledged records differ from those sent")
    parts_of = collections.defaultdict(set)
    for k, _, p, _ in records:
        parts_of[k].add(p)
    split = {k: sorted(ps) for k, ps in parts_of.items() if len(ps) > 1}
    expect(not split, f"keys on several partitions: {split}")
    by_part = collections.defaultdict(list)
    for _, _, p, o in records:
        by_part[p].append(o)
    expect(set(by_part) <= set(range(PARTITIONS)), f"partitions outside 0..{PARTITIONS - 1}: {sorted(by_part)}")
    for p, offs in by_part.items():
        expect(sorted(offs) == list(range(len(offs))), f"partition {p}: offsets {sorted(offs)[:10]}... are not 0..{len(offs) - 1}")
    expect(len(by_part) == PARTITIONS, f"{KEYS} keys landed on partitions {sorted(by_part)} only")
    counts = {p: len(by_part[p]) for p in sorted(by_part)}
    return f"{N} records, {KEYS} keys, each on one partition, per partition {counts}"


def _produced_at(state: dict) -> dict:
    expect("produced" in state, "the produce step recorded nothing")
    return {(p, o): (k, v) for k, v, p, o in state["produced"]}


def _check_read(state: dict, records: list, want: set, what: str) -> None:
    at = _produced_at(state)
    got = [(int(p), int(o)) for p, o, _, _ in records]
    dups = [x for x, n in collections.Counter(got).items() if n > 1]
    expect(not dups, f"{what}: {len(dups)} records read twice, e.g. (partition, offset) {sorted(dups)[:5]}")
    for p, o, k, v in records:
        expect(at.get((int(p), int(o))) == (str(k), str(v)),
               f"{what}: partition {p} offset {o} is {(k, v)}, produced {at.get((int(p), int(o)))}")
    extra, missing = set(got) - want, want - set(got)
    expect(not extra, f"{what}: {len(extra)} records already committed were read again, e.g. {sorted(extra)[:5]}")
    expect(not missing, f"{what}: {len(missing)} records never arrived, e.g. {sorted(missing)[:5]}")


def check_first_read(state: dict, records: list, committed: dict) -> str:
    """records: [partition, offset, key, value] in delivery order (the first FIRST of a
    fresh group from the earliest offsets); committed: partition -> offset read back from
    the broker after the commit (absent or negative where nothing was committed)."""
    expect(len(records) == FIRST, f"read {len(records)} records, wanted {FIRST}")
    per_part = collections.Counter(int(p) for p, _, _, _ in records)
    # A fresh group reads each partition from 0 in order: what it saw is a prefix of each.
    _check_read(state, records, {(p, o) for p, n in per_part.items() for o in range(n)}, "before the restart")
    want = dict(per_part)
    state["committed"] = want
    got = {int(p): int(o) for p, o in committed.items() if o is not None and int(o) >= 0}
    expect(got == want, f"committed offsets read back {got}, committed {want}")
    return f"read {FIRST} records, committed {dict(sorted(want.items()))}, read back the same"


def check_resumed(state: dict, records: list) -> str:
    committed = {int(p): o for p, o in state.get("committed", {}).items()}
    expect(committed, "the consume step committed nothing")
    want = {(p, o) for (p, o) in _produced_at(state) if o >= committed.get(p, 0)}
    _check_read(state, records, want, "after the restart")
    return f"read the {len(want)} records after the committed offsets, none twice, none lost"


def remaining(state: dict) -> int:
    committed = {int(p): o for p, o in state.get("committed", {}).items()}
    return sum(1 for k, v, p, o in state.get("produced", []) if o >= committed.get(p, 0))


def end_offsets(state: dict) -> dict:
    ends = {p: 0 for p in range(PARTITIONS)}
    for _, _, p, o in state.get("produced", []):
        ends[p] = max(ends[p], o + 1)
    return ends


def check_described(state: dict, *, partitions: int, leaders: list, brokers: list,
                    group_state: str | None, offsets: dict | None) -> str:
    """leaders: leader id per partition; brokers: node ids; group_state and offsets
    (partition -> committed offset) are None where the client cannot describe groups."""
    expect(partitions == PARTITIONS, f"topic described with {partitions} partitions")
    expect(len(brokers) == 1, f"cluster described with brokers {brokers}, Gregor is one node")
    expect(all(lead in brokers for lead in leaders), f"partition leaders {leaders} are not the broker {brokers}")
    said = [f"topic: {partitions} partitions led by {sorted(set(leaders))}", f"cluster: brokers {brokers}"]
    if group_state is not None:
        # Both consumers have left: Kafka reports the group Empty, its offsets kept.
        expect(str(group_state).lower() == "empty", f"group state {group_state!r}, Kafka says 'Empty' once every member left")
        said.append("group: Empty")
    if offsets is not None:
        got = {int(p): int(o) for p, o in offsets.items()}
        want = end_offsets(state)
        expect(got == want, f"group offsets {got}, wanted the log end offsets {want} (all read and committed)")
        said.append(f"offsets at the log end {want}")
    return "; ".join(said)


def main(steps: dict) -> None:
    """Runs one step: steps[name](args, state) returns the detail of a pass."""
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=STEPS)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--state", required=True, type=Path)
    args = ap.parse_args()
    state = json.loads(args.state.read_text()) if args.state.exists() else {}
    started = time.monotonic()
    try:
        verdict = f"pass {steps[args.step](args, state)}"
    except NotApplicable as e:
        verdict = f"na {e}"
    except Exception as e:  # noqa: BLE001 (every error is a failed check, reported)
        traceback.print_exc()
        verdict = f"fail {type(e).__name__}: {e}" if not isinstance(e, Fail) else f"fail {e}"
    args.state.write_text(json.dumps(state))
    log(f"{args.step}: {time.monotonic() - started:.1f}s")
    print("SMOKE " + " ".join(verdict.split()), flush=True)
