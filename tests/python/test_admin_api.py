"""The admin API under /api/v1/ on the broker's HTTP listener, over real HTTP, checked
against what Kafka clients see.

Contract, one test each:

- `test_users_roles_and_topic_changes`: with `console.users` set, every API call but
  `/health` (and `/metrics`) needs basic auth: none or a wrong password is 401 with a
  JSON error and `WWW-Authenticate`; a viewer reads the cluster and topics but a create or
  delete is 403 and changes nothing; an admin creates a topic (201; confluent-kafka's
  metadata shows its partitions), a second create is 409 TOPIC_ALREADY_EXISTS, bad input
  is 400 with Kafka's error name (INVALID_PARTITIONS, INVALID_CONFIG, a body that is not
  JSON), an unknown topic is 404; the topic's page shows each partition's leader, ISR
  and log end offset after a produce; a group's lag after a commit matches the admin
  client's committed offsets; an admin deletes the topic and clients no longer see it;
  DescribeConfigs never reports `console.users`.
- `test_generated_admin_password`: without `console.users` the first start prints an
  `admin` password once on stderr and keeps only its hash in the data dir; it works for
  basic auth, also after a restart, which prints no password.
"""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from gregor_support import admin, confluent_producer, produce_confluent
from test_cluster import free_ports

USERS = "alice:wonderland:admin,bob:builder:viewer"


class Api:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, user: tuple[str, str] | None = None, body=None, raw: bytes | None = None):
        """(status, JSON body, headers)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if user:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.loads(r.read() or b"null"), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null"), e.headers


ALICE = ("alice", "wonderland")
BOB = ("bob", "builder")


def topic_names(bootstrap: str) -> set[str]:
    return set(admin(bootstrap).list_topics(timeout=10).topics)


def test_users_roles_and_topic_changes(broker_factory):
    http = free_ports(1)[0]
    b = broker_factory().start(sets={"console.users": USERS}, extra_args=["--http-listen", f"127.0.0.1:{http}"])
    api = Api(http)

    status, body, headers = api.call("GET", "/api/v1/topics")
    assert status == 401 and body["error"] == "UNAUTHORIZED" and "Basic" in headers["WWW-Authenticate"]
    assert api.call("GET", "/api/v1/topics", ("alice", "nope"))[0] == 401
    assert api.call("GET", "/api/v1/health")[0] == 200, "health needs no login"

    # The passwords are never reported by DescribeConfigs.
    describer = admin(b.bootstrap)  # kept alive while its future runs
    reported = describer.describe_configs([ConfigResource(ResourceType.BROKER, "0")])
    reported = next(iter(reported.values())).result(15)
    assert "console.users" not in reported and not any("wonderland" in str(c.value) for c in reported.values())

    status, cluster, _ = api.call("GET", "/api/v1/cluster", BOB)
    assert status == 200 and [br["id"] for br in cluster["brokers"]] == [0] and cluster["active_controller_here"]

    status, body, _ = api.call("POST", "/api/v1/topics", BOB, {"name": "by-viewer", "partitions": 1})
    assert status == 403 and body["error"] == "FORBIDDEN"
    assert "by-viewer" not in topic_names(b.bootstrap)

    status, body, _ = api.call("POST", "/api/v1/topics", ALICE,
                               {"name": "orders", "partitions": 3, "configs": {"retention.ms": "3600000"}})
    assert (status, body) == (201, {"created": "orders"})
    meta = admin(b.bootstrap).list_topics(topic="orders", timeout=10).topics["orders"]
    assert len(meta.partitions) == 3
    status, body, _ = api.call("POST", "/api/v1/topics", ALICE, {"name": "orders", "partitions": 3})
    assert (status, body["error"]) == (409, "TOPIC_ALREADY_EXISTS")
    status, body, _ = api.call("POST", "/api/v1/topics", ALICE, {"name": "zero", "partitions": 0})
    assert (status, body["error"]) == (400, "INVALID_PARTITIONS"), body
    status, body, _ = api.call("POST", "/api/v1/topics", ALICE, {"name": "bad", "configs": {"retention.ms": "soon"}})
    assert (status, body["error"]) == (400, "INVALID_CONFIG"), body
    assert api.call("POST", "/api/v1/topics", ALICE, raw=b"{not json")[0] == 400
    assert api.call("POST", "/api/v1/topics", ALICE, {"partitions": 1})[0] == 400, "a name is required"
    status, body, _ = api.call("GET", "/api/v1/topics/nowhere", BOB)
    assert (status, body["error"]) == (404, "UNKNOWN_TOPIC_OR_PARTITION")

    p = confluent_producer(b.bootstrap, acks="all")
    produce_confluent(p, "orders", [{"value": b"x", "partition": 1} for _ in range(7)])
    status, topic, _ = api.call("GET", "/api/v1/topics/orders", BOB)
    assert status == 200 and topic["configs"] == {"retention.ms": "3600000"}
    by_partition = {pt["partition"]: pt for pt in topic["partitions"]}
    assert by_partition[1]["log_end_offset"] == 7 and by_partition[1]["leader"] == 0 and by_partition[1]["isr"] == [0]
    assert any(t["name"] == "orders" and t["partitions"] == 3 for t in api.call("GET", "/api/v1/topics", BOB)[1])

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "api-group", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("orders", 1, 5)], asynchronous=False)
    c.close()
    a = admin(b.bootstrap)
    committed = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions("api-group")])["api-group"].result(15)
    status, groups, _ = api.call("GET", "/api/v1/groups", BOB)
    group = next(g for g in groups if g["group"] == "api-group")
    part = next(x for x in group["partitions"] if x["partition"] == 1)
    assert part["committed_offset"] == committed.topic_partitions[0].offset == 5
    assert part["lag"] == 2 and group["lag"] == 2

    assert api.call("DELETE", "/api/v1/topics/orders", BOB)[0] == 403
    assert "orders" in topic_names(b.bootstrap)
    assert api.call("DELETE", "/api/v1/topics/orders", ALICE)[:2] == (200, {"deleted": "orders"})
    assert "orders" not in topic_names(b.bootstrap)
    assert "admin API: topic deleted" in b.stderr_text() and "alice" in b.stderr_text()


def test_generated_admin_password(broker_factory):
    http = free_ports(1)[0]
    b = broker_factory("generated").start(extra_args=["--http-listen", f"127.0.0.1:{http}"])
    lines = [line for line in b.stderr_text().splitlines() if "user 'admin', password" in line]
    assert len(lines) == 1, b.stderr_text()[-2000:]
    password = lines[0].split("password ")[1].split()[0]
    stored = (Path(b.data_dir) / "console-admin.sha256").read_text()
    assert password not in stored and len(stored.strip()) == 64
    api = Api(http)
    assert api.call("GET", "/api/v1/cluster", ("admin", password))[0] == 200
    assert api.call("GET", "/api/v1/cluster", ("admin", password + "x"))[0] == 401

    b.restart()
    assert "user 'admin', password" not in b.stderr_text(), "printed once, at the first start"
    assert api.call("GET", "/api/v1/cluster", ("admin", password))[0] == 200
