"""kcat (librdkafka's command-line client) in the client smoke matrix: each step runs
kcat in one of its modes (-P produce, -C consume, -G group consume, -L metadata) and
applies the checks of smoke_common.py. kcat has no admin API: the topic is created with
`gregor topics create`, and the offsets its group commits are read back with
`gregor groups describe` ($GREGOR_BIN)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import smoke_common as s

KCAT = os.environ.get("KCAT", "kcat")
FORMAT = r"%p\t%o\t%k\t%s\n"


def run(cmd: list[str], stdin: str | None = None) -> str:
    s.log("$ " + " ".join(cmd))
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
                       timeout=s.POLL_DEADLINE + 10)
    s.expect(r.returncode == 0, f"{os.path.basename(cmd[0])} {cmd[1]} exited with {r.returncode}")
    return r.stdout


def gregor(args, *rest: str) -> str:
    return run([os.environ["GREGOR_BIN"], *rest, "--bootstrap-server", args.bootstrap])


def kcat(args, *rest: str, stdin: str | None = None) -> str:
    # -m: metadata timeout; -q: no informational lines on stdout.
    return run([KCAT, "-b", args.bootstrap, "-m", "10", "-q", *rest], stdin=stdin)


def parse(out: str) -> list:
    return [[int(p), int(o), k, v] for p, o, k, v in (line.split("\t") for line in out.splitlines() if line)]


def metadata(args) -> dict:
    md = json.loads(kcat(args, "-L", "-J", "-t", args.topic))
    [t] = [t for t in md["topics"] if t["topic"] == args.topic]
    s.expect("error" not in t, f"metadata of {args.topic}: {t.get('error')}")
    return {"brokers": [b["id"] for b in md["brokers"]], "leaders": [p["leader"] for p in t["partitions"]]}


def create(args, state) -> str:
    s.note("kcat creates no topics: `gregor topics create --partitions 3` did, and `kcat -L` checked it")
    gregor(args, "topics", "create", args.topic, "--partitions", str(s.PARTITIONS), "--replication-factor", "1")
    return s.check_created(len(metadata(args)["leaders"])) + " (gregor topics create, seen by kcat -L)"


def produce(args, state) -> str:
    # kcat reports no partition or offset per record: they are read back with -C.
    lines = "".join(f"{k}:{v}\n" for k, v in s.messages())
    kcat(args, "-P", "-t", args.topic, "-K", ":", "-X", "acks=all", "-X", "linger.ms=5", stdin=lines)
    back = parse(kcat(args, "-C", "-t", args.topic, "-o", "beginning", "-e", "-f", FORMAT))
    return s.check_produced(state, [[k, v, p, o] for p, o, k, v in back]) + " (read back with kcat -C)"


def committed(args) -> dict:
    desc = json.loads(gregor(args, "-o", "json", "groups", "describe", args.group))
    return {o["partition"]: o["committed_offset"] for o in desc["offsets"] if o["topic"] == args.topic}


def consume(args, state) -> str:
    s.note("kcat -G commits on exit (enable.auto.commit); the offsets were read back with `gregor groups describe`")
    # -c: exit after that many records; on exit the consumer commits what it delivered.
    records = parse(kcat(args, "-G", args.group, "-o", "beginning", "-c", str(s.FIRST), "-f", FORMAT, args.topic))
    return s.check_first_read(state, records, committed(args))


def resume(args, state) -> str:
    # -o stored: start at the committed offsets; -e: exit once every partition is read to its end.
    records = parse(kcat(args, "-G", args.group, "-o", "stored", "-X", "auto.offset.reset=earliest", "-e",
                         "-f", FORMAT, args.topic))
    return s.check_resumed(state, records)


def describe(args, state) -> str:
    s.note("kcat describes no groups: admin describe is `kcat -L` (brokers, partitions, leaders)")
    md = metadata(args)
    return s.check_described(state, partitions=len(md["leaders"]), leaders=md["leaders"], brokers=md["brokers"],
                             group_state=None, offsets=None) + " (kcat -L)"


if __name__ == "__main__":
    s.main({"create": create, "produce": produce, "consume": consume, "resume": resume, "describe": describe})
