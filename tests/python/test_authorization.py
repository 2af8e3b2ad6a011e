"""Authorization matrix: Kafka's StandardAuthorizer semantics against real clients.

A broker with a PLAINTEXT listener (User:ANONYMOUS: the harness, `gregor acls`, the
inter-broker traffic) and a SASL_PLAINTEXT listener where confluent-kafka logs in with
SASL PLAIN as admin, alice or bob, started with
`authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer` and
`super.users=User:admin;User:ANONYMOUS` (so `allow.everyone.if.no.acl.found=false`).

Contract, each checked against what Kafka answers for the same request:
- without ACLs alice sees no topic in Metadata, gets TOPIC_AUTHORIZATION_FAILED for a
  named topic (existing or not), for produce (idempotent too: InitProducerId answers
  CLUSTER_AUTHORIZATION_FAILED then, as Kafka), CreateTopics, DescribeConfigs and
  DeleteTopics; a consumer in a group fails with GROUP_AUTHORIZATION_FAILED; ListGroups
  hides the groups of others and DescribeGroups refuses them;
- `gregor acls add --producer` / `--consumer` grant exactly that (an idempotent producer
  needs only WRITE on the topic, KIP-679), bob still gets nothing;
- a literal DENY beats a prefixed ALLOW;
- a transactional producer needs WRITE on its transactional id;
- the super user needs no ACL; the ACL APIs need ALTER / DESCRIBE on the cluster;
  `gregor acls list` shows and `gregor acls remove` revokes (access stops within ~2 s);
- ACLs survive a restart;
- a custom authorizer class refuses the start with one sentence naming the key.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ConfigResource, NewTopic, ResourcePatternType, ResourceType)

from conftest import broker_binary
from test_cluster import free_ports

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in PASSWORDS.items()) + ";")
AUTHZ_SETS = {
    "sasl.enabled.mechanisms": "PLAIN",
    "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
    "authorizer.class.name": STANDARD_AUTHORIZER,
    "super.users": "User:admin;User:ANONYMOUS",
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "3",
}
TOPIC_AUTHZ = KafkaError.TOPIC_AUTHORIZATION_FAILED
GROUP_AUTHZ = KafkaError.GROUP_AUTHORIZATION_FAILED
CLUSTER_AUTHZ = KafkaError.CLUSTER_AUTHORIZATION_FAILED
TXN_AUTHZ = KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


class Authz:
    """A started broker with its PLAINTEXT (ANONYMOUS) and SASL_PLAINTEXT addresses."""

    def __init__(self, broker, plain: str, sasl: str):
        self.broker, self.plain, self.sasl = broker, plain, sasl

    def conf(self, user: str, **extra) -> dict:
        return {"bootstrap.servers": self.sasl, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                "sasl.username": user, "sasl.password": PASSWORDS[user], "log_level": 0, **extra}

    def admin(self, user: str) -> AdminClient:
        return AdminClient(self.conf(user))

    def gregor(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.broker.binary), *args], capture_output=True, text=True, timeout=60)

    def acls(self, *args: str) -> str:
        """`gregor acls ARGS --bootstrap-server PLAINTEXT` (as ANONYMOUS, a super user); must succeed."""
        r = self.gregor("acls", *args, "--bootstrap-server", self.plain)
        assert r.returncode == 0, f"gregor acls {' '.join(args)}: exit {r.returncode}: {r.stderr}"
        return r.stdout

    def acl_list(self) -> list[dict]:
        return json.loads(self.acls("list", "-o", "json"))

    def user_properties(self, tmp_path: Path, user: str) -> str:
        path = tmp_path / f"{user}.properties"
        path.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                        f'username="{user}" password="{PASSWORDS[user]}";\n')
        return str(path)

    def create_topics(self, *names: str) -> None:
        admin = self.admin("admin")
        for f in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
            f.result(15)
        self.wait_topics(*names)

    def wait_topics(self, *names: str) -> None:
        admin = self.admin("admin")
        deadline = time.monotonic() + 10
        while not set(names) <= set(admin.list_topics(timeout=10).topics):
            assert time.monotonic() < deadline, f"topics {names} not in metadata"
            time.sleep(0.1)

    def produce(self, user: str, topic: str, values: list[bytes], **extra) -> list:
        """Produces as `user`; returns the delivery error of each message (None = delivered)."""
        fatal: list[KafkaError] = []
        p = Producer(self.conf(user, **{"message.timeout.ms": 5000, "error_cb": lambda e: fatal.append(e), **extra}))
        results: list = []
        for v in values:
            p.produce(topic, v, on_delivery=lambda err, _msg: results.append(err and Failure(err)))
        p.flush(10)
        assert len(results) == len(values), f"{len(values) - len(results)} deliveries not reported (fatal: {fatal})"
        return results

    def consume(self, user: str, topic: str, group: str, n: int, timeout: float = 10.0,
                commit: bool = False) -> tuple[list[bytes], KafkaError | None]:
        """Consumes in `group` until n messages or an error; commits them when asked."""
        c = Consumer(self.conf(user, **{"group.id": group, "auto.offset.reset": "earliest",
                                        "enable.auto.commit": False}))
        try:
            c.subscribe([topic])
            got: list[bytes] = []
            deadline = time.monotonic() + timeout
            while len(got) < n and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    return got, m.error()
                got.append(m.value())
            if commit and got:
                committed = c.commit(asynchronous=False)
                assert all(tp.error is None for tp in committed), committed
            return got, None
        finally:
            c.close()


class Failure:
    """A delivery error copied out of librdkafka's (whose objects do not outlive their producer)."""

    def __init__(self, err: KafkaError):
        try:
            self._code, self._str = err.code(), err.str()
        except TypeError as e:  # an error code confluent-kafka has no name for
            self._code, self._str = None, f"undecodable KafkaError: {e}"

    def code(self):
        return self._code

    def str(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return f"KafkaError({self._code}, {self._str!r})"


def start_authz(broker_factory, sets: dict[str, str] | None = None) -> Authz:
    plain, sasl = free_ports(2)
    b = broker_factory()
    b.start(port=plain, sets={**AUTHZ_SETS, **(sets or {})}, extra_args=[
        "--listen", f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}", "--http-listen", "none"])
    return Authz(b, f"127.0.0.1:{plain}", f"127.0.0.1:{sasl}")


def error_of(future, timeout: float = 15) -> KafkaError | None:
    try:
        future.result(timeout)
    except KafkaException as e:
        return e.args[0]
    return None


def codes(errors: list) -> set:
    return {e.code() if e is not None else None for e in errors}


# ---------------------------------------------------------------- the matrix


def test_without_acls_a_principal_sees_nothing_and_may_do_nothing(broker_factory):
    az = start_authz(broker_factory)
    az.create_topics("t1")
    # A group of admin's with committed offsets, which alice must not see.
    assert az.produce("admin", "t1", [b"a", b"b"]) == [None, None]
    got, err = az.consume("admin", "t1", "admins", 2, commit=True)
    assert err is None and got == [b"a", b"b"], err

    alice = az.admin("alice")
    # Metadata: all topics -> filtered to none; a named one (existing or not) -> TOPIC_AUTHORIZATION_FAILED,
    # and no auto-creation without CREATE.
    assert list(alice.list_topics(timeout=10).topics) == []
    for name in ("t1", "no-such-topic"):
        md = alice.list_topics(name, timeout=10).topics[name]
        assert md.error is not None and md.error.code() == TOPIC_AUTHZ, f"Metadata({name}) as alice: {md.error}"
    assert "no-such-topic" not in az.admin("admin").list_topics(timeout=10).topics

    # Produce, plain and idempotent. Kafka: Produce -> TOPIC_AUTHORIZATION_FAILED; InitProducerId without a
    # transactional id and without IDEMPOTENT_WRITE or WRITE on any topic -> CLUSTER_AUTHORIZATION_FAILED.
    assert codes(az.produce("alice", "t1", [b"x"])) == {TOPIC_AUTHZ}
    assert codes(az.produce("alice", "t1", [b"x"], **{"enable.idempotence": True})) <= {TOPIC_AUTHZ, CLUSTER_AUTHZ}

    # Consume in a group: FindCoordinator(group) without DESCRIBE on it -> GROUP_AUTHORIZATION_FAILED.
    got, err = az.consume("alice", "t1", "alices", 1, timeout=8)
    assert got == [] and err is not None and err.code() in (GROUP_AUTHZ, TOPIC_AUTHZ), f"consume as alice: {err}"

    err = error_of(alice.create_topics([NewTopic("alice-topic", 1, 1)])["alice-topic"])
    assert err is not None and err.code() == TOPIC_AUTHZ, f"CreateTopics(alice-topic) as alice: {err}"
    resource = ConfigResource(ResourceType.TOPIC, "t1")
    err = error_of(alice.describe_configs([resource])[resource])
    assert err is not None and err.code() == TOPIC_AUTHZ, f"DescribeConfigs(topic t1) as alice: {err}"
    err = error_of(alice.delete_topics(["t1"])["t1"])
    assert err is not None and err.code() == TOPIC_AUTHZ, f"DeleteTopics(t1) as alice: {err}"

    groups = alice.list_consumer_groups().result(10)
    assert [g.group_id for g in groups.valid] == [] and not groups.errors
    described = error_of(alice.describe_consumer_groups(["admins"])["admins"])
    assert described is not None and described.code() == GROUP_AUTHZ, f"DescribeGroups(admins) as alice: {described}"

    # Nothing alice tried happened; admin still sees everything.
    admin = az.admin("admin")
    assert set(admin.list_topics(timeout=10).topics) >= {"t1"}
    assert "alice-topic" not in admin.list_topics(timeout=10).topics
    assert "admins" in [g.group_id for g in admin.list_consumer_groups().result(10).valid]


def test_producer_and_consumer_acls_grant_exactly_that(broker_factory):
    az = start_authz(broker_factory)
    az.create_topics("orders", "other")
    az.acls("add", "--allow-principal", "User:alice", "--producer", "--topic", "orders")
    # WRITE on the topic is enough for an idempotent producer (KIP-679), no IDEMPOTENT_WRITE on the cluster.
    assert az.produce("alice", "orders", [b"1", b"2"]) == [None, None]
    assert az.produce("alice", "orders", [b"3"], **{"enable.idempotence": True}) == [None]
    assert codes(az.produce("alice", "other", [b"x"])) == {TOPIC_AUTHZ}

    # --producer gives no READ: the consumer still fails (no group ACL, no READ on the topic).
    got, err = az.consume("alice", "orders", "billing", 1, timeout=6)
    assert got == [] and err is not None and err.code() in (GROUP_AUTHZ, TOPIC_AUTHZ), err

    az.acls("add", "--allow-principal", "User:alice", "--consumer", "--topic", "orders", "--group", "billing")
    got, err = az.consume("alice", "orders", "billing", 3, commit=True)
    assert err is None and got == [b"1", b"2", b"3"], (got, err)
    admin, alice = az.admin("admin"), az.admin("alice")  # alive while their futures run
    offsets = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("billing", [TopicPartition("orders", 0)])])
    assert offsets["billing"].result(10).topic_partitions[0].offset == 3
    assert [g.group_id for g in alice.list_consumer_groups().result(10).valid] == ["billing"]
    assert sorted(alice.list_topics(timeout=10).topics) == ["orders"]

    # bob has nothing.
    assert codes(az.produce("bob", "orders", [b"x"])) == {TOPIC_AUTHZ}
    got, err = az.consume("bob", "orders", "billing", 1, timeout=6)
    assert got == [] and err is not None and err.code() in (GROUP_AUTHZ, TOPIC_AUTHZ), f"consume as bob: {err}"
    assert list(az.admin("bob").list_topics(timeout=10).topics) == []


def test_deny_beats_allow_and_prefixed_acls(broker_factory):
    az = start_authz(broker_factory)
    az.create_topics("orders-1", "orders-secret", "payments")
    for t in ("orders-1", "orders-secret", "payments"):
        assert az.produce("admin", t, [t.encode()]) == [None]
    az.acls("add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "orders-",
            "--resource-pattern-type", "prefixed")
    az.acls("add", "--deny-principal", "User:alice", "--operation", "Read", "--topic", "orders-secret")
    az.acls("add", "--allow-principal", "User:alice", "--operation", "Read", "--group", "readers")

    got, err = az.consume("alice", "orders-1", "readers", 1)
    assert err is None and got == [b"orders-1"], (got, err)
    got, err = az.consume("alice", "orders-secret", "readers", 1, timeout=8)
    assert got == [] and err is not None and err.code() == TOPIC_AUTHZ, \
        ("Fetch(orders-secret) with a literal DENY Read and a prefixed ALLOW Read: "
         f"expected TOPIC_AUTHORIZATION_FAILED, got {got} {err}")
    got, err = az.consume("alice", "payments", "readers", 1, timeout=8)
    assert got == [] and err is not None and err.code() == TOPIC_AUTHZ, (got, err)
    # DESCRIBE is implied by the allowed READ; the DENY is of READ only, so orders-secret stays visible
    # (Kafka: a deny of READ does not deny DESCRIBE), payments is hidden.
    assert sorted(az.admin("alice").list_topics(timeout=10).topics) == ["orders-1", "orders-secret"]


def test_a_transactional_producer_needs_write_on_its_transactional_id(broker_factory):
    az = start_authz(broker_factory)
    az.create_topics("txn-out")
    az.acls("add", "--allow-principal", "User:alice", "--operation", "Write", "--operation", "Describe",
            "--topic", "txn-out")
    p = Producer(az.conf("alice", **{"transactional.id": "tx-alice"}))
    err = None
    try:
        p.init_transactions(10)
    except KafkaException as e:
        err = e.args[0]
    assert err is not None and err.code() == TXN_AUTHZ, \
        ("InitTransactions(tx-alice) without WRITE on the TransactionalId: "
         f"expected TRANSACTIONAL_ID_AUTHORIZATION_FAILED, got {err}")
    del p

    az.acls("add", "--allow-principal", "User:alice", "--operation", "Write", "--transactional-id", "tx-alice")
    p = Producer(az.conf("alice", **{"transactional.id": "tx-alice"}))
    p.init_transactions(10)
    p.begin_transaction()
    p.produce("txn-out", b"committed")
    p.commit_transaction(10)
    # bob with the same id and no ACL is refused.
    q = Producer(az.conf("bob", **{"transactional.id": "tx-alice"}))
    try:
        q.init_transactions(10)
        bob_err = None
    except KafkaException as e:
        bob_err = e.args[0]
    assert bob_err is not None and bob_err.code() == TXN_AUTHZ, bob_err
    got, err = az.consume("admin", "txn-out", "txn-check", 1)
    assert err is None and got == [b"committed"], (got, err)


def test_super_user_acl_apis_and_acls_list_and_remove(broker_factory, tmp_path):
    az = start_authz(broker_factory)
    admin = az.admin("admin")
    # The super user: every operation without a single ACL.
    assert error_of(admin.create_topics([NewTopic("ops", 1, 1)])["ops"]) is None
    az.wait_topics("ops")
    assert az.produce("admin", "ops", [b"x"], **{"enable.idempotence": True}) == [None]
    got, err = az.consume("admin", "ops", "ops-admins", 1, commit=True)
    assert err is None and got == [b"x"], err
    resource = ConfigResource(ResourceType.TOPIC, "ops")
    assert "retention.ms" in admin.describe_configs([resource])[resource].result(10)
    assert error_of(admin.create_topics([NewTopic("scratch", 1, 1)])["scratch"]) is None
    assert error_of(admin.delete_topics(["scratch"])["scratch"]) is None
    assert az.acl_list() == []

    # The ACL APIs: CreateAcls / DeleteAcls need ALTER on the cluster, DescribeAcls DESCRIBE.
    alice = az.admin("alice")
    grant = AclBinding(ResourceType.TOPIC, "ops", ResourcePatternType.LITERAL, "User:alice", "*",
                       AclOperation.ALL, AclPermissionType.ALLOW)
    err = error_of(alice.create_acls([grant])[grant])
    assert err is not None and err.code() == CLUSTER_AUTHZ, f"CreateAcls as alice: {err}"
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    err = error_of(alice.delete_acls([everything])[everything])
    assert err is not None and err.code() == CLUSTER_AUTHZ, f"DeleteAcls as alice: {err}"
    # librdkafka drops DescribeAcls' top-level error code (an empty list comes back), so
    # DescribeAcls is checked with gregor's own client, logged in as alice.
    alice_props = az.user_properties(tmp_path, "alice")
    r = az.gregor("acls", "list", "--bootstrap-server", az.sasl, "--command-config", alice_props)
    assert r.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in r.stderr, \
        f"DescribeAcls as alice: expected CLUSTER_AUTHORIZATION_FAILED, got exit {r.returncode}: {r.stdout}{r.stderr}"

    # admin (super user) creates ACLs with the AdminClient, gregor acls adds more; list shows both.
    assert error_of(admin.create_acls([grant])[grant]) is None
    az.acls("add", "--allow-principal", "User:alice", "--operation", "Describe", "--cluster")
    listed = az.acl_list()
    assert {(a["resource_type"], a["resource_name"], a["pattern_type"], a["principal"], a["host"], a["operation"],
             a["permission"]) for a in listed} == {
        ("Topic", "ops", "LITERAL", "User:alice", "*", "All", "Allow"),
        ("Cluster", "kafka-cluster", "LITERAL", "User:alice", "*", "Describe", "Allow"),
    }, listed
    table = az.acls("list", "--topic", "ops")
    assert "User:alice" in table and "All" in table and "kafka-cluster" not in table, table
    described = admin.describe_acls(everything).result(10)
    assert len(described) == 2, described
    # With DESCRIBE on the cluster alice may now list the ACLs (still not create them).
    r = az.gregor("acls", "list", "--bootstrap-server", az.sasl, "--command-config", alice_props, "-o", "json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 2, r.stderr
    assert az.produce("alice", "ops", [b"alice"]) == [None]

    # Removal takes effect within a second or two (the authorizer follows the metadata image).
    az.acls("remove", "--allow-principal", "User:alice", "--operation", "All", "--topic", "ops")
    removed_at = time.monotonic()
    while True:
        errs = az.produce("alice", "ops", [b"late"], **{"message.timeout.ms": 3000})
        if errs == [None]:
            assert time.monotonic() - removed_at < 2.5, "alice still writes to ops 2.5 s after `gregor acls remove`"
            time.sleep(0.2)
            continue
        assert codes(errs) == {TOPIC_AUTHZ}, errs
        break
    assert [a["resource_type"] for a in az.acl_list()] == ["Cluster"]


def test_acls_survive_a_restart(broker_factory):
    az = start_authz(broker_factory)
    az.create_topics("kept", "denied")
    az.acls("add", "--allow-principal", "User:alice", "--producer", "--topic", "k", "--resource-pattern-type",
            "prefixed")
    az.acls("add", "--deny-principal", "User:alice", "--operation", "Write", "--topic", "denied")
    az.acls("add", "--allow-principal", "User:alice", "--operation", "Write", "--topic", "denied")
    before = sorted(json.dumps(a, sort_keys=True) for a in az.acl_list())
    assert len(before) == 5
    assert az.produce("alice", "kept", [b"1"]) == [None]

    az.broker.restart()
    assert sorted(json.dumps(a, sort_keys=True) for a in az.acl_list()) == before
    assert az.produce("alice", "kept", [b"2"]) == [None]
    assert codes(az.produce("alice", "denied", [b"x"])) == {TOPIC_AUTHZ}
    assert codes(az.produce("bob", "kept", [b"x"])) == {TOPIC_AUTHZ}


def test_a_custom_authorizer_class_is_refused(tmp_path):
    data = tmp_path / "data"
    port = free_ports(1)[0]
    r = subprocess.run([str(broker_binary()), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
                        "--set", "authorizer.class.name=com.example.MyAuthorizer"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    lines = r.stderr.splitlines()
    assert r.returncode == 1, f"expected exit 1, got {r.returncode}: {r.stderr}"
    assert len(lines) == 1 and lines[0].startswith("gregor: refusing to start: "), r.stderr
    assert "'authorizer.class.name'" in lines[0] and "com.example.MyAuthorizer" in lines[0], r.stderr
    assert r.stdout == "" and not data.exists()


def test_acl_apis_without_an_authorizer_answer_security_disabled(broker):
    """Kafka answers SECURITY_DISABLED to CreateAcls, DescribeAcls and DeleteAcls when no
    authorizer is configured; nothing is stored."""
    for args in (["add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t"],
                 ["list"],
                 ["remove", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t"]):
        out = subprocess.run([str(broker.binary), "acls", *args, "--bootstrap-server", broker.bootstrap],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "SECURITY_DISABLED" in out.stderr, (args, out.stderr)
