"""Fail closed through dynamic configs: security keys set at run time are refused.

Contract: IncrementalAlterConfigs and AlterConfigs on a broker resource that set a key
Gregor cannot honour at run time (TLS, SASL and authorizer settings, which it reads only
at start) answer INVALID_CONFIG with the reason naming the key, store
nothing of that request (not even its valid keys), and the broker still has its old
configuration after a restart. (The refusals at start are tested over
TCP in crates/cli/tests/fail_closed.rs.)
"""
from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

INVALID_CONFIG = 40


def broker_configs(admin: AdminClient) -> dict:
    resource = ConfigResource(ResourceType.BROKER, "0")
    return admin.describe_configs([resource])[resource].result(15)


def assert_invalid_config(future, key: str, reason: str) -> None:
    try:
        future.result(15)
    except KafkaException as e:
        error = e.args[0]
        assert error.code() == INVALID_CONFIG, error
        assert key in error.str() and reason in error.str(), error.str()
        return
    raise AssertionError(f"setting {key} was accepted")


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def test_security_keys_are_refused_dynamically_and_nothing_is_stored(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    initial = broker_configs(admin)
    before = initial["log.retention.ms"].value
    watched = ("ssl.keystore.location", "sasl.enabled.mechanisms", "super.users", "authorizer.class.name")
    initial_values = {k: initial[k].value if k in initial else None for k in watched}

    for key, value, reason in [
        ("ssl.keystore.location", "/etc/kafka/broker.pem", "cannot be updated dynamically"),
        ("sasl.enabled.mechanisms", "PLAIN", "cannot be updated dynamically"),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", "PlainLoginModule required;", "unknown broker config"),
        ("super.users", "User:admin", "cannot be updated dynamically"),
    ]:
        # Together with a valid change: the request is refused as a whole.
        resource = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
            ConfigEntry("log.retention.ms", "1234", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET),
        ])
        assert_invalid_config(admin.incremental_alter_configs([resource])[resource], key, reason)

    # The legacy AlterConfigs (which replaces the resource's whole dynamic set).
    legacy = ConfigResource(ResourceType.BROKER, "0", set_config={
        "log.retention.ms": "1234", "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"})
    assert_invalid_config(admin.alter_configs([legacy])[legacy], "authorizer.class.name", "cannot be updated dynamically")

    for configs in (broker_configs(admin), None):
        if configs is None:
            broker.restart()
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            configs = broker_configs(admin)
        assert configs["log.retention.ms"].value == before
        for key in watched:
            assert (configs[key].value if key in configs else None) == initial_values[key], configs[key]
