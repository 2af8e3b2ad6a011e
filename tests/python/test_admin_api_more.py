"""The admin API's console endpoints (issue 19) over real HTTP, checked against what
confluent-kafka sees. test_admin_api.py covers cluster, topics and the basic-auth
basics; this file covers the rest.

Contract, one test each:

- `test_openapi_served_without_login`: `/api/v1/openapi.json` (and `/api/v1/health`,
  `/metrics`) answer without credentials; the document is OpenAPI 3.0.x with the
  basicAuth and cookieAuth schemes and the Error schema, lists every path and method
  these tests use, and every `$ref` in it resolves.
- `test_session_cookie_logout_and_csrf_guard`: `POST /api/v1/login` sets an HttpOnly,
  SameSite=Strict `gregor_session` cookie (401 on a wrong password, 400 on a body that is
  not JSON or lacks fields); `GET /api/v1/session` names the user and role; a change
  authenticated by the cookie needs `X-Gregor-Console: 1` (else 403 and nothing changes);
  a 401 (the login's too) carries `WWW-Authenticate` unless the request has
  `X-Gregor-Console`; a viewer's
  cookie changes nothing; `POST /api/v1/logout` clears the cookie and the old one is 401.
- `test_changes_refused_without_rights`: every new change endpoint is 401 without or
  with wrong credentials and 403 for a viewer (basic auth or cookie) or for a cookie
  without the CSRF header, and afterwards confluent-kafka sees nothing changed.
- `test_topic_configs`: `GET /topics/{name}/configs` lists the same configs, values and
  sources as AdminClient.describe_configs; PATCH set/delete is reported by
  describe_configs; a bad value or key is 400 INVALID_CONFIG and changes nothing; an
  unknown topic is 404 UNKNOWN_TOPIC_OR_PARTITION.
- `test_produce_through_api`: messages produced by `POST /topics/{name}/messages` (text,
  base64, null value, headers, explicit partition) are read by a confluent Consumer with
  the same key, value and headers; a keyed message lands where Kafka's murmur2
  partitioner (confluent `partitioner=murmur2_random`) puts it; a value over
  `max.message.bytes` is 400 MESSAGE_TOO_LARGE; unknown topics and partitions and bad
  bodies (also one without `value`) are refused and append nothing.
- `test_browse_messages`: records produced by confluent-kafka are browsed with their
  offset, timestamp, key, value and headers (binary as base64, null as null): oldest and
  newest first, from an offset or a timestamp, one partition or all merged by timestamp,
  searched by key, value or header within `max_scan`; bad query parameters are 400 and
  an unknown topic or partition 4xx.
- `test_browse_compressed_and_transactional`: gzip, snappy, lz4 and zstd batches are
  browsed and searched as confluent-kafka reads them; transaction markers are left out and
  aborted records shown, as a read_uncommitted consumer sees them.
- `test_group_detail_reset_and_delete`: a running confluent consumer's group shows its
  state, protocol, member and assignment as AdminClient.describe_consumer_groups does;
  a reset or delete while it has members is 409 NON_EMPTY_GROUP; once empty, a dry run
  changes nothing, and each strategy's executed reset is what
  list_consumer_group_offsets then reports; bad strategies and values are 400; a delete
  removes the group from list_consumer_groups.
- `test_broker_configs`: `GET /brokers/{id}/configs` matches describe_configs of the
  broker (static keys read-only, secrets without values); PATCH of a dynamic key is
  reported by describe_configs and inherited by topics; a read-only key or a bad value is
  400 with Kafka's error name; another node's id is 404.
- `test_session_expires_when_idle_and_at_restart`: a session used within
  `console.session.timeout.ms` lives on, an idle one ends (401), and none outlives a
  restart.
- `test_cluster_and_topic_views`: the cluster, topic list and topic pages count what
  confluent-kafka's metadata and watermarks show (brokers, topics, partitions, messages,
  log start and end, leader, ISR, the topic id).
- `test_openapi_describes_responses`: each endpoint's answers (successes and errors) have
  a status the document lists for it and match the document's schema for that status.

Where the backend does not (yet) do what the contract says, the assertion's message says
what was asked, expected and got; those checks come last in their tests.
"""
from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicCollection, TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

from gregor_support import FAST_RECONNECT, admin, confluent_producer, create_topic, produce_confluent, read_confluent
from test_cluster import free_ports

USERS = "alice:wonderland:admin,bob:builder:viewer"
ALICE = ("alice", "wonderland")
BOB = ("bob", "builder")
CONSOLE = {"X-Gregor-Console": "1"}


class Api:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, user: tuple[str, str] | None = None, body=None, raw: bytes | None = None,
             headers: dict[str, str] | None = None, cookie: str | None = None):
        """(status, JSON body (or the text when it is not JSON), headers)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if user:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
        if cookie:
            req.add_header("Cookie", f"gregor_session={cookie}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, _decode(r.read()), r.headers
        except urllib.error.HTTPError as e:
            return e.code, _decode(e.read()), e.headers

    def ok(self, method: str, path: str, user=ALICE, body=None, status: int = 200, **kw):
        """The JSON body of a call that must answer `status`."""
        got, answer, _ = self.call(method, path, user, body, **kw)
        assert got == status, f"{method} {path} {body!r}: expected {status}, got {got}: {answer}"
        return answer

    def login(self, user: tuple[str, str]) -> str:
        status, body, headers = self.call("POST", "/api/v1/login", body={"user": user[0], "password": user[1]})
        assert status == 200, f"login of {user[0]}: {status} {body}"
        return session_cookie(headers)[0]


def _decode(data: bytes):
    try:
        return json.loads(data or b"null")
    except ValueError:
        return data.decode(errors="replace")


def session_cookie(headers) -> tuple[str, str]:
    """(value, the whole Set-Cookie line) of `gregor_session`."""
    lines = [c for c in headers.get_all("Set-Cookie") or [] if c.strip().startswith("gregor_session=")]
    assert lines, f"no gregor_session cookie set: {headers.get_all('Set-Cookie')}"
    return lines[0].strip().split(";")[0].split("=", 1)[1], lines[0]


# Kafka's numeric codes of the error names these tests expect.
KAFKA_CODES = {"UNKNOWN_TOPIC_OR_PARTITION": 3, "MESSAGE_TOO_LARGE": 10, "TOPIC_ALREADY_EXISTS": 36,
               "INVALID_PARTITIONS": 37, "INVALID_CONFIG": 40, "INVALID_REQUEST": 42, "NON_EMPTY_GROUP": 68,
               "GROUP_ID_NOT_FOUND": 69}


def is_error(body, name: str | None = None) -> bool:
    """A JSON error body (`{"error": NAME, "message": ..., "code": N?}`), of `name` when given; a
    `code` given with a Kafka error name must be Kafka's code of that name."""
    if not (isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str)
            and body["message"] and (name is None or body["error"] == name)):
        return False
    if "code" in body and body["error"] in KAFKA_CODES:
        assert body["code"] == KAFKA_CODES[body["error"]], f"{body['error']} with code {body['code']}: {body}"
    return True


def start(broker_factory, **sets):
    http = free_ports(1)[0]
    b = broker_factory().start(sets={"console.users": USERS, "group.initial.rebalance.delay.ms": "0", **sets},
                               extra_args=["--http-listen", f"127.0.0.1:{http}"])
    return b, Api(http)


def q(path: str, **params) -> str:
    return path + ("?" + urllib.parse.urlencode(params) if params else "")


def describe_topic_configs(a, topic: str) -> dict:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([resource])[resource].result(15)


def describe_broker_configs(a, node: int) -> dict:
    resource = ConfigResource(ResourceType.BROKER, str(node))
    return a.describe_configs([resource])[resource].result(15)


def committed(a, group: str) -> dict[tuple[str, int], int]:
    result = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(15)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def group_ids(a) -> set[str]:
    return {g.group_id for g in a.list_consumer_groups().result(15).valid}


def high_watermark(bootstrap: str, topic: str, partition: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw-probe", **FAST_RECONNECT})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        c.close()


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2` (what its default partitioner hashes keys with)."""
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    whole = len(data) & ~3
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = len(data) & 3
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def kafka_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def text(s: str | None):
    """The API's form of a key, value or header value that is UTF-8 text."""
    return None if s is None else {"utf8": s}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# ---------------------------------------------------------------- the OpenAPI document

# Every path and method this file and test_admin_api.py call.
USED = {
    "/api/v1/login": {"post"},
    "/api/v1/logout": {"post"},
    "/api/v1/session": {"get"},
    "/api/v1/health": {"get"},
    "/api/v1/openapi.json": {"get"},
    "/api/v1/cluster": {"get"},
    "/api/v1/topics": {"get", "post"},
    "/api/v1/topics/{name}": {"get", "delete"},
    "/api/v1/topics/{name}/configs": {"get", "patch"},
    "/api/v1/topics/{name}/messages": {"get", "post"},
    "/api/v1/groups": {"get"},
    "/api/v1/groups/{id}": {"get", "delete"},
    "/api/v1/groups/{id}/reset-offsets": {"post"},
    "/api/v1/brokers/{id}/configs": {"get", "patch"},
}


def test_openapi_served_without_login(broker_factory):
    b, api = start(broker_factory)
    status, doc, headers = api.call("GET", "/api/v1/openapi.json")
    assert status == 200, f"the OpenAPI document needs no login: {status} {doc}"
    assert "json" in headers.get("Content-Type", ""), headers.get("Content-Type")
    assert isinstance(doc, dict), f"not JSON: {str(doc)[:200]}"
    assert doc["openapi"].startswith("3.0"), doc["openapi"]
    assert doc["info"]["title"] and doc["info"]["version"]

    paths = doc["paths"]
    missing = {p: sorted(ms - set(paths.get(p, {}))) for p, ms in USED.items() if ms - set(paths.get(p, {}))}
    assert not missing, f"paths or methods missing from the document: {missing}"
    for path, ops in paths.items():
        for method, op in ops.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert op.get("responses"), f"{method} {path} has no responses"

    components = doc["components"]
    schemes = components["securitySchemes"]
    assert schemes["basicAuth"]["type"] == "http" and schemes["basicAuth"]["scheme"] == "basic", schemes
    assert (schemes["cookieAuth"]["type"], schemes["cookieAuth"]["in"], schemes["cookieAuth"]["name"]) == (
        "apiKey", "cookie", "gregor_session"), schemes
    assert {"error", "message"} <= set(components["schemas"]["Error"]["properties"])

    # Every $ref points at something in the document.
    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in set(refs(doc)):
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            assert part in node, f"dangling $ref {ref}"
            node = node[part]

    assert api.call("GET", "/api/v1/health")[0] == 200
    metrics = urllib.request.urlopen(api.base + "/metrics", timeout=20)
    assert metrics.status == 200


# ---------------------------------------------------------------- sessions


def test_session_cookie_logout_and_csrf_guard(broker_factory):
    b, api = start(broker_factory)
    a = admin(b.bootstrap)

    # Wrong credentials and bad bodies.
    status, body, _ = api.call("POST", "/api/v1/login", body={"user": "alice", "password": "nope"})
    assert status == 401 and is_error(body), (status, body)
    status, body, _ = api.call("POST", "/api/v1/login", body={"user": "mallory", "password": "x"})
    assert status == 401 and is_error(body), (status, body)
    status, body, _ = api.call("POST", "/api/v1/login", raw=b"user=alice&password=wonderland")
    assert status == 400 and is_error(body), f"login with a body that is not JSON: {status} {body}"
    status, body, _ = api.call("POST", "/api/v1/login", body={"user": "alice"})
    assert status == 400 and is_error(body), f"login without a password: {status} {body}"

    # A good login: the cookie's attributes.
    status, body, headers = api.call("POST", "/api/v1/login", body={"user": "alice", "password": "wonderland"})
    assert (status, body) == (200, {"user": "alice", "role": "admin"}), (status, body)
    alice, line = session_cookie(headers)
    attrs = [x.strip().lower() for x in line.split(";")[1:]]
    assert alice and "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs, line
    bob = api.login(BOB)
    assert bob != alice

    # Who is logged in.
    assert api.ok("GET", "/api/v1/session", None, cookie=alice) == {"user": "alice", "role": "admin"}
    assert api.ok("GET", "/api/v1/session", None, cookie=bob) == {"user": "bob", "role": "viewer"}
    assert api.ok("GET", "/api/v1/session", BOB) == {"user": "bob", "role": "viewer"}, "basic auth names its user too"
    status, body, headers = api.call("GET", "/api/v1/session")
    assert status == 401 and is_error(body, "UNAUTHORIZED"), (status, body)
    assert "Basic" in (headers.get("WWW-Authenticate") or ""), "a 401 without X-Gregor-Console asks for basic auth"
    status, body, headers = api.call("GET", "/api/v1/session", headers=CONSOLE)
    assert status == 401 and headers.get("WWW-Authenticate") is None, \
        f"a 401 to the console must not carry WWW-Authenticate (browser dialog): {headers.get('WWW-Authenticate')}"
    status, _, headers = api.call("GET", "/api/v1/groups", headers=CONSOLE)
    assert status == 401 and headers.get("WWW-Authenticate") is None
    assert api.call("GET", "/api/v1/session", cookie="forged-session-id")[0] == 401

    # Reads by cookie need no CSRF header.
    assert isinstance(api.ok("GET", "/api/v1/topics", None, cookie=bob), list)

    # Changes by cookie need X-Gregor-Console: 1; basic auth does not.
    status, body, _ = api.call("POST", "/api/v1/topics", body={"name": "csrf", "partitions": 1}, cookie=alice)
    assert status == 403 and is_error(body), f"a cookie change without X-Gregor-Console: {status} {body}"
    assert "csrf" not in a.list_topics(timeout=10).topics, "a refused change created the topic"
    status, body, _ = api.call("POST", "/api/v1/topics", body={"name": "csrf", "partitions": 1},
                               cookie=bob, headers=CONSOLE)
    assert status == 403 and is_error(body, "FORBIDDEN"), (status, body)
    assert "csrf" not in a.list_topics(timeout=10).topics
    assert api.ok("POST", "/api/v1/topics", None, {"name": "csrf", "partitions": 1}, 201,
                  cookie=alice, headers=CONSOLE) == {"created": "csrf"}
    assert "csrf" in a.list_topics(timeout=10).topics
    status, body, _ = api.call("POST", "/api/v1/topics/csrf/messages", body={"value": "x"}, cookie=alice)
    assert status == 403, f"a cookie produce without X-Gregor-Console: {status} {body}"
    assert high_watermark(b.bootstrap, "csrf", 0) == 0
    api.ok("POST", "/api/v1/topics/csrf/messages", None, {"value": "x"}, 201, cookie=alice, headers=CONSOLE)
    assert high_watermark(b.bootstrap, "csrf", 0) == 1

    # Logout clears the cookie; the old one is dead, the other session lives on.
    status, body, headers = api.call("POST", "/api/v1/logout", cookie=alice, headers=CONSOLE)
    assert (status, body) == (200, {"logged_out": True}), (status, body)
    value, line = session_cookie(headers)
    low = line.lower()
    assert value == "" or "max-age=0" in low or "expires=thu, 01 jan 1970" in low, \
        f"logout must clear the cookie: {line}"
    assert api.call("GET", "/api/v1/session", cookie=alice)[0] == 401, "the logged-out session still works"
    status, body, _ = api.call("DELETE", "/api/v1/topics/csrf", cookie=alice, headers=CONSOLE)
    assert status == 401 and is_error(body), (status, body)
    assert "csrf" in a.list_topics(timeout=10).topics
    assert api.ok("GET", "/api/v1/session", None, cookie=bob)["user"] == "bob"

    # RFC 7235 and the contract: a 401 without X-Gregor-Console carries WWW-Authenticate, the login's too.
    status, body, headers = api.call("POST", "/api/v1/login", body={"user": "alice", "password": "nope"})
    assert status == 401 and "Basic" in (headers.get("WWW-Authenticate") or ""), (
        f"POST /api/v1/login with a wrong password and no X-Gregor-Console: expected 401 with WWW-Authenticate, "
        f"got {status} with WWW-Authenticate={headers.get('WWW-Authenticate')!r}")


# ---------------------------------------------------------------- auth failures on every change


def test_changes_refused_without_rights(broker_factory):
    b, api = start(broker_factory)
    a = admin(b.bootstrap)
    create_topic(b.bootstrap, "guarded", 1)
    produce_confluent(confluent_producer(b.bootstrap), "guarded", [{"value": b"one", "partition": 0}])
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "guarded-group", "enable.auto.commit": False,
                  **FAST_RECONNECT})
    c.commit(offsets=[TopicPartition("guarded", 0, 1)], asynchronous=False)
    c.close()
    node = api.ok("GET", "/api/v1/health", None)["node_id"]
    bob_cookie, alice_cookie = api.login(BOB), api.login(ALICE)

    changes = [
        ("PATCH", "/api/v1/topics/guarded/configs", {"set": {"retention.ms": "1000"}, "delete": []}),
        ("POST", "/api/v1/topics/guarded/messages", {"key": "k", "value": "v"}),
        ("POST", "/api/v1/groups/guarded-group/reset-offsets",
         {"topics": ["guarded"], "strategy": "to_earliest", "dry_run": False}),
        ("DELETE", "/api/v1/groups/guarded-group", None),
        ("PATCH", f"/api/v1/brokers/{node}/configs", {"set": {"log.retention.ms": "1000"}}),
    ]
    for method, path, body in changes:
        status, answer, headers = api.call(method, path, None, body)
        assert status == 401 and is_error(answer, "UNAUTHORIZED"), \
            f"{method} {path} without credentials: {status} {answer}"
        assert "Basic" in (headers.get("WWW-Authenticate") or ""), f"{method} {path}: 401 without WWW-Authenticate"
        status, answer, _ = api.call(method, path, ("alice", "wrong"), body)
        assert status == 401 and is_error(answer), f"{method} {path} with a wrong password: {status} {answer}"
        status, answer, _ = api.call(method, path, BOB, body)
        assert status == 403 and is_error(answer, "FORBIDDEN"), f"{method} {path} by a viewer: {status} {answer}"
        status, answer, _ = api.call(method, path, None, body, cookie=bob_cookie, headers=CONSOLE)
        assert status == 403 and is_error(answer, "FORBIDDEN"), \
            f"{method} {path} by a viewer's cookie: {status} {answer}"
        status, answer, _ = api.call(method, path, None, body, cookie=alice_cookie)
        assert status == 403 and is_error(answer), \
            f"{method} {path} by cookie without X-Gregor-Console: {status} {answer}"

    # Nothing changed, as Kafka clients see it.
    entry = describe_topic_configs(a, "guarded")["retention.ms"]
    assert entry.value == "604800000" and entry.source == ConfigSource.DEFAULT_CONFIG.value, entry
    assert high_watermark(b.bootstrap, "guarded", 0) == 1, "a refused produce appended a message"
    assert committed(a, "guarded-group") == {("guarded", 0): 1}, "a refused reset moved the offsets"
    assert "guarded-group" in group_ids(a), "a refused delete removed the group"
    entry = describe_broker_configs(a, node)["log.retention.ms"]
    assert entry.source != ConfigSource.DYNAMIC_BROKER_CONFIG.value and entry.value != "1000", entry


# ---------------------------------------------------------------- topic configs


def test_topic_configs(broker_factory):
    b, api = start(broker_factory, **{"log.retention.bytes": "1073741824"})
    a = admin(b.bootstrap)
    create_topic(b.bootstrap, "tuned", 1)

    listed = api.ok("GET", "/api/v1/topics/tuned/configs", BOB)
    assert isinstance(listed, list) and listed, listed
    for e in listed:
        assert set(e) == {"name", "value", "source", "read_only", "sensitive"}, e
    by_name = {e["name"]: e for e in listed}
    described = describe_topic_configs(a, "tuned")
    assert set(by_name) == set(described), (
        f"configs listed but not described: {sorted(set(by_name) - set(described))}; "
        f"described but not listed: {sorted(set(described) - set(by_name))}")
    for name, entry in described.items():
        mine = by_name[name]
        assert (mine["value"], mine["source"], mine["sensitive"]) == (
            entry.value, ConfigSource(entry.source).name, entry.is_sensitive), (name, mine, entry)
    assert by_name["retention.ms"] == {"name": "retention.ms", "value": "604800000", "source": "DEFAULT_CONFIG",
                                       "read_only": False, "sensitive": False}
    assert (by_name["retention.bytes"]["value"], by_name["retention.bytes"]["source"]) == (
        "1073741824", "STATIC_BROKER_CONFIG")

    # Set two keys, then delete one.
    after = api.ok("PATCH", "/api/v1/topics/tuned/configs", ALICE,
                   {"set": {"retention.ms": "3600000", "cleanup.policy": "compact"}})
    after = {e["name"]: e for e in after}
    assert (after["retention.ms"]["value"], after["retention.ms"]["source"]) == ("3600000", "DYNAMIC_TOPIC_CONFIG")
    assert (after["cleanup.policy"]["value"], after["cleanup.policy"]["source"]) == ("compact", "DYNAMIC_TOPIC_CONFIG")
    described = describe_topic_configs(a, "tuned")
    assert (described["retention.ms"].value, described["retention.ms"].source) == (
        "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert described["cleanup.policy"].value == "compact"
    overrides = api.ok("GET", "/api/v1/topics/tuned", BOB)["configs"]
    assert overrides == {"retention.ms": "3600000", "cleanup.policy": "compact"}, overrides

    after = api.ok("PATCH", "/api/v1/topics/tuned/configs", ALICE, {"delete": ["cleanup.policy"]})
    after = {e["name"]: e for e in after}
    assert (after["cleanup.policy"]["value"], after["cleanup.policy"]["source"]) == ("delete", "DEFAULT_CONFIG")
    assert after["retention.ms"]["value"] == "3600000"
    described = describe_topic_configs(a, "tuned")
    assert (described["cleanup.policy"].value, described["cleanup.policy"].source) == (
        "delete", ConfigSource.DEFAULT_CONFIG.value)

    # Bad input changes nothing.
    for change in ({"set": {"retention.ms": "soon"}}, {"set": {"no.such.config": "1"}},
                   {"set": {"retention.ms": "60000", "min.insync.replicas": "0"}}):
        status, body, _ = api.call("PATCH", "/api/v1/topics/tuned/configs", ALICE, change)
        assert status == 400 and is_error(body, "INVALID_CONFIG"), f"PATCH {change}: {status} {body}"
    for raw in (b"{not json", b'{"set": "retention.ms=1"}', b'{"delete": "retention.ms"}'):
        status, body, _ = api.call("PATCH", "/api/v1/topics/tuned/configs", ALICE, raw=raw)
        assert status == 400 and is_error(body), f"PATCH {raw!r}: {status} {body}"
    assert describe_topic_configs(a, "tuned")["retention.ms"].value == "3600000", "a refused change was applied"

    for method, body in (("GET", None), ("PATCH", {"set": {"retention.ms": "1000"}})):
        status, answer, _ = api.call(method, "/api/v1/topics/nowhere/configs", ALICE, body)
        assert status == 404 and is_error(answer, "UNKNOWN_TOPIC_OR_PARTITION"), \
            f"{method} unknown topic: {status} {answer}"
    assert "nowhere" not in a.list_topics(timeout=10).topics


# ---------------------------------------------------------------- produce


def test_produce_through_api(broker_factory):
    b, api = start(broker_factory)
    a = admin(b.bootstrap)
    create_topic(b.bootstrap, "api-in", 3)
    create_topic(b.bootstrap, "small", 1, {"max.message.bytes": "1000"})

    sent = [
        ({"partition": 2, "key": "k1", "value": "hello",
          "headers": [{"key": "h1", "value": "v1"}, {"key": "h2", "value": None}]},
         (b"k1", b"hello", [("h1", b"v1"), ("h2", None)])),
        ({"partition": 2, "key_base64": b64(b"\x00\x01\xfe"), "value_base64": b64(b"\xff\x00binary")},
         (b"\x00\x01\xfe", b"\xff\x00binary", [])),
        ({"partition": 0, "key": "gone", "value": None}, (b"gone", None, [])),
        ({"partition": 1, "value": "no key", "headers": [{"key": "trace", "value": "abc"}]},
         (None, b"no key", [("trace", b"abc")])),
        ({"partition": 1, "key": "", "value": ""}, (b"", b"", [])),
    ]
    results = []
    for body, _ in sent:
        r = api.ok("POST", "/api/v1/topics/api-in/messages", ALICE, body, 201)
        assert set(r) == {"topic", "partition", "offset"}, r
        assert (r["topic"], r["partition"]) == ("api-in", body["partition"]), r
        results.append(r)
    assert [(r["partition"], r["offset"]) for r in results] == [(2, 0), (2, 1), (0, 0), (1, 0), (1, 1)]

    got = {(m.partition, m.offset): m for m in read_confluent(b.bootstrap, "api-in", {0: 0, 1: 0, 2: 0})}
    assert len(got) == len(sent)
    for (body, (key, value, headers)), r in zip(sent, results):
        m = got[(r["partition"], r["offset"])]
        assert (m.key, m.value, m.headers) == (key, value, headers), (body, m)
        assert m.create_time and abs(m.timestamp - time.time() * 1000) < 120_000, m

    # Keyed messages without a partition go where Kafka's murmur2 partitioner puts them.
    keys = [f"user-{i}" for i in range(12)]
    api_partitions = {
        k: api.ok("POST", "/api/v1/topics/api-in/messages", ALICE, {"key": k, "value": "p"}, 201)["partition"]
        for k in keys}
    p = confluent_producer(b.bootstrap, partitioner="murmur2_random")
    deliveries = produce_confluent(p, "api-in", [{"key": k.encode(), "value": b"c"} for k in keys])
    confluent_partitions = {k: d.partition for k, d in zip(keys, deliveries)}
    assert api_partitions == confluent_partitions, f"API {api_partitions} vs confluent murmur2 {confluent_partitions}"
    assert api_partitions == {k: kafka_partition(k.encode(), 3) for k in keys}
    assert len(set(api_partitions.values())) > 1

    # Too large for the topic's max.message.bytes: nothing appended.
    status, body, _ = api.call("POST", "/api/v1/topics/small/messages", ALICE, {"value": "x" * 5000})
    assert status == 400 and is_error(body, "MESSAGE_TOO_LARGE"), \
        f"a 5000-byte value on max.message.bytes=1000: {status} {body}"
    assert api.ok("POST", "/api/v1/topics/small/messages", ALICE, {"value": "x" * 100}, 201)["offset"] == 0

    # Bad input.
    status, body, _ = api.call("POST", "/api/v1/topics/nowhere/messages", ALICE, {"value": "x"})
    assert status == 404 and is_error(body, "UNKNOWN_TOPIC_OR_PARTITION"), f"unknown topic: {status} {body}"
    assert "nowhere" not in a.list_topics(timeout=10).topics, "producing through the API auto-created a topic"
    for partition in (7, -1):
        status, body, _ = api.call("POST", "/api/v1/topics/api-in/messages", ALICE,
                                   {"partition": partition, "value": "x"})
        assert status in (400, 404) and is_error(body), f"unknown partition {partition}: {status} {body}"
    bad_bodies = [
        ({"partition": "one", "value": "x"}, "a partition that is not a number"),
        ({"value_base64": "***not base64***"}, "bad base64"),
        ({"value": "x", "headers": "h=1"}, "headers not a list"),
        ({"value": "x", "headers": [{"value": "no key"}]}, "a header without a key"),
        ({"value": 42}, "a value that is not a string"),
        ({"partition": 0, "key": "k", "key_base64": b64(b"k"), "value": "x"}, "both key and key_base64"),
    ]
    for body, why in bad_bodies:
        status, answer, _ = api.call("POST", "/api/v1/topics/api-in/messages", ALICE, body)
        assert status == 400 and is_error(answer), f"{why} ({body}): {status} {answer}"
    status, answer, _ = api.call("POST", "/api/v1/topics/api-in/messages", ALICE, raw=b"value=x")
    assert status == 400 and is_error(answer), f"a body that is not JSON: {status} {answer}"
    ends = {pt: high_watermark(b.bootstrap, "api-in", pt) for pt in range(3)}
    assert sum(ends.values()) == len(sent) + 2 * len(keys), f"refused produces appended messages: {ends}"
    assert high_watermark(b.bootstrap, "small", 0) == 1

    # `value` is required (null for a tombstone): a body without it is bad input.
    status, answer, _ = api.call("POST", "/api/v1/topics/api-in/messages", ALICE, {"partition": 0, "key": "no value"})
    assert status == 400 and is_error(answer), (
        f"POST messages without \"value\" (nor value_base64): expected 400, got {status} {answer}")


# ---------------------------------------------------------------- browse


def test_browse_messages(broker_factory):
    b, api = start(broker_factory)
    create_topic(b.bootstrap, "browse", 2)
    base = int(time.time() * 1000) - 3_600_000

    def ts(p: int, i: int) -> int:
        return base + (2 * i + p) * 1000

    def key(p, i):
        return None if (p, i) == (0, 3) else f"k{p}-{i}".encode()

    def value(p, i):
        if (p, i) == (1, 2):
            return b"\xff\xfe\x00bin"
        if (p, i) == (0, 5):
            return None
        return f"value {p}-{i}".encode()

    def headers(p, i):
        if (p, i) == (1, 6):
            return [("trace", b"needle-in-header"), ("empty", None)]
        return [("idx", f"{p}-{i}".encode())]

    items = [{"partition": p, "key": key(p, i), "value": value(p, i), "headers": headers(p, i), "timestamp": ts(p, i)}
             for i in range(10) for p in range(2)]
    deliveries = produce_confluent(confluent_producer(b.bootstrap), "browse", items)
    assert all(d.error is None for d in deliveries)
    assert sorted((d.partition, d.offset) for d in deliveries) == [(p, i) for p in range(2) for i in range(10)]

    def expected(p, i):
        raw_value = value(p, i)
        shown = None if raw_value is None else (
            {"base64": b64(raw_value)} if (p, i) == (1, 2) else {"utf8": raw_value.decode()})
        return {"partition": p, "offset": i, "timestamp": ts(p, i), "timestamp_type": "CreateTime",
                "key": None if key(p, i) is None else text(key(p, i).decode()), "value": shown,
                "headers": [{"key": k, "value": None if v is None else text(v.decode())} for k, v in headers(p, i)]}

    def browse(**params):
        return api.ok("GET", q("/api/v1/topics/browse/messages", **params), BOB)

    def at(page):
        return [(m["partition"], m["offset"]) for m in page["messages"]]

    # One partition, oldest first (the default), every field.
    page = browse(partition=0)
    assert set(page) >= {"messages", "scanned", "complete"}, page
    assert page["messages"] == [expected(0, i) for i in range(10)]
    assert page["complete"] is True
    assert browse(partition=1)["messages"] == [expected(1, i) for i in range(10)]
    assert at(browse(partition=0, offset=3, limit=4)) == [(0, 3), (0, 4), (0, 5), (0, 6)]
    assert at(browse(partition=0, offset=8, order="oldest")) == [(0, 8), (0, 9)]
    assert at(browse(partition=0, offset=10)) == []

    # Newest first: from the high watermark, or from an offset (inclusive), downward.
    assert at(browse(partition=0, order="newest", limit=3)) == [(0, 9), (0, 8), (0, 7)]
    assert at(browse(partition=1, order="newest", offset=5, limit=3)) == [(1, 5), (1, 4), (1, 3)]
    assert at(browse(partition=1, order="newest", offset=1)) == [(1, 1), (1, 0)]

    # From a timestamp: the first at or after it (oldest), or the ones before it (newest).
    assert at(browse(partition=0, timestamp=ts(0, 4), limit=2)) == [(0, 4), (0, 5)]
    assert at(browse(partition=0, timestamp=ts(0, 4) - 500, limit=2)) == [(0, 4), (0, 5)]
    assert at(browse(partition=0, timestamp=ts(0, 4) - 500, order="newest", limit=2)) == [(0, 3), (0, 2)]
    assert at(browse(partition=0, timestamp=ts(0, 4), order="newest", limit=2)) == [(0, 3), (0, 2)], \
        "newest first from a timestamp: the records before it"
    assert at(browse(partition=0, timestamp=ts(0, 9) + 1)) == []

    # All partitions, merged by timestamp.
    merged = [(p, i) for i in range(10) for p in range(2)]
    assert at(browse()) == merged
    assert browse()["messages"] == [expected(p, i) for p, i in merged]
    assert at(browse(order="newest")) == merged[::-1]
    assert at(browse(limit=5)) == merged[:5]
    assert at(browse(order="newest", limit=3)) == merged[::-1][:3]
    assert at(browse(timestamp=ts(1, 6))) == merged[merged.index((1, 6)):]

    # Search key, value and headers.
    assert at(browse(q="needle-in")) == [(1, 6)], "a header value matches"
    assert at(browse(q="k0-7")) == [(0, 7)], "a key matches"
    assert at(browse(q="value 1-4")) == [(1, 4)], "a value matches"
    assert at(browse(q="1-8")) == [(1, 8)], "key, value and header of one record match once"
    page = browse(q="no such text")
    assert page["messages"] == [] and page["complete"] is True and page["scanned"] == 20, page
    page = browse(partition=1, q="value", order="newest", limit=2)
    assert at(page) == [(1, 9), (1, 8)], page

    # Bad input, for one partition and for all.
    bad = [dict(offset=-1), dict(offset="abc"), dict(limit=-5), dict(limit="abc"), dict(order="sideways"),
           dict(offset=1, timestamp=ts(0, 1)), dict(timestamp="yesterday")]
    for params in bad:
        for where in ({"partition": 0}, {}):
            status, body, _ = api.call("GET", q("/api/v1/topics/browse/messages", **where, **params), BOB)
            assert status == 400 and is_error(body), f"GET messages {where | params}: expected 400, got {status} {body}"
    status, body, _ = api.call("GET", q("/api/v1/topics/browse/messages", partition="x"), BOB)
    assert status == 400 and is_error(body), f"GET messages partition=x: expected 400, got {status} {body}"
    for partition in (5, -1):
        status, body, _ = api.call("GET", q("/api/v1/topics/browse/messages", partition=partition), BOB)
        assert status in (400, 404) and is_error(body), f"unknown partition {partition}: {status} {body}"
    status, body, _ = api.call("GET", "/api/v1/topics/nowhere/messages", BOB)
    assert status == 404 and is_error(body, "UNKNOWN_TOPIC_OR_PARTITION"), f"unknown topic: {status} {body}"
    status, body, _ = api.call("GET", "/api/v1/topics/browse/messages")
    assert status == 401 and is_error(body)

    # limit: 100 by default, at most 1000.
    create_topic(b.bootstrap, "many", 1)
    produce_confluent(confluent_producer(b.bootstrap, **{"linger.ms": 20}), "many",
                      [{"partition": 0, "value": str(i).encode()} for i in range(1100)])
    page = api.ok("GET", "/api/v1/topics/many/messages", BOB)
    assert [m["offset"] for m in page["messages"]] == list(range(100)), "the default limit is 100"
    page = api.ok("GET", q("/api/v1/topics/many/messages", order="newest", limit=5000), BOB)
    assert [m["offset"] for m in page["messages"]] == list(range(1099, 99, -1)), "a limit above 1000 gives 1000"

    # max_scan bounds the records examined per partition, and says so.
    for order in ("oldest", "newest"):
        page = browse(q="no such text", max_scan=3, order=order)
        assert page["messages"] == [] and page["complete"] is False and 0 < page["scanned"] <= 6, (
            f"q=...&max_scan=3&order={order} over 2 partitions of 10 records: expected at most 3 records examined "
            f"per partition and complete=false, got {page}")


def test_browse_compressed_and_transactional(broker_factory):
    """Compressed batches are decoded; transaction markers are left out and aborted records
    shown, as a read_uncommitted consumer sees them."""
    b, api = start(broker_factory)
    create_topic(b.bootstrap, "zipped", 1)
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        produce_confluent(confluent_producer(b.bootstrap, **{"compression.type": codec, "linger.ms": 50}), "zipped",
                          [{"partition": 0, "key": f"{codec}-{i}".encode(),
                            "value": f"payload {codec} {i} ".encode() * 20, "headers": [("codec", codec.encode())]}
                           for i in range(3)])
    seen = read_confluent(b.bootstrap, "zipped", {0: 0})
    page = api.ok("GET", q("/api/v1/topics/zipped/messages", partition=0), BOB)
    assert [(m["offset"], m["key"], m["value"], m["headers"]) for m in page["messages"]] == [
        (m.offset, text(m.key.decode()), text(m.value.decode()),
         [{"key": "codec", "value": text(m.headers[0][1].decode())}]) for m in seen], page
    assert len(seen) == 12
    found = api.ok("GET", q("/api/v1/topics/zipped/messages", q="payload lz4 1"), BOB)["messages"]
    assert [m["key"] for m in found] == [{"utf8": "lz4-1"}], found

    create_topic(b.bootstrap, "txn", 1)
    p = confluent_producer(b.bootstrap, **{"transactional.id": "api-txn"})
    p.init_transactions(20)
    for outcome in ("commit", "abort"):
        p.begin_transaction()
        for i in range(2):
            p.produce("txn", value=f"{outcome}-{i}".encode(), partition=0)
        p.flush(20)
        (p.commit_transaction if outcome == "commit" else p.abort_transaction)(20)
    # Offsets 0-1 committed, 2 its marker, 3-4 aborted, 5 its marker.
    seen = read_confluent(b.bootstrap, "txn", {0: 0}, {0: 5}, **{"isolation.level": "read_uncommitted"})
    assert high_watermark(b.bootstrap, "txn", 0) == 6
    expected = [(m.offset, text(m.value.decode())) for m in seen]
    assert [v for _, v in expected] == [text(f"{o}-{i}") for o in ("commit", "abort") for i in range(2)]
    page = api.ok("GET", q("/api/v1/topics/txn/messages", partition=0), BOB)
    assert [(m["offset"], m["value"]) for m in page["messages"]] == expected, page
    page = api.ok("GET", q("/api/v1/topics/txn/messages", partition=0, order="newest", limit=3), BOB)
    assert [(m["offset"], m["value"]) for m in page["messages"]] == expected[::-1][:3], page


# ---------------------------------------------------------------- consumer groups


def test_group_detail_reset_and_delete(broker_factory):
    b, api = start(broker_factory)
    a = admin(b.bootstrap)
    create_topic(b.bootstrap, "orders", 2)
    base = int(time.time() * 1000) - 3 * 3_600_000
    produce_confluent(confluent_producer(b.bootstrap), "orders",
                      [{"partition": p, "value": f"{p}-{i}".encode(), "timestamp": base + i * 600_000}
                       for p in range(2) for i in range(10)])

    status, body, _ = api.call("GET", "/api/v1/groups/nobody", BOB)
    assert status == 404 and is_error(body, "GROUP_ID_NOT_FOUND"), f"unknown group: {status} {body}"
    status, body, _ = api.call("DELETE", "/api/v1/groups/nobody", ALICE)
    assert status == 404 and is_error(body), f"delete of an unknown group: {status} {body}"

    # A running consumer.
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "shop", "client.id": "shop-client",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                  "heartbeat.interval.ms": 500, **FAST_RECONNECT})
    try:
        c.subscribe(["orders"])
        deadline = time.monotonic() + 20
        while not c.assignment() and time.monotonic() < deadline:
            c.poll(0.2)
        assert sorted(tp.partition for tp in c.assignment()) == [0, 1], "the consumer got no assignment"
        c.commit(offsets=[TopicPartition("orders", 0, 6), TopicPartition("orders", 1, 3)], asynchronous=False)
        described = a.describe_consumer_groups(["shop"])["shop"].result(15)
        while described.state.name != "STABLE" and time.monotonic() < deadline:
            c.poll(0.2)
            described = a.describe_consumer_groups(["shop"])["shop"].result(15)

        group = api.ok("GET", "/api/v1/groups/shop", BOB)
        assert group["group"] == "shop" and group["protocol_type"] == "consumer", group
        assert group["state"].upper() == described.state.name == "STABLE", (group["state"], described.state)
        assert group["protocol"] == described.partition_assignor, (group["protocol"], described.partition_assignor)
        assert group["type"] == "classic", group["type"]
        [member] = group["members"]
        [kmember] = described.members
        assert (member["member_id"], member["client_id"], member["group_instance_id"]) == (
            kmember.member_id, "shop-client", None), member
        assert member["client_host"], member
        assert [(t["topic"], sorted(t["partitions"])) for t in member["assignment"]] == [("orders", [0, 1])], member
        offsets = {o["partition"]: o for o in group["offsets"] if o["topic"] == "orders"}
        assert (offsets[0]["committed_offset"], offsets[0]["log_start_offset"], offsets[0]["end_offset"],
                offsets[0]["lag"]) == (6, 0, 10, 4), offsets
        assert (offsets[1]["committed_offset"], offsets[1]["end_offset"], offsets[1]["lag"]) == (3, 10, 7)
        assert group["lag"] == 11
        summary = next(g for g in api.ok("GET", "/api/v1/groups", BOB) if g["group"] == "shop")
        assert (summary["members"], summary["lag"], summary["protocol_type"]) == (1, 11, "consumer"), summary
        assert summary["state"].upper() == "STABLE"

        # Members: no reset, no delete.
        for dry_run in (True, False):
            status, body, _ = api.call("POST", "/api/v1/groups/shop/reset-offsets", ALICE,
                                       {"topics": ["orders"], "strategy": "to_earliest", "dry_run": dry_run})
            assert status == 409 and is_error(body, "NON_EMPTY_GROUP"), \
                f"reset (dry_run={dry_run}) of an active group: {status} {body}"
        status, body, _ = api.call("DELETE", "/api/v1/groups/shop", ALICE)
        assert status == 409 and is_error(body, "NON_EMPTY_GROUP"), f"delete of an active group: {status} {body}"
        assert committed(a, "shop") == {("orders", 0): 6, ("orders", 1): 3}
    finally:
        c.close()

    deadline = time.monotonic() + 15
    while api.ok("GET", "/api/v1/groups/shop", BOB)["state"] != "Empty" and time.monotonic() < deadline:
        time.sleep(0.2)
    group = api.ok("GET", "/api/v1/groups/shop", BOB)
    assert group["state"] == "Empty" and group["members"] == [], group

    def reset(body, user=ALICE, status=200):
        return api.ok("POST", "/api/v1/groups/shop/reset-offsets", user, body, status)

    def plan(answer):
        return {(r["topic"], r["partition"]): (r["current_offset"], r["new_offset"]) for r in answer["plan"]}

    # A dry run (the default) plans and changes nothing; so does a viewer's attempt.
    answer = reset({"topics": ["orders"], "strategy": "to_earliest"})
    assert answer["group"] == "shop" and answer["executed"] is False, answer
    assert plan(answer) == {("orders", 0): (6, 0), ("orders", 1): (3, 0)}
    assert committed(a, "shop") == {("orders", 0): 6, ("orders", 1): 3}, "a dry run moved the offsets"
    answer = reset({"topics": ["orders"], "strategy": "to_earliest"}, user=BOB)
    assert answer["executed"] is False and plan(answer) == {("orders", 0): (6, 0), ("orders", 1): (3, 0)}, \
        "a viewer may ask for a dry run"
    status, body, _ = api.call("POST", "/api/v1/groups/shop/reset-offsets", BOB,
                               {"topics": ["orders"], "strategy": "to_earliest", "dry_run": False})
    assert status == 403 and is_error(body, "FORBIDDEN")
    assert committed(a, "shop") == {("orders", 0): 6, ("orders", 1): 3}

    answer = reset({"topics": ["orders:0,1"], "strategy": "to_offset", "value": "5"})
    assert plan(answer) == {("orders", 0): (6, 5), ("orders", 1): (3, 5)}, answer

    # Each strategy, executed, is what Kafka's admin client then reads.
    answer = reset({"topics": ["orders"], "strategy": "to_earliest", "dry_run": False})
    assert answer["executed"] is True and plan(answer) == {("orders", 0): (6, 0), ("orders", 1): (3, 0)}, answer
    assert committed(a, "shop") == {("orders", 0): 0, ("orders", 1): 0}
    answer = reset({"topics": ["orders:1"], "strategy": "to_offset", "value": 4, "dry_run": False})
    assert plan(answer) == {("orders", 1): (0, 4)}, answer
    assert committed(a, "shop") == {("orders", 0): 0, ("orders", 1): 4}
    answer = reset({"all_topics": True, "strategy": "shift_by", "value": "-2", "dry_run": False})
    assert plan(answer) == {("orders", 0): (0, 0), ("orders", 1): (4, 2)}, "shift_by stays within the log"
    assert committed(a, "shop") == {("orders", 0): 0, ("orders", 1): 2}
    answer = reset({"all_topics": True, "strategy": "shift_by", "value": 3, "dry_run": False})
    assert plan(answer) == {("orders", 0): (0, 3), ("orders", 1): (2, 5)}, answer
    answer = reset({"topics": ["orders"], "strategy": "to_latest", "dry_run": False})
    assert plan(answer) == {("orders", 0): (3, 10), ("orders", 1): (5, 10)}, answer
    assert committed(a, "shop") == {("orders", 0): 10, ("orders", 1): 10}
    answer = reset({"topics": ["orders:0"], "strategy": "to_datetime", "value": iso(base + 4 * 600_000 - 1),
                    "dry_run": False})
    assert plan(answer) == {("orders", 0): (10, 4)}, answer
    answer = reset({"topics": ["orders:1"], "strategy": "by_duration", "value": "PT2H25M", "dry_run": False})
    assert plan(answer) == {("orders", 1): (10, 4)}, f"by_duration PT2H25M back from now: {answer}"
    answer = reset({"topics": ["orders:1"], "strategy": "by_duration", "value": "2h25m"})
    assert (answer["executed"], plan(answer)) == (False, {("orders", 1): (4, 4)}), f"by_duration 2h25m: {answer}"
    assert committed(a, "shop") == {("orders", 0): 4, ("orders", 1): 4}
    answer = reset({"topics": ["orders:0"], "strategy": "to_offset", "value": 100, "dry_run": False})
    assert plan(answer) == {("orders", 0): (4, 10)}, f"to_offset past the log end is kept within the log: {answer}"
    assert committed(a, "shop") == {("orders", 0): 10, ("orders", 1): 4}

    # Bad strategies and values change nothing.
    bad = [
        {"topics": ["orders"], "strategy": "to_moon", "dry_run": False},
        {"topics": ["orders"], "strategy": "to_offset", "value": "abc", "dry_run": False},
        {"topics": ["orders"], "strategy": "to_offset", "dry_run": False},
        {"topics": ["orders"], "strategy": "to_datetime", "value": "yesterday", "dry_run": False},
        {"topics": ["orders"], "strategy": "by_duration", "value": "soon", "dry_run": False},
        {"topics": ["orders"], "strategy": "shift_by", "value": "x", "dry_run": False},
        {"strategy": "to_earliest", "dry_run": False},
        {"topics": ["orders:x"], "strategy": "to_earliest", "dry_run": False},
        {"topics": "orders", "strategy": "to_earliest", "dry_run": False},
    ]
    for body in bad:
        status, answer, _ = api.call("POST", "/api/v1/groups/shop/reset-offsets", ALICE, body)
        assert status == 400 and is_error(answer), f"reset {body}: expected 400, got {status} {answer}"
    status, answer, _ = api.call("POST", "/api/v1/groups/shop/reset-offsets", ALICE,
                                 {"topics": ["orders:9"], "strategy": "to_earliest", "dry_run": False})
    assert status in (400, 404) and is_error(answer), f"reset of a partition that does not exist: {status} {answer}"
    status, answer, _ = api.call("POST", "/api/v1/groups/shop/reset-offsets", ALICE, raw=b"strategy=to_earliest")
    assert status == 400 and is_error(answer), f"a body that is not JSON: {status} {answer}"
    assert committed(a, "shop") == {("orders", 0): 10, ("orders", 1): 4}, "a refused reset moved the offsets"

    # Delete: a viewer cannot; an admin can, and Kafka's clients no longer list it.
    status, body, _ = api.call("DELETE", "/api/v1/groups/shop", BOB)
    assert status == 403 and is_error(body, "FORBIDDEN")
    assert "shop" in group_ids(a)
    assert api.ok("DELETE", "/api/v1/groups/shop", ALICE) == {"deleted": "shop"}
    assert "shop" not in group_ids(a), "the deleted group is still listed by list_consumer_groups"
    status, body, _ = api.call("GET", "/api/v1/groups/shop", BOB)
    assert status == 404 and is_error(body, "GROUP_ID_NOT_FOUND"), (status, body)
    assert not any(g["group"] == "shop" for g in api.ok("GET", "/api/v1/groups", BOB))

    # dry_run is a boolean: anything else is bad input (it must not be read as either).
    status, answer, _ = api.call("POST", "/api/v1/groups/other/reset-offsets", ALICE,
                                 {"topics": ["orders"], "strategy": "to_earliest", "dry_run": "no"})
    assert status == 400 and is_error(answer), f'reset with "dry_run": "no": expected 400, got {status} {answer}'


# ---------------------------------------------------------------- broker configs


def test_broker_configs(broker_factory):
    b, api = start(broker_factory, **{"message.max.bytes": "500000"})
    a = admin(b.bootstrap)
    node = api.ok("GET", "/api/v1/health", None)["node_id"]
    create_topic(b.bootstrap, "inherits", 1)

    listed = api.ok("GET", f"/api/v1/brokers/{node}/configs", BOB)
    assert isinstance(listed, list) and listed
    for e in listed:
        assert set(e) == {"name", "value", "source", "read_only", "sensitive"}, e
    by_name = {e["name"]: e for e in listed}
    assert "wonderland" not in json.dumps(listed), "a console password is reported"
    if "console.users" in by_name:
        assert by_name["console.users"]["sensitive"] and by_name["console.users"]["value"] is None
    assert by_name["message.max.bytes"] == {"name": "message.max.bytes", "value": "500000",
                                            "source": "STATIC_BROKER_CONFIG", "read_only": False, "sensitive": False}
    assert (by_name["group.initial.rebalance.delay.ms"]["value"], by_name["group.initial.rebalance.delay.ms"]["source"],
            by_name["group.initial.rebalance.delay.ms"]["read_only"]) == ("0", "STATIC_BROKER_CONFIG", True)
    assert by_name["num.partitions"]["read_only"] is True and by_name["num.partitions"]["source"] == "DEFAULT_CONFIG"
    described = describe_broker_configs(a, node)
    for name, entry in described.items():
        if name in by_name:
            mine = by_name[name]
            assert (mine["value"], mine["source"], mine["read_only"]) == (
                entry.value, ConfigSource(entry.source).name, entry.is_read_only), (name, mine, entry)
    assert set(described) <= set(by_name) | {"console.users"}, sorted(set(described) - set(by_name))

    for method, body in (("GET", None), ("PATCH", {"set": {"log.retention.ms": "1000"}})):
        status, answer, _ = api.call(method, f"/api/v1/brokers/{node + 5}/configs", ALICE, body)
        assert status == 404 and is_error(answer), f"{method} configs of node {node + 5}: {status} {answer}"

    # A dynamic key: reported by describe_configs and inherited by topics.
    after = api.ok("PATCH", f"/api/v1/brokers/{node}/configs", ALICE, {"set": {"log.retention.ms": "7200000"}})
    after = {e["name"]: e for e in after}
    assert (after["log.retention.ms"]["value"], after["log.retention.ms"]["source"]) == (
        "7200000", "DYNAMIC_BROKER_CONFIG"), after["log.retention.ms"]
    entry = describe_broker_configs(a, node)["log.retention.ms"]
    assert (entry.value, entry.source) == ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value), entry
    topic = {e["name"]: e for e in api.ok("GET", "/api/v1/topics/inherits/configs", BOB)}
    assert (topic["retention.ms"]["value"], topic["retention.ms"]["source"]) == ("7200000", "DYNAMIC_BROKER_CONFIG")
    entry = describe_topic_configs(a, "inherits")["retention.ms"]
    assert (entry.value, entry.source) == ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value), entry

    # A read-only key, a bad value, an unknown key: 400 with Kafka's error name, nothing changed.
    for change in ({"set": {"num.partitions": "3"}}, {"set": {"log.retention.ms": "soon"}},
                   {"set": {"no.such.config": "1"}}, {"set": {"log.retention.ms": "1000", "num.partitions": "3"}}):
        status, answer, _ = api.call("PATCH", f"/api/v1/brokers/{node}/configs", ALICE, change)
        assert status == 400 and is_error(answer) and answer["error"] in ("INVALID_CONFIG", "INVALID_REQUEST"), \
            f"PATCH broker {change}: {status} {answer}"
    status, answer, _ = api.call("PATCH", f"/api/v1/brokers/{node}/configs", ALICE, raw=b"{oops")
    assert status == 400 and is_error(answer)
    described = describe_broker_configs(a, node)
    assert described["log.retention.ms"].value == "7200000" and described["num.partitions"].value == "1"

    # Delete returns it to its default.
    after = api.ok("PATCH", f"/api/v1/brokers/{node}/configs", ALICE, {"delete": ["log.retention.ms"]})
    after = {e["name"]: e for e in after}
    assert after["log.retention.ms"]["source"] != "DYNAMIC_BROKER_CONFIG", after["log.retention.ms"]
    entry = describe_broker_configs(a, node)["log.retention.ms"]
    assert entry.source != ConfigSource.DYNAMIC_BROKER_CONFIG.value, entry
    entry = describe_topic_configs(a, "inherits")["retention.ms"]
    assert (entry.value, entry.source) == ("604800000", ConfigSource.DEFAULT_CONFIG.value), entry


def test_session_expires_when_idle_and_at_restart(broker_factory):
    b, api = start(broker_factory, **{"console.session.timeout.ms": "1500"})
    cookie = api.login(ALICE)
    for _ in range(3):  # each call keeps an idle session alive
        time.sleep(0.8)
        assert api.call("GET", "/api/v1/session", cookie=cookie)[0] == 200, "a session in use expired"
    time.sleep(2.0)
    status, body, _ = api.call("GET", "/api/v1/session", cookie=cookie, headers=CONSOLE)
    assert status == 401 and is_error(body), f"a session idle past console.session.timeout.ms: {status} {body}"

    cookie = api.login(ALICE)
    b.restart()
    assert api.call("GET", "/api/v1/session", cookie=cookie)[0] == 401, "a session outlived a restart"
    assert api.ok("GET", "/api/v1/session", ALICE)["user"] == "alice"


# ---------------------------------------------------------------- overview counters


def test_cluster_and_topic_views(broker_factory):
    b, api = start(broker_factory)
    a = admin(b.bootstrap)
    assert api.ok("POST", "/api/v1/topics", ALICE, {"name": "views", "partitions": 3}, 201) == {"created": "views"}
    produce_confluent(confluent_producer(b.bootstrap), "views",
                      [{"partition": p, "value": b"v" * 100} for p, n in ((0, 5), (1, 3)) for _ in range(n)])

    health = api.ok("GET", "/api/v1/health", None)
    assert health["status"] == "ok" and health["cluster_id"] == b.cluster_id, (health, b.banner)
    cluster = api.ok("GET", "/api/v1/cluster", BOB)
    assert (cluster["cluster_id"], cluster["node_id"], cluster["active_controller_here"]) == (
        b.cluster_id, health["node_id"], True), cluster
    [broker] = cluster["brokers"]
    assert (broker["id"], broker["port"], broker["rack"], broker["fenced"]) == (
        health["node_id"], b.port, None, False), broker
    assert broker["host"] and isinstance(broker["epoch"], int), broker
    meta = a.list_topics(timeout=10)
    assert cluster["topics"] == len(meta.topics), (cluster["topics"], sorted(meta.topics))
    assert cluster["partitions"] == sum(len(t.partitions) for t in meta.topics.values())
    assert (cluster["under_replicated_partitions"], cluster["offline_partitions"]) == (0, 0)
    log_dir = cluster["log_dir"]
    assert log_dir["path"] and log_dir["size_bytes"] >= 800, log_dir
    assert 0 <= log_dir["free_bytes"] <= log_dir["total_bytes"], log_dir

    listed = next(t for t in api.ok("GET", "/api/v1/topics", BOB) if t["name"] == "views")
    assert {k: listed[k] for k in ("internal", "partitions", "replication_factor", "under_replicated_partitions",
                                   "offline_partitions", "messages", "messages_in_total")} == {
        "internal": False, "partitions": 3, "replication_factor": 1, "under_replicated_partitions": 0,
        "offline_partitions": 0, "messages": 8, "messages_in_total": 8}, listed
    assert listed["size_bytes"] >= 800 and listed["bytes_in_total"] >= 800, listed
    described = a.describe_topics(TopicCollection(["views"]))["views"].result(15)
    kafka_id = str(described.topic_id)  # Kafka's base64 form; the API writes the UUID's usual form
    kafka_bytes = base64.b64decode(kafka_id.replace("-", "+").replace("_", "/") + "==")
    assert uuid.UUID(listed["topic_id"]).bytes == kafka_bytes, (listed["topic_id"], kafka_id)

    topic = api.ok("GET", "/api/v1/topics/views", BOB)
    assert (topic["name"], topic["topic_id"], topic["internal"], topic["messages_in_total"]) == (
        "views", listed["topic_id"], False, 8), topic
    assert topic["bytes_in_total"] == listed["bytes_in_total"]
    parts = {p["partition"]: p for p in topic["partitions"]}
    node = health["node_id"]
    assert sorted(parts) == [0, 1, 2]
    probe = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "views-probe", **FAST_RECONNECT})
    try:
        for p, n in ((0, 5), (1, 3), (2, 0)):
            row = parts[p]
            low, high = probe.get_watermark_offsets(TopicPartition("views", p), timeout=10)
            assert (row["leader"], row["replicas"], row["isr"], row["log_start_offset"], row["high_watermark"],
                    row["log_end_offset"]) == (node, [node], [node], low, high, n), row
            assert high == n and isinstance(row["leader_epoch"], int) and row["leader_epoch"] >= 0, row
            assert (row["size_bytes"] > 0) == (n > 0), row
    finally:
        probe.close()


# ---------------------------------------------------------------- the document matches the answers


def schema_errors(doc: dict, schema: dict, value, where: str = "$") -> list[str]:
    """Where `value` breaks `schema` (the OpenAPI 3.0 subset the document uses)."""
    while "$ref" in schema:
        node = doc
        for part in schema["$ref"][2:].split("/"):
            node = node[part]
        schema = node
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null"]
    if "oneOf" in schema:
        fits = [s for s in schema["oneOf"] if not schema_errors(doc, s, value, where)]
        return [] if fits else [f"{where}: {value!r} fits none of oneOf"]
    kind = schema.get("type")
    python = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if kind and (not isinstance(value, python[kind]) or (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{where}: {value!r} is not {kind}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if kind == "object":
        errors += [f"{where}: no {k!r}" for k in schema.get("required", []) if k not in value]
        if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", len(value)):
            errors.append(f"{where}: {len(value)} properties")
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                errors += schema_errors(doc, props[k], v, f"{where}.{k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(doc, schema["additionalProperties"], v, f"{where}.{k}")
            elif props:
                errors.append(f"{where}: {k!r} is not in the document")
    if kind == "array":
        for i, item in enumerate(value):
            errors += schema_errors(doc, schema["items"], item, f"{where}[{i}]")
    return errors


def test_openapi_describes_responses(broker_factory):
    b, api = start(broker_factory)
    doc = api.ok("GET", "/api/v1/openapi.json", None)
    create_topic(b.bootstrap, "doc", 2)
    produce_confluent(confluent_producer(b.bootstrap), "doc",
                      [{"partition": 0, "key": b"k", "value": b"\xff", "headers": [("h", b"v"), ("n", None)]}])
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "doc-group", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("doc", 0, 1)], asynchronous=False)
    c.close()
    node = api.ok("GET", "/api/v1/health", None)["node_id"]
    cookie = api.login(BOB)

    calls = [  # (path template, method, path, user, body, extra call arguments)
        ("/api/v1/health", "get", "/api/v1/health", None, None, {}),
        ("/api/v1/login", "post", "/api/v1/login", None, {"user": "alice", "password": "wonderland"}, {}),
        ("/api/v1/login", "post", "/api/v1/login", None, {"user": "alice", "password": "x"}, {}),
        ("/api/v1/login", "post", "/api/v1/login", None, {"user": "alice"}, {}),
        ("/api/v1/session", "get", "/api/v1/session", None, None, {"cookie": cookie}),
        ("/api/v1/session", "get", "/api/v1/session", None, None, {}),
        ("/api/v1/cluster", "get", "/api/v1/cluster", BOB, None, {}),
        ("/api/v1/topics", "get", "/api/v1/topics", BOB, None, {}),
        ("/api/v1/topics", "post", "/api/v1/topics", ALICE, {"name": "doc2", "configs": {"retention.ms": "1000"}}, {}),
        ("/api/v1/topics", "post", "/api/v1/topics", ALICE, {"name": "doc2"}, {}),
        ("/api/v1/topics", "post", "/api/v1/topics", BOB, {"name": "doc3"}, {}),
        ("/api/v1/topics/{name}", "get", "/api/v1/topics/doc", BOB, None, {}),
        ("/api/v1/topics/{name}", "get", "/api/v1/topics/nowhere", BOB, None, {}),
        ("/api/v1/topics/{name}/configs", "get", "/api/v1/topics/doc/configs", BOB, None, {}),
        ("/api/v1/topics/{name}/configs", "patch", "/api/v1/topics/doc/configs", ALICE,
         {"set": {"retention.ms": "60000"}, "delete": ["cleanup.policy"]}, {}),
        ("/api/v1/topics/{name}/configs", "patch", "/api/v1/topics/doc/configs", ALICE,
         {"set": {"retention.ms": "x"}}, {}),
        ("/api/v1/topics/{name}/messages", "get", "/api/v1/topics/doc/messages", BOB, None, {}),
        ("/api/v1/topics/{name}/messages", "get", "/api/v1/topics/doc/messages?offset=-1", BOB, None, {}),
        ("/api/v1/topics/{name}/messages", "post", "/api/v1/topics/doc/messages", ALICE,
         {"key": "a", "value": "b", "headers": [{"key": "x", "value": None}]}, {}),
        ("/api/v1/groups", "get", "/api/v1/groups", BOB, None, {}),
        ("/api/v1/groups/{id}", "get", "/api/v1/groups/doc-group", BOB, None, {}),
        ("/api/v1/groups/{id}", "get", "/api/v1/groups/nobody", BOB, None, {}),
        ("/api/v1/groups/{id}/reset-offsets", "post", "/api/v1/groups/doc-group/reset-offsets", ALICE,
         {"all_topics": True, "strategy": "to_earliest"}, {}),
        ("/api/v1/groups/{id}/reset-offsets", "post", "/api/v1/groups/doc-group/reset-offsets", ALICE,
         {"all_topics": True, "strategy": "nowhere"}, {}),
        ("/api/v1/brokers/{id}/configs", "get", f"/api/v1/brokers/{node}/configs", BOB, None, {}),
        ("/api/v1/brokers/{id}/configs", "patch", f"/api/v1/brokers/{node}/configs", ALICE,
         {"set": {"log.retention.ms": "86400000"}}, {}),
        ("/api/v1/brokers/{id}/configs", "get", f"/api/v1/brokers/{node + 1}/configs", BOB, None, {}),
        ("/api/v1/groups/{id}", "delete", "/api/v1/groups/doc-group", ALICE, None, {}),
        ("/api/v1/topics/{name}", "delete", "/api/v1/topics/doc2", ALICE, None, {}),
        ("/api/v1/logout", "post", "/api/v1/logout", None, None, {"cookie": cookie, "headers": CONSOLE}),
    ]
    seen = set()
    for template, method, path, user, body, extra in calls:
        status, answer, headers = api.call(method.upper(), path, user, body, **extra)
        responses = doc["paths"][template][method]["responses"]
        assert str(status) in responses, \
            f"{method.upper()} {path} answered {status}, not in the document: {sorted(responses)}"
        response = responses[str(status)]
        while "$ref" in response:
            response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response["content"]["application/json"]["schema"]
        errors = schema_errors(doc, schema, answer)
        assert not errors, f"{method.upper()} {path} -> {status} does not match the document: {errors[:5]} in {answer}"
        seen.add(status)
    assert {200, 201, 400, 401, 403, 404, 409} <= seen, seen
