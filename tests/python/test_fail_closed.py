"""Fail closed through dynamic configs: security keys set at run time are refused.

Contract: IncrementalAlterConfigs and AlterConfigs on a broker resource that set a key
Gregor cannot honour yet (TLS, SASL, an authorizer) answer INVALID_CONFIG with the reason
naming the key, store nothing of that request (not even its valid keys), and the broker
still has its old configuration after a restart. (The refusals at start are tested over
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


def assert_invalid_config(future, key: str) -> None:
    try:
        future.result(15)
    except KafkaException as e:
        error = e.args[0]
        assert error.code() == INVALID_CONFIG, error
        assert key in error.str() and "does not support" in error.str(), error.str()
        return
    raise AssertionError(f"setting {key} was accepted")


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def test_security_keys_are_refused_dynamically_and_nothing_is_stored(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    before = broker_configs(admin)["log.retention.ms"].value

    for key, value in [
        ("ssl.keystore.location", "/etc/kafka/broker.jks"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", "PlainLoginModule required;"),
        ("super.users", "User:admin"),
    ]:
        # Together with a valid change: the request is refused as a whole.
        resource = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
            ConfigEntry("log.retention.ms", "1234", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET),
        ])
        assert_invalid_config(admin.incremental_alter_configs([resource])[resource], key)

    # The legacy AlterConfigs (which replaces the resource's whole dynamic set).
    legacy = ConfigResource(ResourceType.BROKER, "0", set_config={
        "log.retention.ms": "1234", "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"})
    assert_invalid_config(admin.alter_configs([legacy])[legacy], "authorizer.class.name")

    for configs in (broker_configs(admin), None):
        if configs is None:
            broker.restart()
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            configs = broker_configs(admin)
        assert configs["log.retention.ms"].value == before
        for key in ("ssl.keystore.location", "sasl.enabled.mechanisms", "super.users", "authorizer.class.name"):
            assert key not in configs or not configs[key].value, configs[key]
