"""Partition reassignment (KIP-455), replication throttles, fetch from follower (KIP-392)
and DescribeProducers on followers in a three-node cluster of real `gregor serve`
processes (test_replication.py's `replicated_cluster`), driven by `gregor topics reassign`
(kafka-reassign-partitions.sh), confluent-kafka, kafkajs and hand-built requests.

Contract, one test each:

- `test_reassignment_under_load_moves_the_leader_away`: moving an RF 2 partition to a
  new replica set without its leader (`--execute`) while an idempotent acks=all producer
  writes (min.insync.replicas 2) loses nothing: the move completes with the target
  replicas in sync and one of them leading, the producer carries on there, every
  acknowledged record is read back once, at its acknowledged offset, in production
  order; `--list` is empty afterwards, `--verify` reports completion, the removed
  broker's log directory is deleted and the new replica's log holds every record.
- `test_raising_the_replication_factor_copies_the_data`: a plan with three replicas for
  an RF 1 partition is refused under `--disallow-replication-factor-change`
  (INVALID_REPLICATION_FACTOR, KIP-860), otherwise makes all three in sync; the new
  replicas hold the whole log on disk, and after SIGKILL of the original sole replica
  everything is read from them.
- `test_cancel_goes_back_to_the_original_replicas`: a reassignment toward a killed broker
  cannot complete: `--list` shows it with its adding and removing replicas, `--verify`
  says it is in progress, `--cancel` restores the original replicas and ISR (a second
  cancel finds nothing active) and the killed broker, restarted, never hosts the
  partition.
- `test_throttle_holds_back_the_reassignment_until_removed`: `--execute --throttle 50000`
  sets the broker rates and the topic's throttled replicas (Kafka's layout); a new
  replica of a ~2 MB partition is not done after 5 s, and `--verify` keeps the
  throttles while it is running; once the rates are deleted (`gregor configs alter
  --broker N --delete ...`) it completes with every record copied, and `--verify`
  clears the topic throttles.
- `test_kafkajs_alters_and_lists_reassignments`: kafkajs's admin
  alterPartitionReassignments / listPartitionReassignments (the smoke matrix's install,
  skipped when missing, as test_cluster_clients.py's kafkajs test is): a move toward a killed broker is
  listed with its adding and removing replicas (all topics, and by topic and
  partition), an unknown partition and an unregistered broker are refused per partition
  (UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT), and once the broker is back
  the move completes and the list is empty.
- `test_consumer_fetches_from_the_follower_in_its_rack`: with `broker.rack` a/b/c and
  `RackAwareReplicaSelector`, a Fetch v11 to the leader with a follower's rack answers
  preferred_read_replica = that follower and no records, a Fetch v11 to the follower
  returns the records, a Fetch v4 (no rack) to it is NOT_LEADER_OR_FOLLOWER; a
  confluent-kafka consumer with `client.rack` reads every record, fetching from the
  follower (its `debug=fetch` log).
- `test_describe_producers_is_answered_by_followers`: after idempotent produces, every
  replica answers DescribeProducers with the leader's producer (id, epoch, last
  sequence), also a follower restarted from its log; a broker without a replica answers
  NOT_LEADER_OR_FOLLOWER.

Nodes are combined broker+controller voters with test_replication.py's fast failover
settings; each test takes well under a minute.
"""
from __future__ import annotations

import json
import logging
import os
import re
import struct
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType

import gregor_wire as w
from conftest import REPO, Broker, broker_binary
from gregor_support import assert_delivered, confluent_producer, produce_confluent, read_confluent
from test_cluster_clients import KAFKAJS_DIR, NODE, kafkajs_installed  # noqa: F401 (the fixture)
from test_replication import (
    ALL,
    FAILOVER,
    BackgroundProducer,
    Cluster,
    index,
    isr_of,
    leader_of,
    log_end_offset,
    partition_metadata,
    replicated_cluster,  # noqa: F401 (the fixture)
    wait_until,
)
from txn_support import describe_producers_v0, parse_batches

pytestmark = pytest.mark.timeout(120)  # each should take well under a minute

NOT_LEADER_OR_FOLLOWER = 6
RACKS = {1: "a", 2: "b", 3: "c"}
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
KAFKAJS_SCRIPT = REPO / "tests" / "python" / "cluster_reassign_kafkajs.js"
_LISTED = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+): replicas: (?P<replicas>[\d,]*)\. "
                     r"adding: (?P<adding>[\d,]*)\. removing: (?P<removing>[\d,]*)\.$")


# ---------------------------------------------------------------- helpers


def live(cl: Cluster) -> str:
    """The bootstrap addresses of the nodes running now."""
    return ",".join(b.bootstrap for b in cl.nodes.values() if b.running)


def run_gregor(bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(broker_binary()), "--bootstrap-server", bootstrap, *args], capture_output=True,
                          text=True, timeout=60)


def gregor(bootstrap: str, *args: str) -> str:
    """Runs `gregor --bootstrap-server B ARGS`; returns its stdout, fails on a non-zero exit."""
    r = run_gregor(bootstrap, *args)
    assert r.returncode == 0, f"gregor {' '.join(args)} exited with {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def reassign(bootstrap: str, *args: str) -> str:
    return gregor(bootstrap, "topics", "reassign", *args)


def write_plan(path: Path, topic: str, moves: dict[int, list[int]]) -> str:
    """A kafka-reassign-partitions.sh plan moving each partition to its replicas."""
    plan = {"version": 1, "partitions": [{"topic": topic, "partition": p, "replicas": r} for p, r in moves.items()]}
    path.write_text(json.dumps(plan))
    return str(path)


def listed(bootstrap: str) -> dict[tuple[str, int], tuple[list[int], list[int], list[int]]]:
    """`--list`: {(topic, partition): (replicas, adding, removing)}."""
    out = reassign(bootstrap, "--list")
    if out.strip() == "No partition reassignments found.":
        return {}
    lines = out.strip().splitlines()
    assert lines[0] == "Current partition reassignments:", out
    ids = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    found = {}
    for line in lines[1:]:
        m = _LISTED.match(line)
        assert m, f"unexpected --list line {line!r}"
        found[(m["topic"], int(m["partition"]))] = (ids(m["replicas"]), ids(m["adding"]), ids(m["removing"]))
    return found


def create_topic(cl: Cluster, name: str, rf: int, config: dict[str, str] | None = None) -> list[int]:
    """One partition with `rf` replicas placed by the cluster; waits until all of them are
    in sync and returns them in assignment order."""
    topic = NewTopic(name, num_partitions=1, replication_factor=rf, config=config or {})
    cl.admin.create_topics([topic], request_timeout=15)[name].result(20)
    replicas = wait_until(lambda: list(partition_metadata(cl.admin, name, 0).replicas), lambda r: len(r) == rf, 20,
                          f"{name}-0 with {rf} replicas")
    wait_until(lambda: isr_of(cl.admin, name, 0), lambda isr: isr == sorted(replicas), 20, f"{name}-0 fully in sync")
    return replicas


def wait_reassigned(cl: Cluster, topic: str, target: list[int], timeout: float = 30.0) -> None:
    """Until nothing is listed for the partition and Metadata shows the target replicas,
    all in sync, led by one of them."""
    wait_until(lambda: listed(live(cl)).get((topic, 0)), lambda x: x is None, timeout, f"{topic}-0 reassigned")
    wait_until(lambda: partition_metadata(cl.admin, topic, 0),
               lambda p: list(p.replicas) == target and sorted(p.isrs) == sorted(target) and p.leader in target,
               15, f"{topic}-0 on {target}, all in sync, led by one of them")


def values_of(bootstrap: str, topic: str) -> list[str]:
    return [m.value.decode() for m in read_confluent(bootstrap, topic, {0: 0}, timeout=60)]


def broker_config(cl: Cluster, node: int, key: str) -> str | None:
    resource = ConfigResource(ResourceType.BROKER, str(node))
    entry = cl.admin.describe_configs([resource])[resource].result(15).get(key)
    return None if entry is None else entry.value


def topic_config(cl: Cluster, topic: str, key: str) -> str | None:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entry = cl.admin.describe_configs([resource])[resource].result(15).get(key)
    return None if entry is None else entry.value


# ---------------------------------------------------------------- wire: Fetch v11 (KIP-392)


def fetch_v11(correlation_id: int, topic: str, partition: int, offset: int, rack: str, max_wait_ms: int = 100,
              max_bytes: int = 1 << 20) -> bytes:
    """A whole sessionless Fetch v11 request frame (read_uncommitted) for one partition,
    from a consumer in `rack` (rack_id, the last field)."""
    body = (
        struct.pack(">iiiib", -1, max_wait_ms, 0, max_bytes, 0)
        + struct.pack(">ii", 0, -1)  # session id 0, epoch -1: a full fetch without a session
        + struct.pack(">i", 1)
        + w.string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">iiqqi", partition, -1, offset, -1, max_bytes)  # no current leader epoch
        + struct.pack(">i", 0)  # forgotten topics
        + w.string(rack)
    )
    return w.frame(w.request_header(w.API_FETCH, 11, correlation_id) + body)


def raw_fetch_v11(bootstrap: str, topic: str, partition: int, offset: int, rack: str) -> tuple[int, int, int, list]:
    """(error code, high watermark, preferred_read_replica, batches) of one partition."""
    with w.RawConnection(bootstrap) as c:
        payload = c.request(fetch_v11(5, topic, partition, offset, rack))
    corr, _throttle, error, _session, ntopics = struct.unpack_from(">iihii", payload, 0)
    assert (corr, error, ntopics) == (5, 0, 1), (corr, error, ntopics)
    pos = 18
    (nlen,) = struct.unpack_from(">h", payload, pos)
    pos += 2 + nlen
    (nparts,) = struct.unpack_from(">i", payload, pos)
    assert nparts == 1, nparts
    pos += 4
    _index, perror, hw, _lso, _start, naborted = struct.unpack_from(">ihqqqi", payload, pos)
    pos += 34 + max(naborted, 0) * 16
    preferred, rlen = struct.unpack_from(">ii", payload, pos)
    pos += 8
    return perror, hw, preferred, parse_batches(payload[pos: pos + max(rlen, 0)])


# ---------------------------------------------------------------- tests


def test_reassignment_under_load_moves_the_leader_away(replicated_cluster, tmp_path):
    cl = replicated_cluster("mv")
    before = create_topic(cl, "moving", 2, {"min.insync.replicas": "2"})
    leader = leader_of(cl.admin, "moving", 0)
    newcomer = next(i for i in ALL if i not in before)
    stays = next(i for i in before if i != leader)
    target = [newcomer, stays]  # the leader leaves
    plan = write_plan(tmp_path / "plan.json", "moving", {0: target})

    producer = BackgroundProducer(cl.bootstrap, "moving", 1)
    producer.start()
    try:
        wait_until(lambda: producer.acks_on(0), lambda n: n >= 300, 30, "300 acks before the move")
        out = reassign(cl.bootstrap, "--execute", "--reassignment-json-file", plan)
        assert "Successfully started partition reassignments for moving-0" in out, out
        current = json.loads(out.split("Current partition replica assignment")[1].split("Save this")[0])
        assert current["partitions"][0]["replicas"] == before, out
        wait_reassigned(cl, "moving", target)
        acked = producer.acks_on(0)
        wait_until(lambda: producer.acks_on(0), lambda n: n >= acked + 200, 30, "200 acks from the new leader")
    finally:
        producer.stopping.set()
    producer.finish()

    msgs = read_confluent(cl.bootstrap, "moving", {0: 0}, timeout=60)
    counts = Counter(m.value.decode() for m in msgs)
    dups = sorted((v for v, c in counts.items() if c > 1), key=index)
    assert not dups, f"{len(dups)} values stored more than once, e.g. {dups[:10]}"
    missing = [v for _, _, v, _ in producer.acked if v not in counts]
    assert not missing, f"{len(missing)} acknowledged values lost, e.g. {missing[:10]}"
    stored = {m.offset: m.value.decode() for m in msgs}
    moved = [(o, v, stored.get(o)) for _, o, v, _ in producer.acked if stored.get(o) != v]
    assert not moved, f"acknowledged at one offset, stored at another: {moved[:10]}"
    in_log = [index(m.value.decode()) for m in sorted(msgs, key=lambda m: m.offset)]
    assert in_log == sorted(in_log), "values out of production order"

    assert listed(cl.bootstrap) == {}
    verified = reassign(cl.bootstrap, "--verify", "--reassignment-json-file", plan)
    assert "Reassignment of partition moving-0 is completed." in verified, verified
    wait_until(lambda: (cl.nodes[leader].data_dir / "moving-0").exists(), lambda there: not there, 15,
               f"the log dir of moving-0 deleted on the removed broker {leader}")
    wait_until(lambda: log_end_offset(cl.nodes[newcomer].data_dir / "moving-0"), lambda end: end == len(msgs), 10,
               f"node {newcomer}'s log of moving-0 at offset {len(msgs)}")


def test_raising_the_replication_factor_copies_the_data(replicated_cluster, tmp_path):
    cl = replicated_cluster("rf")
    [sole] = create_topic(cl, "grow", 1)
    others = [i for i in ALL if i != sole]
    sent = [f"v{i}" for i in range(500)]
    assert_delivered(produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "grow",
                                       [{"partition": 0, "key": f"k{i}", "value": v} for i, v in enumerate(sent)]))
    target = [sole, *others]
    plan = write_plan(tmp_path / "plan.json", "grow", {0: target})
    # KIP-860: a request that does not allow a change of the replication factor is refused.
    refused = run_gregor(cl.bootstrap, "topics", "reassign", "--execute", "--reassignment-json-file", plan,
                         "--disallow-replication-factor-change")
    assert refused.returncode != 0 and "INVALID_REPLICATION_FACTOR" in refused.stderr, refused
    assert listed(cl.bootstrap) == {}
    reassign(cl.bootstrap, "--execute", "--reassignment-json-file", plan)
    wait_reassigned(cl, "grow", target)
    assert isr_of(cl.admin, "grow", 0) == ALL
    for i in others:
        wait_until(lambda: log_end_offset(cl.nodes[i].data_dir / "grow-0"), lambda end: end == 500, 10,
                   f"node {i}'s log of grow-0 at offset 500")

    cl.kill(sole)
    wait_until(lambda: leader_of(cl.admin, "grow", 0), lambda l: l in others, 20,
               f"a new replica leading grow-0 after node {sole} was killed")
    assert values_of(live(cl), "grow") == sent


def test_cancel_goes_back_to_the_original_replicas(replicated_cluster, tmp_path):
    cl = replicated_cluster("cx")
    before = create_topic(cl, "cancel", 2)
    down = next(i for i in ALL if i not in before)
    assert_delivered(produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "cancel",
                                       [{"partition": 0, "value": f"before-{i}"} for i in range(50)]))
    cl.kill(down)
    # Fenced, as a dead broker is for an operator (--cancel clears the throttles on every
    # broker Metadata lists, as Kafka's tool does, so it must not list the dead one).
    wait_until(cl.broker_ids, lambda ids: down not in ids, 20, f"node {down} fenced")
    target = [before[0], down]
    plan = write_plan(tmp_path / "plan.json", "cancel", {0: target})
    out = reassign(live(cl), "--execute", "--reassignment-json-file", plan)
    assert "Successfully started partition reassignments for cancel-0" in out, out

    expected = {("cancel", 0): ([before[0], down, before[1]], [down], [before[1]])}  # target, then who leaves
    wait_until(lambda: listed(live(cl)), lambda found: found == expected, 10, "the reassignment listed")
    verified = reassign(live(cl), "--verify", "--reassignment-json-file", plan)
    assert "Reassignment of partition cancel-0 is still in progress." in verified, verified
    assert "Clearing" not in verified, verified
    time.sleep(3)
    assert listed(live(cl)) == expected, "a move toward a dead broker completed"

    out = reassign(live(cl), "--cancel", "--reassignment-json-file", plan)
    assert "Successfully cancelled partition reassignments for: cancel-0" in out, out
    wait_until(lambda: listed(live(cl)), lambda found: found == {}, 10, "no reassignment listed")
    md = wait_until(lambda: partition_metadata(cl.admin, "cancel", 0),
                    lambda p: list(p.replicas) == before and sorted(p.isrs) == sorted(before), 15,
                    f"cancel-0 back on {before}")
    assert md.leader in before
    again = reassign(live(cl), "--cancel", "--reassignment-json-file", plan)
    assert "None of the specified partition reassignments are active." in again, again

    cl.restart(down)
    wait_until(cl.broker_ids, lambda ids: ids == ALL, 20, f"node {down} registered again")
    assert_delivered(produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "cancel",
                                       [{"partition": 0, "value": "after"}]))
    assert values_of(cl.bootstrap, "cancel") == [f"before-{i}" for i in range(50)] + ["after"]
    assert list(partition_metadata(cl.admin, "cancel", 0).replicas) == before
    assert not (cl.nodes[down].data_dir / "cancel-0").exists(), f"node {down} hosts a cancelled replica"


def test_throttle_holds_back_the_reassignment_until_removed(replicated_cluster, tmp_path):
    cl = replicated_cluster("thr")
    [sole] = create_topic(cl, "throttled", 1)
    newcomer = next(i for i in ALL if i != sole)
    payload = os.urandom(5000).hex()  # 10 KB, incompressible anyway
    assert_delivered(produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "throttled",
                                       [{"partition": 0, "value": f"{i}:{payload}"} for i in range(200)]))
    target = [sole, newcomer]
    plan = write_plan(tmp_path / "plan.json", "throttled", {0: target})
    out = reassign(cl.bootstrap, "--execute", "--reassignment-json-file", plan, "--throttle", "50000")
    assert "The inter-broker throttle limit was set to 50000 B/s" in out, out
    assert "Successfully started partition reassignments for throttled-0" in out, out

    def throttles():
        """Kafka's layout: the rate on every broker involved, the current replicas
        throttled as leaders and the new ones as followers."""
        rates = [broker_config(cl, node, f"{side}.replication.throttled.rate")
                 for node in target for side in ("leader", "follower")]
        return rates, [topic_config(cl, "throttled", f"{side}.replication.throttled.replicas")
                       for side in ("leader", "follower")]

    wait_until(throttles, lambda t: t == (["50000"] * 4, [f"0:{sole}", f"0:{newcomer}"]), 10, "the throttles set")

    time.sleep(5)  # 2 MB at 50 KB/s take 40 s
    assert listed(cl.bootstrap) == {("throttled", 0): (target, [newcomer], [])}, "done within 5 s at 50 KB/s"
    copied = log_end_offset(cl.nodes[newcomer].data_dir / "throttled-0")
    assert copied < 200, f"node {newcomer} copied all 200 records within 5 s at 50 KB/s"
    verified = reassign(cl.bootstrap, "--verify", "--reassignment-json-file", plan)
    assert "Reassignment of partition throttled-0 is still in progress." in verified, verified
    assert "Clearing" not in verified, verified
    assert topic_config(cl, "throttled", "follower.replication.throttled.replicas") == f"0:{newcomer}"

    for node in ALL:
        gregor(cl.bootstrap, "configs", "alter", "--broker", str(node), "--delete", "leader.replication.throttled.rate",
               "--delete", "follower.replication.throttled.rate")
    wait_reassigned(cl, "throttled", target)
    wait_until(lambda: log_end_offset(cl.nodes[newcomer].data_dir / "throttled-0"), lambda end: end == 200, 10,
               f"node {newcomer}'s log of throttled-0 at offset 200")
    verified = reassign(cl.bootstrap, "--verify", "--reassignment-json-file", plan)
    assert "Reassignment of partition throttled-0 is completed." in verified, verified
    assert "Clearing topic-level throttles on topic throttled" in verified, verified
    for key in ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas"):
        wait_until(lambda: topic_config(cl, "throttled", key), lambda v: v in ("", None), 10, f"{key} cleared")
    values = values_of(cl.bootstrap, "throttled")
    assert [v.split(":")[0] for v in values] == [str(i) for i in range(200)]


# ---------------------------------------------------------------- kafkajs


def kafkajs(bootstrap: str, op: str, topics, log: Path) -> dict:
    """One admin call through cluster_reassign_kafkajs.js: {"ok": True, "value": ...} or
    {"ok": False, "error": {...}}."""
    env = dict(os.environ, NODE_PATH=str(KAFKAJS_DIR / "node_modules"))
    cmd = [NODE, str(KAFKAJS_SCRIPT), "--bootstrap", bootstrap, "--op", op]
    if topics is not None:
        cmd += ["--topics", json.dumps(topics)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n{r.stderr}\n")
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = "\n".join(r.stderr.splitlines()[-40:])
    pytest.fail(f"kafkajs {op} failed (exit {r.returncode}): {r.stdout.strip()[-500:]}\n"
                f"--- log tail ({log}) ---\n{tail}")


def js_listed(result: dict) -> dict[tuple[str, int], tuple[list[int], list[int], list[int]]]:
    assert result["ok"], result
    return {(t["name"], p["partition"]): (p["replicas"], p["addingReplicas"], p["removingReplicas"])
            for t in result["value"]["topics"] for p in t["partitions"]}


def test_kafkajs_alters_and_lists_reassignments(kafkajs_installed, replicated_cluster, tmp_path):
    cl = replicated_cluster("js")
    log = tmp_path / "kafkajs.log"
    before = create_topic(cl, "js-move", 2)
    create_topic(cl, "js-still", 1)
    down = next(i for i in ALL if i not in before)
    assert_delivered(produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "js-move",
                                       [{"partition": 0, "value": f"v{i}"} for i in range(100)]))
    cl.kill(down)
    target = [before[0], down]
    moved = kafkajs(live(cl), "alter",
                    [{"topic": "js-move", "partitionAssignment": [{"partition": 0, "replicas": target}]}], log)
    assert moved == {"ok": True, "value": None}, moved

    expected = {("js-move", 0): ([before[0], down, before[1]], [down], [before[1]])}
    wait_until(lambda: js_listed(kafkajs(live(cl), "list", None, log)), lambda found: found == expected, 10,
               "kafkajs listing the reassignment")
    assert js_listed(kafkajs(live(cl), "list", [{"topic": "js-move", "partitions": [0]}], log)) == expected
    assert js_listed(kafkajs(live(cl), "list", [{"topic": "js-still", "partitions": [0]}], log)) == {}
    assert listed(live(cl)) == expected, "the CLI sees what kafkajs started"

    refused = kafkajs(live(cl), "alter", [{"topic": "js-still", "partitionAssignment": [
        {"partition": 5, "replicas": [1]},  # no such partition
        {"partition": 0, "replicas": [99]},  # no such broker
    ]}], log)
    assert not refused["ok"] and refused["error"]["name"] == "KafkaJSAggregateError", refused
    errors = {e["partition"]: e["type"] for e in refused["error"]["errors"]}
    assert errors == {5: "UNKNOWN_TOPIC_OR_PARTITION", 0: "INVALID_REPLICA_ASSIGNMENT"}, refused
    assert len(partition_metadata(cl.admin, "js-still", 0).replicas) == 1

    cl.restart(down)
    wait_reassigned(cl, "js-move", target)
    wait_until(lambda: js_listed(kafkajs(cl.bootstrap, "list", None, log)), lambda found: found == {}, 10,
               "kafkajs listing no reassignment")
    wait_until(lambda: log_end_offset(cl.nodes[down].data_dir / "js-move-0"), lambda end: end == 100, 10,
               f"node {down}'s log of js-move-0 at offset 100")
    assert values_of(cl.bootstrap, "js-move") == [f"v{i}" for i in range(100)]


# ---------------------------------------------------------------- fetch from follower


class NodeSetsBroker(Broker):
    """A Broker with settings of its own on top of the cluster's common `sets`."""

    def __init__(self, *args, node_sets: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.node_sets = node_sets

    def command(self, port: int | None = None, extra_args: list[str] | None = None) -> list[str]:
        cmd = super().command(port, extra_args)
        for k, v in self.node_sets.items():
            cmd += ["--set", f"{k}={v}"]
        return cmd


def racked_cluster(broker_factory, prefix: str) -> Cluster:
    """test_replication's Cluster whose node i is in rack RACKS[i], every node with the
    rack-aware replica selector (Cluster gives every node the same sets, so the brokers
    are made here: Cluster names node i f"{prefix}{i}")."""

    def make(name: str) -> Broker:
        node = int(name[len(prefix):])
        b = NodeSetsBroker(broker_factory.tmp_path / f"{name}-data", broker_factory.tmp_path / f"{name}-logs",
                           node_sets={"broker.rack": RACKS[node], "replica.selector.class": RACK_AWARE})
        broker_factory.brokers.append(b)  # killed at teardown, stderr printed on failure
        return b

    return Cluster(make, prefix, dict(FAILOVER))


def test_consumer_fetches_from_the_follower_in_its_rack(broker_factory):
    cl = racked_cluster(broker_factory, "ff")
    cl.create_topic("racked", 1)
    leader = leader_of(cl.admin, "racked", 0)
    follower = next(i for i in ALL if i != leader)
    rack = RACKS[follower]
    sent = [f"r{i}" for i in range(100)]
    assert_delivered(produce_confluent(confluent_producer(cl.bootstrap, acks="all"), "racked",
                                       [{"partition": 0, "value": v} for v in sent]))

    # The leader sends a consumer in the follower's rack there, with no records...
    error, _, preferred, batches = raw_fetch_v11(cl.nodes[leader].bootstrap, "racked", 0, 0, rack)
    assert (error, preferred, batches) == (0, follower, []), (error, preferred, batches)
    # ... but serves one in its own rack itself.
    error, _, preferred, batches = raw_fetch_v11(cl.nodes[leader].bootstrap, "racked", 0, 0, RACKS[leader])
    assert (error, preferred) == (0, -1) and sum(b.record_count for b in batches) == 100, (error, preferred, batches)
    # The follower serves Fetch v11 from consumers, up to its high watermark.
    error, hw, preferred, batches = wait_until(
        lambda: raw_fetch_v11(cl.nodes[follower].bootstrap, "racked", 0, 0, rack), lambda r: r[1] == 100, 10,
        f"the follower {follower}'s high watermark at 100")
    assert (error, preferred) == (0, -1), (error, preferred)
    assert batches[0].base_offset == 0 and batches[-1].last_offset == 99
    assert sum(b.record_count for b in batches) == 100
    # Before v11 a consumer may only read from the leader (Kafka: fetchOnlyLeader).
    with w.RawConnection(cl.nodes[follower].bootstrap) as c:
        _, old = w.parse_fetch_v4(c.request(w.fetch_v4(9, "racked", 0, 0)))
    assert old.error_code == NOT_LEADER_OR_FOLLOWER, old

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("test_reassignment.librdkafka")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(Collect())
    msgs = read_confluent(cl.bootstrap, "racked", {0: 0}, **{"client.rack": rack, "debug": "fetch", "logger": logger})
    assert [m.value.decode() for m in msgs] == sent
    # librdkafka moves the partition to the broker the leader named, and every record came from there.
    moved = [line for line in lines if f"racked [0]: migrating from broker {leader} to {follower}" in line
             and "preferred replica updated" in line]
    assert moved, f"librdkafka never moved racked [0] to the preferred replica {follower}:\n" + "\n".join(lines[-40:])
    enqueued: Counter = Counter()
    for line in lines:
        m = re.search(r": (\S+/\d+): Enqueue (\d+) message\(s\) .* on racked \[0\] fetch queue", line)
        if m:
            enqueued[m[1]] += int(m[2])
    assert enqueued == {f"{cl.nodes[follower].bootstrap}/{follower}": 100}, enqueued


# ---------------------------------------------------------------- DescribeProducers


def test_describe_producers_is_answered_by_followers(replicated_cluster):
    cl = replicated_cluster("dp")
    replicas = create_topic(cl, "producers", 2)
    leader = leader_of(cl.admin, "producers", 0)
    follower = next(i for i in replicas if i != leader)
    outsider = next(i for i in ALL if i not in replicas)
    producer = confluent_producer(cl.bootstrap, acks="all", **{"enable.idempotence": True})
    assert_delivered(produce_confluent(producer, "producers", [{"partition": 0, "value": f"p{i}"} for i in range(20)]))

    def producers_on(node: int):
        error, active = describe_producers_v0(cl.nodes[node].bootstrap, "producers", [0])[0]
        return error, [(p.producer_id, p.producer_epoch, p.last_sequence) for p in active]

    error, on_leader = producers_on(leader)
    assert error == 0 and len(on_leader) == 1 and on_leader[0][2] == 19, (error, on_leader)
    wait_until(lambda: producers_on(follower), lambda r: r == (0, on_leader), 10,
               f"follower {follower} describing the leader's producer")
    assert producers_on(outsider)[0] == NOT_LEADER_OR_FOLLOWER

    assert_delivered(produce_confluent(producer, "producers", [{"partition": 0, "value": f"q{i}"} for i in range(10)]))
    error, on_leader = producers_on(leader)
    assert error == 0 and len(on_leader) == 1 and on_leader[0][2] == 29, (error, on_leader)
    # A follower restarted rebuilds its producer state from its log.
    cl.kill(follower)
    cl.restart(follower)
    wait_until(lambda: producers_on(follower), lambda r: r == (0, on_leader), 20,
               f"follower {follower} describing the leader's producer after a restart")

