"""kafkajs and kcat against a three-node cluster of real `gregor serve` processes, each
given one bootstrap address only (test_cluster.py does the same for confluent-kafka and
kafka-python).

Contract: through any of the three addresses a client learns all three brokers from
Metadata, creates a topic whose partitions are led by different brokers, produces to
each partition's leader (a broker that does not lead a partition answers
NOT_LEADER_OR_FOLLOWER, which sends the client back to Metadata) and reads everything
back, in a consumer group (kafkajs: FindCoordinator may name another broker) or by
partition (kcat -C). Partition data is not replicated yet (cluster part 2), so the
topics have replication factor 1.

kafkajs is the smoke matrix's install (`compat/smoke/run --client kafkajs` runs `npm ci`
in compat/smoke/kafkajs) and kcat Debian's package, as there: a missing one is skipped,
unless COMPAT_REQUIRE_ALL=1, which makes it a failure as in `compat/smoke/run`.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess

import pytest

from conftest import REPO, broker_binary
from test_cluster import start_cluster

KAFKAJS_DIR = REPO / "compat" / "smoke" / "kafkajs"
KAFKAJS_SCRIPT = REPO / "tests" / "python" / "cluster_kafkajs.js"
NODE = os.environ.get("NODE", "node")  # as compat/smoke/kafkajs_smoke.py
KCAT = os.environ.get("KCAT", "kcat")  # as compat/smoke/kcat_smoke.py
KCAT_FORMAT = r"%p\t%o\t%k\t%s\n"
N = 30


def unavailable(why: str) -> None:
    """Skips, as the smoke matrix does with a client it cannot install, or fails under
    COMPAT_REQUIRE_ALL=1."""
    if os.environ.get("COMPAT_REQUIRE_ALL") == "1":
        pytest.fail(f"{why} (COMPAT_REQUIRE_ALL=1)")
    pytest.skip(why)


@pytest.fixture
def kafkajs_installed() -> None:
    """Before the cluster starts, so that a skip costs nothing."""
    if shutil.which(NODE) is None:
        unavailable(f"{NODE} is not installed (the smoke matrix's kafkajs needs node)")
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs" / "package.json").exists():
        unavailable(f"kafkajs is not installed in {KAFKAJS_DIR}/node_modules: run `compat/smoke/run --client kafkajs` "
                    "(npm ci)")


@pytest.fixture
def kcat_installed() -> None:
    if shutil.which(KCAT) is None:
        unavailable(f"{KCAT} is not installed: `apt-get install kcat` (`compat/smoke/run --client kcat` installs it)")


@pytest.fixture
def cluster(broker_factory):
    # One consumer per group: no 3 s wait for more members before the first assignment.
    return start_cluster(broker_factory, "node", {"group.initial.rebalance.delay.ms": "0"})


def keyed_layout(records: list) -> None:
    """records: [partition, offset, key, value]; each key on one partition, offsets dense."""
    parts_of = collections.defaultdict(set)
    offsets = collections.defaultdict(list)
    for p, o, k, _ in records:
        parts_of[k].add(p)
        offsets[p].append(o)
    assert all(len(ps) == 1 for ps in parts_of.values()), f"keys on several partitions: {dict(parts_of)}"
    for p, offs in offsets.items():
        assert sorted(offs) == list(range(len(offs))), f"partition {p}: offsets {sorted(offs)}"


# ---------------------------------------------------------------- kafkajs


def kafkajs(bootstrap: str, topic: str, group: str, log) -> dict:
    env = dict(os.environ, NODE_PATH=str(KAFKAJS_DIR / "node_modules"))
    cmd = [NODE, str(KAFKAJS_SCRIPT), "--bootstrap", bootstrap, "--topic", topic, "--group", group,
           "--count", str(N), "--deadline", "25"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    log.write_text(r.stderr)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = "\n".join(r.stderr.splitlines()[-40:])
    pytest.fail(f"kafkajs through {bootstrap} failed (exit {r.returncode}): {r.stdout.strip()[-500:]}\n"
                f"--- kafkajs log tail ({log}) ---\n{tail}")


def test_kafkajs_creates_produces_and_consumes_through_each_bootstrap_address(kafkajs_installed, cluster, tmp_path):
    """kafkajs is the one client here that is not librdkafka or Java-like: its own
    Metadata refresh on NOT_LEADER_OR_FOLLOWER, its own group coordinator lookup."""
    for i, b in cluster.items():
        topic, group = f"js-via-{i}", f"js-group-{i}"
        r = kafkajs(b.bootstrap, topic, group, tmp_path / f"kafkajs-{i}.log")
        assert r["created"] is True, f"createTopics through node {i} answered false"
        assert sorted(r["cluster"]) == [1, 2, 3], f"describeCluster through node {i}: {r['cluster']}"
        meta = r["metadata"]
        assert sorted(p["partition"] for p in meta) == [0, 1, 2] and all(p["error"] == 0 for p in meta), meta
        assert sorted(p["leader"] for p in meta) == [1, 2, 3], f"one partition per broker: {meta}"
        assert all(a["error"] == 0 for a in r["acks"]), r["acks"]
        assert sorted(a["partition"] for a in r["acks"]) == [0, 1, 2], f"produced to every partition: {r['acks']}"

        records = r["records"]
        sent = {(f"key-{j % 10}", f"value-{j}") for j in range(N)}
        assert len(records) == N, f"through node {i}: read {len(records)} of {N}"
        assert {(k, v) for _, _, k, v in records} == sent
        keyed_layout(records)
        ends = collections.Counter(p for p, _, _, _ in records)
        committed = {int(p): o for p, o in r["committed"].items() if o >= 0}
        assert committed == dict(ends), f"committed offsets through node {i}: {r['committed']}, read {dict(ends)}"


# ---------------------------------------------------------------- kcat


def kcat(bootstrap: str, *args: str, stdin: str | None = None) -> str:
    # -m: metadata timeout; -q: no informational lines on stdout.
    r = subprocess.run([KCAT, "-b", bootstrap, "-m", "10", "-q", *args], input=stdin, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, f"kcat -b {bootstrap} {' '.join(args)} exited with {r.returncode}:\n{r.stderr}"
    return r.stdout


def test_kcat_lists_the_cluster_and_moves_records_between_bootstrap_addresses(kcat_installed, cluster):
    """kcat is librdkafka behind a command line, what operators reach for first: -L
    through any address shows the whole cluster, and records produced through one
    address are read back through another."""
    topic = "kcat-events"
    created = subprocess.run([str(broker_binary()), "--bootstrap-server", cluster[1].bootstrap, "topics", "create",
                              topic, "--partitions", "3", "--replication-factor", "1"],
                             capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr

    for i, b in cluster.items():
        md = json.loads(kcat(b.bootstrap, "-L", "-J"))
        assert sorted(x["id"] for x in md["brokers"]) == [1, 2, 3], f"kcat -L through node {i}: {md['brokers']}"
        [t] = [t for t in md["topics"] if t["topic"] == topic]
        assert "error" not in t, t
        assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2], t
        assert sorted(p["leader"] for p in t["partitions"]) == [1, 2, 3], f"one partition per broker: {t}"

    # Produce through node i, read everything so far through the next one.
    sent = []
    for i in (1, 2, 3):
        batch = [(f"key-{j % 10}", f"value-{i}-{j}") for j in range(N // 3)]
        kcat(cluster[i].bootstrap, "-P", "-t", topic, "-K", ":", "-X", "acks=all",
             stdin="".join(f"{k}:{v}\n" for k, v in batch))
        sent += batch
        reader = i % 3 + 1
        out = kcat(cluster[reader].bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", KCAT_FORMAT)
        records = [[int(p), int(o), k, v] for p, o, k, v in (line.split("\t") for line in out.splitlines() if line)]
        assert sorted((k, v) for _, _, k, v in records) == sorted(sent), \
            f"produced through node {i}, read through node {reader}"
        keyed_layout(records)
