"""Secured listeners: SSL, SASL_PLAINTEXT and SASL_SSL against real clients and raw bytes.

Contract (docs/security.md): a broker with `listeners=PLAINTEXT://...,SSL://...,
SASL_SSL://...,SASL_PLAINTEXT://...` serves every Kafka client with the settings it would
use against a secured Kafka:

- confluent-kafka, kafka-python, aiokafka and kafkajs over SASL_SSL with SCRAM-SHA-512
  (the user made with AlterUserScramCredentials through the PLAINTEXT listener), and the
  three Python clients over SSL with a client certificate (`ssl.client.auth=required`,
  principal = the certificate's RFC 2253 subject): produce, consume in a group, an admin
  call. kcat with SASL PLAIN over SASL_PLAINTEXT.
- PLAIN users come from Kafka's JAAS `user_<name>` options and from `sasl.plain.users.file`
  (`name:sha256:<hex>` lines).
- Hostile input (raw sockets): a wrong password answers SASL_AUTHENTICATION_FAILED with
  Kafka's message and closes after `connection.failed.authentication.delay.ms`; an unknown
  mechanism answers UNSUPPORTED_SASL_MECHANISM with the enabled ones; a request before
  authentication closes without an answer; SaslAuthenticate before SaslHandshake answers
  ILLEGAL_SASL_STATE; a token over `sasl.server.max.receive.size` closes; a TLS ClientHello
  to the PLAINTEXT port and plaintext Kafka bytes to the SSL port close. After each, every
  listener still serves a normal client.
- KIP-368: with `connections.max.reauth.ms` the SaslAuthenticate answer carries the session
  lifetime, librdkafka re-authenticates on its own without an error, and a connection that
  did not re-authenticate is closed at its next request.
- Certificates replaced on disk are served to new connections without a restart.
- A keystore type Gregor cannot read refuses the start with one sentence naming the key.

The test PKI (a CA, a server certificate for localhost and 127.0.0.1, a client certificate
for CN=alice,OU=eng,O=Example,C=US) is made here with the `cryptography` package: X.509 v3
with subjectAltName (rustls/webpki reject v1 certificates and names outside the SAN).
kafkajs and kcat are found as in test_cluster_clients.py: a missing one is skipped, unless
COMPAT_REQUIRE_ALL=1.
"""
from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import REPO, Broker, broker_binary
from gregor_wire import (Closed, RawConnection, api_versions_request, compact_string, frame, parse_api_versions,
                         read_uvarint, request_header, string, uvarint)
from test_cluster import free_ports

KAFKAJS_DIR = REPO / "compat" / "smoke" / "kafkajs"
KAFKAJS_SCRIPT = REPO / "tests" / "python" / "security_kafkajs.js"
NODE = os.environ.get("NODE", "node")
KCAT = os.environ.get("KCAT", "kcat")

ALICE_DN = "CN=alice,OU=eng,O=Example,C=US"
SCRAM_USER, SCRAM_PASSWORD = "alice", "alice-scram-secret"
PLAIN_USERS = {"alice": "alice-secret", "admin": "admin-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in PLAIN_USERS.items()) + ";")

API_METADATA = 3
API_SASL_HANDSHAKE = 17
API_SASL_AUTHENTICATE = 36
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58
# Kafka's PlainServerCallbackHandler / ScramSaslServer messages.
PLAIN_FAILED = "Authentication failed: Invalid username or password"

FAIL_DELAY_MS = 600


def unavailable(why: str) -> None:
    """Skips, as the smoke matrix does with a client it cannot install, or fails under
    COMPAT_REQUIRE_ALL=1."""
    if os.environ.get("COMPAT_REQUIRE_ALL") == "1":
        pytest.fail(f"{why} (COMPAT_REQUIRE_ALL=1)")
    pytest.skip(why)


# ---------------------------------------------------------------- test PKI


def _name(*parts: tuple) -> x509.Name:
    """An X.509 name from (oid, value) pairs in DER order (RFC 2253 prints them reversed)."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def _pem_key(key) -> bytes:
    """Unencrypted PKCS#8, what `ssl.keystore.key` and a PEM keystore file hold."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Pki:
    dir: Path
    ca_key: object
    ca_cert: x509.Certificate
    ca_pem: Path
    server_pem: Path
    client_crt: Path
    client_key: Path

    def issue(self, subject: x509.Name, *, server: bool, serial: int | None = None) -> tuple[object, x509.Certificate]:
        """A v3 leaf signed by the CA: for localhost and 127.0.0.1 (serverAuth) or a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder()
                   .subject_name(subject)
                   .issuer_name(self.ca_cert.subject)
                   .public_key(key.public_key())
                   .serial_number(serial or x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                                crl_sign=False, encipher_only=False, decipher_only=False),
                                  critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                                  critical=False))
        if server:
            builder = (builder
                       .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                                   x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                      critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return key, builder.sign(self.ca_key, hashes.SHA256())

    def server_keystore(self, cn: str, serial: int | None = None) -> tuple[bytes, x509.Certificate]:
        """A PEM keystore: the PKCS#8 key, then the chain (leaf, CA)."""
        key, cert = self.issue(_name((NameOID.COMMON_NAME, cn)), server=True, serial=serial)
        return _pem_key(key) + _pem_cert(cert) + _pem_cert(self.ca_cert), cert


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_name = _name((NameOID.ORGANIZATION_NAME, "Gregor tests"), (NameOID.COMMON_NAME, "Gregor test CA"))
    ca_cert = (x509.CertificateBuilder()
               .subject_name(ca_name)
               .issuer_name(ca_name)
               .public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=60))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    pki = Pki(directory, ca_key, ca_cert, directory / "ca.pem", directory / "server.pem", directory / "alice.crt",
              directory / "alice.key")
    pki.ca_pem.write_bytes(_pem_cert(ca_cert))
    pki.server_pem.write_bytes(pki.server_keystore("localhost")[0])
    client_key, client_cert = pki.issue(_name((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Example"),
                                              (NameOID.ORGANIZATIONAL_UNIT_NAME, "eng"),
                                              (NameOID.COMMON_NAME, "alice")), server=False)
    pki.client_crt.write_bytes(_pem_cert(client_cert))
    pki.client_key.write_bytes(_pem_key(client_key))
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_the_client_certificate_subject_is_the_expected_rfc2253_name(pki):
    """The principal the SSL tests expect is the subject as RFC 2253 prints it."""
    cert = x509.load_pem_x509_certificate(pki.client_crt.read_bytes())
    assert cert.subject.rfc4514_string() == ALICE_DN
    assert cert.version == x509.Version.v3


# ---------------------------------------------------------------- a secured broker

HOSTS = {"PLAINTEXT": "127.0.0.1", "SSL": "localhost", "SASL_SSL": "localhost", "SASL_PLAINTEXT": "localhost"}


@dataclass
class Secured:
    broker: Broker
    ports: dict[str, int]

    def addr(self, listener: str) -> str:
        return f"{HOSTS[listener]}:{self.ports[listener]}"

    @property
    def plaintext(self) -> str:
        return self.addr("PLAINTEXT")


def secured_sets(pki: Pki) -> dict[str, str]:
    return {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca_pem),
        "listener.name.ssl.ssl.client.auth": "required",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
        "connection.failed.authentication.delay.ms": str(FAIL_DELAY_MS),
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.num.partitions": "3",
    }


def start_secured(broker_factory, pki: Pki, sets: dict[str, str] | None = None,
                  listeners=("PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"), name: str = "secured") -> Secured:
    """A broker with the given listeners on free ports: PLAINTEXT on 127.0.0.1 (the
    inter-broker listener, what the banner advertises), the secured ones on localhost
    (both loopbacks), which the server certificate names."""
    ports = dict(zip(listeners, free_ports(len(listeners))))
    b = broker_factory(name)
    b.sets = {**secured_sets(pki), **(sets or {})}
    b.extra_args = ["--http-listen", "none"]
    cmd = b.command()
    # `--listen` overrides `listeners`: give it Kafka's whole listener list.
    cmd[cmd.index("--listen") + 1] = ",".join(f"{n}://{HOSTS[n]}:{p}" for n, p in ports.items())
    proc, out, err = b.spawn(cmd)
    b.proc = proc
    try:
        b._wait_banner(proc, out, err, 30)
    except Exception as e:  # noqa: BLE001 - the stderr tells why
        raise AssertionError(f"{e}\n--- broker stderr ---\n{b._tail(err)}") from None
    return Secured(b, ports)


@pytest.fixture
def secured(broker_factory, pki) -> Secured:
    return start_secured(broker_factory, pki)


@pytest.fixture
def traced(monkeypatch):
    """Brokers started after this log each request's principal (dispatch at TRACE)."""
    monkeypatch.setenv("RUST_LOG", "info,gregor_broker::dispatch=trace")


def principals(broker: Broker) -> set[str]:
    """The principals of the requests the broker logged (needs the `traced` fixture)."""
    out = set()
    for line in broker.stderr_text().splitlines():
        if "principal=" in line:
            value = line.split("principal=", 1)[1]
            value = value[1:].split('"', 1)[0] if value.startswith('"') else value.split(" ", 1)[0]
            out.add(value)
    return out


def create_scram_user(bootstrap: str, user: str = SCRAM_USER, password: str = SCRAM_PASSWORD,
                      mechanism=ScramMechanism.SCRAM_SHA_512, iterations: int = 8192) -> None:
    """AlterUserScramCredentials through confluent-kafka's AdminClient, then Describe."""
    a = AdminClient({"bootstrap.servers": bootstrap})
    upsert = UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, iterations), password.encode())
    for fut in a.alter_user_scram_credentials([upsert]).values():
        fut.result(15)
    described = a.describe_user_scram_credentials([user])[user].result(15)
    infos = [(i.mechanism, i.iterations) for i in described.scram_credential_infos]
    assert (mechanism, iterations) in infos, infos


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(15)


def test_describe_user_scram_credentials_of_every_user(broker):
    create_scram_user(broker.bootstrap, "alice")
    create_scram_user(broker.bootstrap, "bob", mechanism=ScramMechanism.SCRAM_SHA_256, iterations=4096)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})  # kept alive while its future runs
    described = admin.describe_user_scram_credentials().result(15)
    assert sorted(described) == ["alice", "bob"], described


def test_scram_iterations_outside_kafkas_bounds_are_refused(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    for iterations in (4095, 16385):
        upsert = UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations),
                                              b"carol-secret")
        with pytest.raises(KafkaException) as e:
            a.alter_user_scram_credentials([upsert])["carol"].result(15)
        assert e.value.args[0].code() == 93, e.value  # UNACCEPTABLE_CREDENTIAL
    for iterations in (4096, 16384):
        create_scram_user(broker.bootstrap, "carol", "carol-secret", iterations=iterations)


# ---------------------------------------------------------------- raw SASL frames


def sasl_handshake(correlation_id: int, mechanism: str, version: int = 1) -> bytes:
    return frame(request_header(API_SASL_HANDSHAKE, version, correlation_id) + string(mechanism))


def parse_sasl_handshake(payload: bytes) -> tuple[int, list[str]]:
    _corr, error, n = struct.unpack_from(">ihi", payload, 0)
    pos, mechanisms = 10, []
    for _ in range(n):
        (size,) = struct.unpack_from(">h", payload, pos)
        mechanisms.append(payload[pos + 2:pos + 2 + size].decode())
        pos += 2 + size
    return error, mechanisms


def sasl_authenticate(correlation_id: int, token: bytes, version: int = 1) -> bytes:
    if version >= 2:
        body = uvarint(len(token) + 1) + token + uvarint(0)
        return frame(request_header(API_SASL_AUTHENTICATE, version, correlation_id, flexible=True) + body)
    return frame(request_header(API_SASL_AUTHENTICATE, version, correlation_id) + struct.pack(">i", len(token)) + token)


@dataclass
class AuthAnswer:
    error: int
    message: str | None
    token: bytes
    session_lifetime_ms: int | None


def parse_sasl_authenticate(payload: bytes, version: int = 1) -> AuthAnswer:
    pos = 4
    if version >= 2:
        _tags, pos = read_uvarint(payload, pos)
    (error,) = struct.unpack_from(">h", payload, pos)
    pos += 2
    if version >= 2:
        n, pos = read_uvarint(payload, pos)
        message = None if n == 0 else payload[pos:pos + n - 1].decode()
        pos += max(n - 1, 0)
        n, pos = read_uvarint(payload, pos)
        token = payload[pos:pos + n - 1]
        pos += n - 1
    else:
        (n,) = struct.unpack_from(">h", payload, pos)
        pos += 2
        message = None if n < 0 else payload[pos:pos + n].decode()
        pos += max(n, 0)
        (n,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        token = payload[pos:pos + n]
        pos += n
    lifetime = struct.unpack_from(">q", payload, pos)[0] if version >= 1 else None
    return AuthAnswer(error, message, token, lifetime)


def metadata_v1(correlation_id: int) -> bytes:
    """Metadata v1 for every topic (a null topic array)."""
    return frame(request_header(API_METADATA, 1, correlation_id) + struct.pack(">i", -1))


def plain_token(user: str, password: str) -> bytes:
    return b"\0" + user.encode() + b"\0" + password.encode()


class TlsConnection(RawConnection):
    """RawConnection over TLS; `client_cert` presents alice's certificate."""

    def __init__(self, addr: str, pki: Pki, client_cert: bool = True, timeout: float = 10.0):
        host, port = addr.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
        if client_cert:
            ctx.load_cert_chain(str(pki.client_crt), str(pki.client_key))
        raw = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.sock.settimeout(timeout)

    def wait_closed(self, timeout: float = 10.0) -> bool:
        try:
            return super().wait_closed(timeout)
        except ssl.SSLError:  # an EOF without close_notify
            return True


def connect(sec: Secured, listener: str, pki: Pki, timeout: float = 10.0) -> RawConnection:
    if listener in ("SSL", "SASL_SSL"):
        return TlsConnection(sec.addr(listener), pki, client_cert=listener == "SSL", timeout=timeout)
    return RawConnection(sec.addr(listener), timeout=timeout)


def authenticate_plain(conn: RawConnection, user: str, password: str, version: int = 1) -> AuthAnswer:
    error, mechanisms = parse_sasl_handshake(conn.request(sasl_handshake(1, "PLAIN")))
    assert error == 0, (error, mechanisms)
    return parse_sasl_authenticate(conn.request(sasl_authenticate(2, plain_token(user, password), version)), version)


def assert_serves_every_listener(sec: Secured, pki: Pki) -> None:
    """A normal client on each listener: ApiVersions and Metadata, after PLAIN on SASL."""
    for listener in sec.ports:
        with connect(sec, listener, pki, timeout=5) as conn:
            versions = parse_api_versions(conn.request(api_versions_request(3, 7)), 3)
            assert versions.error_code == 0 and API_METADATA in versions.apis, (listener, versions)
            if "SASL" in listener:
                answer = authenticate_plain(conn, "alice", PLAIN_USERS["alice"])
                assert answer.error == 0, (listener, answer)
            reply = conn.request(metadata_v1(8))
            assert struct.unpack_from(">i", reply, 0)[0] == 8, listener


# ---------------------------------------------------------------- confluent-kafka


def confluent_conf(sec: Secured, pki: Pki, listener: str) -> dict:
    conf = {"bootstrap.servers": sec.addr(listener), "security.protocol": listener,
            "ssl.ca.location": str(pki.ca_pem), "socket.connection.setup.timeout.ms": 5000}
    if listener == "SSL":
        conf.update({"ssl.certificate.location": str(pki.client_crt), "ssl.key.location": str(pki.client_key)})
    else:
        conf.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": SCRAM_USER, "sasl.password": SCRAM_PASSWORD})
    return conf


def confluent_round_trip(conf: dict, topic: str, group: str, n: int = 20) -> None:
    """Create a topic, list it, produce n records, read them back in a group, commit."""
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(15)
    assert topic in admin.list_topics(timeout=10).topics
    errors = []
    p = Producer(conf)
    for i in range(n):
        p.produce(topic, key=f"k{i % 4}".encode(), value=f"v{i}".encode(),
                  on_delivery=lambda err, _msg: errors.append(err) if err else None)
    assert p.flush(15) == 0 and not errors, errors
    c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        seen = []
        deadline = time.monotonic() + 25
        while len(seen) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            seen.append(m.value().decode())
        assert sorted(seen) == sorted(f"v{i}" for i in range(n)), seen
        committed = c.commit(asynchronous=False)
        assert all(tp.error is None for tp in committed), committed
    finally:
        c.close()


def test_confluent_kafka_over_sasl_ssl_scram_and_ssl_client_certificate(traced, secured, pki):
    create_scram_user(secured.plaintext)
    confluent_round_trip(confluent_conf(secured, pki, "SASL_SSL"), "ck-scram", "ck-scram-group")
    confluent_round_trip(confluent_conf(secured, pki, "SSL"), "ck-ssl", "ck-ssl-group")
    seen = principals(secured.broker)
    assert f"User:{SCRAM_USER}" in seen and f"User:{ALICE_DN}" in seen, seen

    # SCRAM-SHA-256 was not set for alice: a client asking for it fails to authenticate.
    bad = {**confluent_conf(secured, pki, "SASL_SSL"), "sasl.mechanism": "SCRAM-SHA-256"}
    with pytest.raises(KafkaException) as e:
        AdminClient(bad).list_topics(timeout=5)
    assert "Authentication" in str(e.value) or "_TRANSPORT" in str(e.value) or "timed out" in str(e.value), e.value


def test_ssl_client_auth_required_refuses_a_client_without_a_certificate(secured, pki):
    with pytest.raises((ssl.SSLError, ConnectionError, Closed, OSError)):
        with TlsConnection(secured.addr("SSL"), pki, client_cert=False, timeout=5) as conn:
            # TLS 1.3: the server's refusal of the missing certificate arrives after the
            # client's side of the handshake is done, at the first read.
            conn.request(api_versions_request(3, 1))
    # SASL_SSL does not ask for client certificates (ssl.client.auth unset = none).
    with TlsConnection(secured.addr("SASL_SSL"), pki, client_cert=False, timeout=5) as conn:
        assert parse_api_versions(conn.request(api_versions_request(3, 1)), 3).error_code == 0


# ---------------------------------------------------------------- kafka-python


def kafka_python_conf(sec: Secured, pki: Pki, listener: str, ssl_context: ssl.SSLContext | None = None) -> dict:
    conf = dict(bootstrap_servers=sec.addr(listener), security_protocol=listener, request_timeout_ms=15000)
    if ssl_context is not None:
        conf["ssl_context"] = ssl_context
    else:
        conf["ssl_cafile"] = str(pki.ca_pem)
        if listener == "SSL":
            conf.update(ssl_certfile=str(pki.client_crt), ssl_keyfile=str(pki.client_key))
    if listener.startswith("SASL"):
        conf.update(sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=SCRAM_USER, sasl_plain_password=SCRAM_PASSWORD)
    return conf


def kafka_python_round_trip(conf: dict, topic: str, group: str, n: int = 20) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic as KpNewTopic

    admin = KafkaAdminClient(**conf)
    try:
        admin.create_topics([KpNewTopic(topic, 2, 1)])
        assert topic in admin.list_topics()
    finally:
        admin.close()
    producer = KafkaProducer(**conf)
    try:
        futures = [producer.send(topic, key=f"k{i % 4}".encode(), value=f"v{i}".encode()) for i in range(n)]
        producer.flush(15)
        assert all(f.get(5).offset >= 0 for f in futures)
    finally:
        producer.close(5)
    consumer = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20000, **conf)
    try:
        seen = []
        for m in consumer:
            seen.append(m.value.decode())
            if len(seen) == n:
                break
        assert sorted(seen) == sorted(f"v{i}" for i in range(n)), seen
        consumer.commit()
    finally:
        consumer.close()


def tls12_context(pki: Pki, client_cert: bool) -> ssl.SSLContext:
    ctx = tls_context(pki, client_cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls_context(pki: Pki, client_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    if client_cert:
        ctx.load_cert_chain(str(pki.client_crt), str(pki.client_key))
    return ctx


def test_kafka_python_over_sasl_ssl_scram_and_ssl_client_certificate(traced, secured, pki):
    create_scram_user(secured.plaintext)
    kafka_python_round_trip(kafka_python_conf(secured, pki, "SASL_SSL"), "kp-scram", "kp-scram-group")
    # Over SSL with TLS 1.3: the broker sends no session tickets, which kafka-python would
    # take for a response and drop the connection over ("Socket EVENT_READ without
    # in-flight-requests", dpkp/kafka-python#2369).
    kafka_python_round_trip(kafka_python_conf(secured, pki, "SSL", tls_context(pki, client_cert=True)),
                            "kp-ssl", "kp-ssl-group")
    seen = principals(secured.broker)
    assert f"User:{SCRAM_USER}" in seen and f"User:{ALICE_DN}" in seen, seen


# ---------------------------------------------------------------- aiokafka


def test_aiokafka_over_sasl_ssl_scram_and_ssl_client_certificate(traced, secured, pki):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin import NewTopic as AioNewTopic
    from aiokafka.helpers import create_ssl_context

    create_scram_user(secured.plaintext)

    def conf(listener: str) -> dict:
        if listener == "SSL":
            ctx = create_ssl_context(cafile=str(pki.ca_pem), certfile=str(pki.client_crt),
                                     keyfile=str(pki.client_key))
            return dict(bootstrap_servers=secured.addr(listener), security_protocol="SSL", ssl_context=ctx)
        return dict(bootstrap_servers=secured.addr(listener), security_protocol="SASL_SSL",
                    ssl_context=create_ssl_context(cafile=str(pki.ca_pem)), sasl_mechanism="SCRAM-SHA-512",
                    sasl_plain_username=SCRAM_USER, sasl_plain_password=SCRAM_PASSWORD)

    async def round_trip(listener: str, topic: str, n: int = 20) -> None:
        admin = AIOKafkaAdminClient(**conf(listener), request_timeout_ms=15000)
        await admin.start()
        try:
            await admin.create_topics([AioNewTopic(topic, 2, 1)])
            assert topic in await admin.list_topics()
        finally:
            await admin.close()
        producer = AIOKafkaProducer(**conf(listener))
        await producer.start()
        try:
            for i in range(n):
                await producer.send_and_wait(topic, key=f"k{i % 4}".encode(), value=f"v{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, group_id=f"{topic}-group", auto_offset_reset="earliest",
                                    enable_auto_commit=False, **conf(listener))
        await consumer.start()
        try:
            seen = []
            deadline = time.monotonic() + 25
            while len(seen) < n and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                seen += [m.value.decode() for msgs in batch.values() for m in msgs]
            assert sorted(seen) == sorted(f"v{i}" for i in range(n)), seen
            await consumer.commit()
        finally:
            await consumer.stop()

    asyncio.run(asyncio.wait_for(round_trip("SASL_SSL", "aio-scram"), 35))
    asyncio.run(asyncio.wait_for(round_trip("SSL", "aio-ssl"), 35))
    seen = principals(secured.broker)
    assert f"User:{SCRAM_USER}" in seen and f"User:{ALICE_DN}" in seen, seen


# ---------------------------------------------------------------- kafkajs


@pytest.fixture
def kafkajs_installed() -> None:
    if shutil.which(NODE) is None:
        unavailable(f"{NODE} is not installed (kafkajs needs node)")
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs" / "package.json").exists():
        unavailable(f"kafkajs is not installed in {KAFKAJS_DIR}/node_modules: run `compat/smoke/run --prepare-only` "
                    "(or `compat/smoke/run --client kafkajs`)")


def test_kafkajs_over_sasl_ssl_scram(kafkajs_installed, traced, secured, pki, tmp_path):
    create_scram_user(secured.plaintext)
    env = dict(os.environ, NODE_PATH=str(KAFKAJS_DIR / "node_modules"))
    cmd = [NODE, str(KAFKAJS_SCRIPT), "--bootstrap", secured.addr("SASL_SSL"), "--ca", str(pki.ca_pem),
           "--mechanism", "scram-sha-512", "--username", SCRAM_USER, "--password", SCRAM_PASSWORD,
           "--topic", "js-scram", "--group", "js-scram-group", "--count", "20", "--deadline", "25"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=40)
    (tmp_path / "kafkajs.log").write_text(r.stderr)
    result = next((json.loads(line[len("RESULT "):]) for line in r.stdout.splitlines() if line.startswith("RESULT ")),
                  None)
    tail = "\n".join(r.stderr.splitlines()[-30:])
    assert result is not None, f"kafkajs failed (exit {r.returncode}): {r.stdout[-500:]}\n{tail}"
    assert result["created"] is True and "js-scram" in result["topics"], result
    assert sorted(result["records"]) == sorted(f"v{i}" for i in range(20)), result["records"]
    assert sum(result["committed"].values()) == 20, result["committed"]
    # A wrong password fails kafkajs' connect with SASL_AUTHENTICATION_FAILED.
    bad = [*cmd[:cmd.index("--password") + 1], "wrong", "--check-auth-only", "1"]
    r = subprocess.run(bad, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=40)
    assert "AUTH_FAILED SASL_AUTHENTICATION_FAILED" in r.stdout, r.stdout + r.stderr[-2000:]
    assert f"User:{SCRAM_USER}" in principals(secured.broker)


# ---------------------------------------------------------------- kcat


def test_kcat_with_sasl_plain_over_sasl_plaintext(secured):
    if shutil.which(KCAT) is None:
        unavailable(f"{KCAT} is not installed: `apt-get install kcat`")
    create_topic(secured.plaintext, "kcat-plain")

    def kcat(*args: str, password: str = PLAIN_USERS["admin"], stdin: str | None = None,
             quiet: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([KCAT, "-b", secured.addr("SASL_PLAINTEXT"), "-X", "security.protocol=SASL_PLAINTEXT",
                               "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=admin", "-X",
                               f"sasl.password={password}", *(["-q"] if quiet else []), *args],
                              input=stdin, capture_output=True, text=True, timeout=30)

    r = kcat("-m", "10", "-P", "-t", "kcat-plain", "-K", ":", stdin="".join(f"k{i}:v{i}\n" for i in range(10)))
    assert r.returncode == 0, r.stderr
    r = kcat("-m", "10", "-G", "kcat-group", "kcat-plain", "-o", "beginning", "-c", "10", "-f", r"%k=%s\n")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted(f"k{i}=v{i}" for i in range(10)), r.stdout
    r = kcat("-m", "10", "-L", "-J")
    assert r.returncode == 0, r.stderr
    assert "kcat-plain" in {t["topic"] for t in json.loads(r.stdout)["topics"]}
    r = kcat("-L", "-m", "3", password="wrong", quiet=False)
    assert r.returncode != 0 and "Authentication failed" in r.stderr, r.stderr


def test_kcat_with_scram_sha_512_over_sasl_ssl(secured, pki):
    if shutil.which(KCAT) is None:
        unavailable(f"{KCAT} is not installed: `apt-get install kcat`")
    create_scram_user(secured.plaintext)
    r = subprocess.run([KCAT, "-b", secured.addr("SASL_SSL"), "-X", "security.protocol=SASL_SSL", "-X",
                        "sasl.mechanisms=SCRAM-SHA-512", "-X", f"sasl.username={SCRAM_USER}", "-X",
                        f"sasl.password={SCRAM_PASSWORD}", "-X", f"ssl.ca.location={pki.ca_pem}", "-m", "5", "-L"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr[-1500:]


# ---------------------------------------------------------------- PLAIN users


def test_plain_users_from_jaas_and_from_the_users_file(broker_factory, pki, tmp_path):
    users_file = tmp_path / "plain-users"
    users_file.write_text("# name:sha256:<hex of sha256(password)>\n"
                          f"bob:sha256:{hashlib.sha256(b'bob-secret').hexdigest()}\n"
                          f"carol:sha256:{hashlib.sha256(b'carol-secret').hexdigest()}\n")
    jaas = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";'
    sec = start_secured(broker_factory, pki, listeners=("PLAINTEXT", "SASL_PLAINTEXT"), sets={
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "sasl.plain.users.file": str(users_file),
        "connection.failed.authentication.delay.ms": "0",
    })
    for user, password, ok in [("alice", "alice-secret", True), ("bob", "bob-secret", True),
                               ("carol", "carol-secret", True), ("alice", "bob-secret", False),
                               ("bob", "alice-secret", False), ("dave", "dave-secret", False),
                               ("bob", f"sha256:{hashlib.sha256(b'bob-secret').hexdigest()}", False)]:
        with connect(sec, "SASL_PLAINTEXT", pki) as conn:
            answer = authenticate_plain(conn, user, password, version=2)
            if ok:
                assert answer.error == 0, (user, answer)
                assert struct.unpack_from(">i", conn.request(metadata_v1(3)), 0)[0] == 3
            else:
                assert (answer.error, answer.message) == (SASL_AUTHENTICATION_FAILED, PLAIN_FAILED), (user, answer)
                assert conn.wait_closed(5), f"{user}: the connection stays open after a failed authentication"
    # A real client with a user of the file.
    p = Producer({"bootstrap.servers": sec.addr("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "PLAIN", "sasl.username": "bob", "sasl.password": "bob-secret"})
    errors = []
    p.produce("plain-file-users", b"hello", on_delivery=lambda err, _m: errors.append(err) if err else None)
    assert p.flush(15) == 0 and not errors, errors


# ---------------------------------------------------------------- hostile input

MAX_TOKEN = 1024


@pytest.fixture
def hostile(broker_factory, pki) -> Secured:
    return start_secured(broker_factory, pki, sets={"sasl.server.max.receive.size": str(MAX_TOKEN)})


@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_a_wrong_password_answers_kafkas_error_and_closes_after_the_delay(hostile, pki, listener):
    with connect(hostile, listener, pki) as conn:
        started = time.monotonic()
        answer = authenticate_plain(conn, "alice", "not-the-password", version=2)
        assert (answer.error, answer.message) == (SASL_AUTHENTICATION_FAILED, PLAIN_FAILED), answer
        assert conn.wait_closed(FAIL_DELAY_MS / 1000 + 5), "the connection stays open after a failed authentication"
        elapsed = time.monotonic() - started
        assert elapsed >= FAIL_DELAY_MS / 1000 * 0.8, f"closed after {elapsed:.3f}s, before the failure delay"
    assert_serves_every_listener(hostile, pki)


# Kafka's SaslServerAuthenticator answers a SaslException of the mechanism (ScramSaslServer's
# "Invalid client credentials") with this sentence only, naming nothing but the phase.
SCRAM_FAILED = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"


@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_a_wrong_scram_password_answers_kafkas_error_and_closes(hostile, pki, listener):
    """SCRAM with a wrong password: the client-final proof fails."""
    from kafka.sasl.scram import ScramClient

    create_scram_user(hostile.plaintext)
    with connect(hostile, listener, pki) as conn:
        error, _ = parse_sasl_handshake(conn.request(sasl_handshake(1, "SCRAM-SHA-512")))
        assert error == 0
        scram = ScramClient(SCRAM_USER, "not-the-password", "SCRAM-SHA-512")
        first = parse_sasl_authenticate(conn.request(sasl_authenticate(2, scram.first_message(), 1)))
        assert first.error == 0, first
        scram.process_server_first_message(first.token)
        final = parse_sasl_authenticate(conn.request(sasl_authenticate(3, scram.final_message(), 1)))
        assert final.error == SASL_AUTHENTICATION_FAILED, final
        assert conn.wait_closed(FAIL_DELAY_MS / 1000 + 5)
        assert final.message == SCRAM_FAILED, final


def test_an_unknown_mechanism_answers_the_enabled_ones_and_closes(hostile, pki):
    for mechanism in ("GSSAPI", "OAUTHBEARER", "NOT-A-MECHANISM"):
        with connect(hostile, "SASL_PLAINTEXT", pki) as conn:
            error, mechanisms = parse_sasl_handshake(conn.request(sasl_handshake(1, mechanism)))
            assert error == UNSUPPORTED_SASL_MECHANISM, (mechanism, error)
            assert mechanisms == ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"], mechanisms
            assert conn.wait_closed(5), mechanism
    assert_serves_every_listener(hostile, pki)


@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_a_request_before_authentication_closes_without_an_answer(hostile, pki, listener):
    with connect(hostile, listener, pki) as conn:
        conn.send(metadata_v1(1))
        with pytest.raises((Closed, ConnectionError, ssl.SSLError)):
            conn.read_frame()
    # Also after a handshake, before the token.
    with connect(hostile, listener, pki) as conn:
        assert parse_sasl_handshake(conn.request(sasl_handshake(1, "PLAIN")))[0] == 0
        conn.send(metadata_v1(2))
        with pytest.raises((Closed, ConnectionError, ssl.SSLError)):
            reply = conn.read_frame()
            # A v1 handshake means SaslAuthenticate frames: a Metadata frame is not a token.
            pytest.fail(f"answered a Metadata request before authentication: {reply[:32]!r}")
    assert_serves_every_listener(hostile, pki)


def test_sasl_authenticate_before_the_handshake_is_an_illegal_state(hostile, pki):
    with connect(hostile, "SASL_PLAINTEXT", pki) as conn:
        answer = parse_sasl_authenticate(conn.request(sasl_authenticate(1, plain_token("alice", "alice-secret"), 1)))
        assert answer.error == ILLEGAL_SASL_STATE, answer
        assert conn.wait_closed(FAIL_DELAY_MS / 1000 + 5)
    # A second handshake on a connection whose handshake is done is one too.
    with connect(hostile, "SASL_PLAINTEXT", pki) as conn:
        assert parse_sasl_handshake(conn.request(sasl_handshake(1, "PLAIN")))[0] == 0
        error, _ = parse_sasl_handshake(conn.request(sasl_handshake(2, "PLAIN")))
        assert error == ILLEGAL_SASL_STATE
        assert conn.wait_closed(5)
    # On a listener without SASL the requests are answered, with ILLEGAL_SASL_STATE.
    with RawConnection(hostile.plaintext) as conn:
        error, _ = parse_sasl_handshake(conn.request(sasl_handshake(1, "PLAIN")))
        assert error == ILLEGAL_SASL_STATE
    assert_serves_every_listener(hostile, pki)


def test_an_oversized_sasl_token_closes_the_connection(hostile, pki):
    for version in (1, 2):
        with connect(hostile, "SASL_PLAINTEXT", pki) as conn:
            assert parse_sasl_handshake(conn.request(sasl_handshake(1, "PLAIN")))[0] == 0
            token = plain_token("alice", "alice-secret" + "x" * (4 * MAX_TOKEN))
            conn.send(sasl_authenticate(2, token, version))
            try:
                answer = parse_sasl_authenticate(conn.read_frame(), version)
                assert answer.error != 0, f"a {len(token)}-byte token was accepted: {answer}"
            except (Closed, ConnectionError):
                pass
            assert conn.wait_closed(FAIL_DELAY_MS / 1000 + 5)
    assert_serves_every_listener(hostile, pki)


def test_an_oversized_frame_before_authentication_closes_at_once(hostile, pki):
    """Kafka reads at most sasl.server.max.receive.size before a client authenticated: a
    frame header announcing more closes the connection without waiting for the bytes."""
    with connect(hostile, "SASL_PLAINTEXT", pki) as conn:
        conn.send(struct.pack(">i", 64 * MAX_TOKEN) + request_header(API_SASL_HANDSHAKE, 1, 1))
        assert conn.wait_closed(3), "the broker waits for a frame larger than sasl.server.max.receive.size"
    assert_serves_every_listener(hostile, pki)


def _client_hello(pki: Pki) -> bytes:
    """The first bytes a TLS client sends (a real ClientHello, taken from Python's ssl)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_tls_to_the_plaintext_port_and_plaintext_to_the_tls_ports(hostile, pki):
    hello = _client_hello(pki)
    assert hello[0] == 0x16
    with RawConnection(hostile.plaintext, timeout=5) as conn:
        conn.send(hello)
        assert conn.wait_closed(5), "a TLS ClientHello on the PLAINTEXT port left the connection open"
    # And a real TLS client against the PLAINTEXT port fails its handshake quickly.
    started = time.monotonic()
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        TlsConnection(hostile.plaintext.replace("127.0.0.1", "localhost"), pki, timeout=5)
    assert time.monotonic() - started < 5
    for listener in ("SSL", "SASL_SSL"):
        with RawConnection(hostile.addr(listener), timeout=5) as conn:
            conn.send(api_versions_request(3, 1))
            assert conn.wait_closed(5), f"plaintext Kafka bytes on the {listener} port left the connection open"
        # Half a ClientHello and silence: the handshake timeout frees the slot later; the
        # listener serves others meanwhile.
        stalled = RawConnection(hostile.addr(listener), timeout=5)
        stalled.send(hello[:20])
        try:
            assert_serves_every_listener(hostile, pki)
        finally:
            stalled.close()
    assert_serves_every_listener(hostile, pki)


# ---------------------------------------------------------------- re-authentication (KIP-368)

REAUTH_MS = 3000


def test_session_lifetime_and_expired_sessions_are_closed(broker_factory, pki):
    sec = start_secured(broker_factory, pki, listeners=("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"),
                        sets={"connections.max.reauth.ms": str(REAUTH_MS)})
    for listener in ("SASL_PLAINTEXT", "SASL_SSL"):
        with connect(sec, listener, pki) as conn:
            answer = authenticate_plain(conn, "alice", PLAIN_USERS["alice"], version=1)
            assert answer.error == 0, answer
            assert 0 < answer.session_lifetime_ms <= REAUTH_MS, answer
            assert struct.unpack_from(">i", conn.request(metadata_v1(3)), 0)[0] == 3
            # Re-authenticating on the same connection (as the same user) renews the session.
            again = authenticate_plain(conn, "alice", PLAIN_USERS["alice"], version=2)
            assert again.error == 0 and 0 < again.session_lifetime_ms <= REAUTH_MS, again
        with connect(sec, listener, pki) as conn:
            assert authenticate_plain(conn, "alice", PLAIN_USERS["alice"], version=1).error == 0
            time.sleep(REAUTH_MS / 1000 + 0.5)
            conn.send(metadata_v1(4))
            with pytest.raises((Closed, ConnectionError, ssl.SSLError)):
                conn.read_frame()
    # SaslAuthenticate v0 has no lifetime field: the session still expires.
    with connect(sec, "SASL_PLAINTEXT", pki) as conn:
        assert authenticate_plain(conn, "alice", PLAIN_USERS["alice"], version=0).error == 0
        time.sleep(REAUTH_MS / 1000 + 0.5)
        conn.send(metadata_v1(5))
        with pytest.raises((Closed, ConnectionError)):
            conn.read_frame()


def test_librdkafka_reauthenticates_while_producing(broker_factory, pki):
    sec = start_secured(broker_factory, pki, listeners=("PLAINTEXT", "SASL_SSL"),
                        sets={"connections.max.reauth.ms": str(REAUTH_MS)})
    create_scram_user(sec.plaintext)
    create_topic(sec.plaintext, "reauth")
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger = logging.getLogger(f"librdkafka-reauth-{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Capture())
    errors: list = []
    conf = {**confluent_conf(sec, pki, "SASL_SSL"), "debug": "security", "error_cb": errors.append,
            "linger.ms": 0}
    p = Producer(conf, logger=logger)
    delivered = []
    deadline = time.monotonic() + 8
    i = 0
    while time.monotonic() < deadline:
        p.produce("reauth", f"v{i}".encode(),
                  on_delivery=lambda err, msg: (errors.append(err) if err else delivered.append(msg.offset())))
        i += 1
        p.poll(0.1)
    assert p.flush(15) == 0
    assert not errors, errors
    assert len(delivered) == i, f"{len(delivered)} of {i} delivered"
    reauths = [line for line in lines if "reauth" in line.lower()]
    assert len(reauths) >= 2, "librdkafka did not re-authenticate:\n" + "\n".join(lines[-40:])


def test_reauthentication_cannot_change_the_principal(broker_factory, pki):
    sec = start_secured(broker_factory, pki, listeners=("PLAINTEXT", "SASL_PLAINTEXT"),
                        sets={"connections.max.reauth.ms": str(REAUTH_MS)})
    with connect(sec, "SASL_PLAINTEXT", pki) as conn:
        assert authenticate_plain(conn, "alice", PLAIN_USERS["alice"], version=2).error == 0
        other = authenticate_plain(conn, "admin", PLAIN_USERS["admin"], version=2)
        assert (other.error, other.message) == (
            SASL_AUTHENTICATION_FAILED, "Cannot change principals during re-authentication from User.alice: User.admin"
        ), other
        assert conn.wait_closed(FAIL_DELAY_MS / 1000 + 5)


# ---------------------------------------------------------------- certificate reload


def peer_certificate(addr: str, pki: Pki) -> x509.Certificate:
    with TlsConnection(addr, pki, client_cert=True, timeout=5) as conn:
        return x509.load_der_x509_certificate(conn.sock.getpeercert(binary_form=True))


def test_a_renewed_certificate_is_served_without_a_restart(broker_factory, pki, tmp_path):
    keystore = tmp_path / "server.pem"
    keystore.write_bytes(pki.server_keystore("localhost", serial=1001)[0])
    sec = start_secured(broker_factory, pki, listeners=("PLAINTEXT", "SSL", "SASL_SSL"),
                        sets={"ssl.keystore.location": str(keystore),
                              "listener.name.sasl_ssl.ssl.enabled.protocols": "TLSv1.3"})
    pid = sec.broker.pid
    # ssl.enabled.protocols per listener: TLS 1.2 is served on SSL, refused on SASL_SSL.
    for listener, served in (("SSL", True), ("SASL_SSL", False)):
        raw = socket.create_connection(("localhost", sec.ports[listener]), timeout=5)
        try:
            tls = tls12_context(pki, client_cert=True).wrap_socket(raw, server_hostname="localhost")
            assert served and tls.version() == "TLSv1.2", f"{listener} served {tls.version()}"
            tls.close()
        except ssl.SSLError as e:
            assert not served, f"{listener} refused TLS 1.2: {e}"
        finally:
            raw.close()
    for listener in ("SSL", "SASL_SSL"):
        assert peer_certificate(sec.addr(listener), pki).serial_number == 1001

    # A broken file (half written) is not served: the previous certificate stays.
    keystore.write_bytes(b"-----BEGIN PRIVATE KEY-----\ntruncated\n")
    time.sleep(5.5)
    for listener in ("SSL", "SASL_SSL"):
        assert peer_certificate(sec.addr(listener), pki).serial_number == 1001

    pem, renewed = pki.server_keystore("broker-renewed", serial=2002)
    keystore.write_bytes(pem)
    deadline = time.monotonic() + 12
    served = {}
    while time.monotonic() < deadline:
        served = {listener: peer_certificate(sec.addr(listener), pki) for listener in ("SSL", "SASL_SSL")}
        if all(c.serial_number == 2002 for c in served.values()):
            break
        time.sleep(0.5)
    assert {k: c.serial_number for k, c in served.items()} == {"SSL": 2002, "SASL_SSL": 2002}
    assert all(c.fingerprint(hashes.SHA256()) == renewed.fingerprint(hashes.SHA256()) for c in served.values())
    assert sec.broker.running and sec.broker.pid == pid
    assert_serves_every_listener(sec, pki)


# ---------------------------------------------------------------- refusals at start


@pytest.mark.parametrize("key,value", [("listener.name.ssl.ssl.keystore.type", "JKS"),
                                       ("ssl.keystore.type", "PKCS12")])
def test_a_keystore_type_other_than_pem_refuses_the_start(broker_factory, pki, key, value):
    port = free_ports(2)
    b = broker_factory("refused")
    cmd = [str(broker_binary()), "serve", "--listen", f"PLAINTEXT://127.0.0.1:{port[0]},SSL://localhost:{port[1]}",
           "--data-dir", str(b.data_dir), "--http-listen", "none", "--set", f"ssl.keystore.location={pki.server_pem}",
           "--set", f"{key}={value}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    errors = [line for line in r.stderr.splitlines() if line.strip() and " WARN " not in line and " INFO " not in line]
    assert len(errors) == 1 and "ssl.keystore.type" in errors[0] and value in errors[0], r.stderr
    assert r.stdout == ""
