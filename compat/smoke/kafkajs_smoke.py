"""kafkajs in the client smoke matrix: runs kafkajs/smoke.js for each step and applies
the checks of smoke_common.py to what it saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import smoke_common as s

HERE = Path(__file__).resolve().parent


def node(args, step: str, **extra) -> dict:
    cmd = [os.environ.get("NODE", "node"), str(HERE / "kafkajs" / "smoke.js"), step,
           "--bootstrap", args.bootstrap, "--topic", args.topic, "--group", args.group]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    # stderr (kafkajs' log) goes straight to the step's log.
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
                         timeout=s.POLL_DEADLINE + 20).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
        if line.startswith("ERROR "):
            raise s.Fail(line[len("ERROR "):])
    raise s.Fail(f"smoke.js printed no result: {out[-300:]!r}")


def create(args, state) -> str:
    r = node(args, "create")
    s.expect(r["created"] is True, "createTopics answered false (the topic existed)")
    return s.check_created(r["partitions"])


def produce(args, state) -> str:
    r = node(args, "produce", messages=json.dumps(s.messages()))
    return s.check_produced(state, r["records"])


def consume(args, state) -> str:
    r = node(args, "consume", count=s.FIRST, deadline=s.POLL_DEADLINE)
    return s.check_first_read(state, r["records"], r["committed"])


def resume(args, state) -> str:
    r = node(args, "consume", count=s.remaining(state), deadline=s.POLL_DEADLINE, linger=s.LINGER)
    return s.check_resumed(state, r["records"])


def describe(args, state) -> str:
    r = node(args, "describe")
    s.expect(all(p["error"] == 0 for p in r["partitions"]), f"partition errors: {r['partitions']}")
    s.expect(len(r["groups"]) == 1, f"describeGroups returned {r['groups']}")
    [g] = r["groups"]
    s.expect(g["error"] == 0 and g["id"] == args.group, f"describeGroups: {g}")
    s.expect(g["protocolType"] == "consumer", f"group protocol type {g['protocolType']!r}")
    return s.check_described(state, partitions=len(r["partitions"]), leaders=[p["leader"] for p in r["partitions"]],
                             brokers=r["brokers"], group_state=g["state"], offsets=r["offsets"])


if __name__ == "__main__":
    s.main({"create": create, "produce": produce, "consume": consume, "resume": resume, "describe": describe})
