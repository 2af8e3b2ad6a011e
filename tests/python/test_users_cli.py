"""`gregor users` and `--command-config`: SCRAM users created with Gregor's CLI log in
with real clients, and the CLI itself talks to a SASL listener the way Kafka's tools do
(a client properties file with security.protocol, sasl.mechanism, sasl.jaas.config).

Contract: `users create` (password from a flag or stdin) makes a credential that
confluent-kafka and kafka-python log in with over SASL_PLAINTEXT (SCRAM-SHA-512 and
SCRAM-SHA-256); `users list` shows users, mechanisms and iterations (table and JSON);
a wrong password in --command-config fails with SASL_AUTHENTICATION_FAILED and exit 1;
`users delete` removes the credential and the user can no longer log in.
"""
from __future__ import annotations

import json
import subprocess
import time

from confluent_kafka import Producer
from kafka import KafkaProducer

from test_cluster import free_ports


def gregor(broker, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(broker.binary), *args], input=stdin, capture_output=True, text=True, timeout=60)


def start_with_sasl(broker_factory):
    plain, sasl = free_ports(2)
    b = broker_factory()
    b.start(port=plain, extra_args=[
        "--listen", f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "--set", "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256",
        "--http-listen", "none",
    ])
    return b, f"127.0.0.1:{plain}", f"127.0.0.1:{sasl}"


def scram_producer_works(bootstrap: str, mechanism: str, user: str, password: str) -> bool:
    p = Producer({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                  "sasl.username": user, "sasl.password": password, "message.timeout.ms": 5000, "log_level": 0})
    delivered = []
    p.produce("users-cli", b"hello", on_delivery=lambda err, msg: delivered.append(err is None))
    p.flush(8)
    return delivered == [True]


def test_users_create_list_delete_and_command_config(broker_factory, tmp_path):
    b, plain, sasl = start_with_sasl(broker_factory)
    made = gregor(b, "users", "create", "--bootstrap-server", plain, "--user", "alice", "--password", "alice-secret")
    assert made.returncode == 0, made.stderr
    made = gregor(b, "users", "create", "--bootstrap-server", plain, "--user", "bob", "--mechanism", "SCRAM-SHA-256",
                  "--iterations", "4096", "--password-stdin", stdin="bob-secret\n")
    assert made.returncode == 0, made.stderr

    listed = gregor(b, "users", "list", "--bootstrap-server", plain, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    users = {u["user"]: u["credentials"] for u in json.loads(listed.stdout)}
    assert users == {"alice": [{"mechanism": "SCRAM-SHA-512", "iterations": 8192}],
                     "bob": [{"mechanism": "SCRAM-SHA-256", "iterations": 4096}]}

    assert scram_producer_works(sasl, "SCRAM-SHA-512", "alice", "alice-secret")
    kp = KafkaProducer(bootstrap_servers=sasl, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                       sasl_plain_username="bob", sasl_plain_password="bob-secret")
    kp.send("users-cli", b"from kafka-python").get(timeout=15)
    kp.close()

    # The CLI on the SASL listener, configured as Kafka's tools are.
    config = tmp_path / "alice.properties"
    config.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
                      'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required '
                      'username="alice" password="alice-secret";\n')
    topics = gregor(b, "topics", "list", "--bootstrap-server", sasl, "--command-config", str(config))
    assert topics.returncode == 0 and "users-cli" in topics.stdout, topics.stderr
    config.write_text(config.read_text().replace("alice-secret", "wrong"))
    refused = gregor(b, "topics", "list", "--bootstrap-server", sasl, "--command-config", str(config))
    assert refused.returncode == 1 and "SASL_AUTHENTICATION_FAILED" in refused.stderr, refused.stderr

    gone = gregor(b, "users", "delete", "--bootstrap-server", plain, "--user", "alice")
    assert gone.returncode == 0, gone.stderr
    missing = gregor(b, "users", "list", "--bootstrap-server", plain, "--user", "alice")
    assert missing.returncode == 1 and "RESOURCE_NOT_FOUND" in missing.stderr, missing.stderr
    time.sleep(0.2)
    assert not scram_producer_works(sasl, "SCRAM-SHA-512", "alice", "alice-secret")
