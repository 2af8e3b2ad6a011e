"""Prometheus `/metrics` and `/api/v1/health` on the broker's HTTP listener
(`--http-listen`), read with prometheus_client's own text-format parser.

Contract, one test each:

- `test_metrics_match_what_the_kafka_api_reports`: after a known produce and a known
  consume, the families carry Kafka's JMX-exporter names and agree with the Kafka API:
  messages in per topic = records produced; bytes in per topic = the bytes the log holds
  (DescribeLogDirs' size through the admin client, and `kafka_log_log_size`); bytes out
  counts what the consumer fetched; `kafka_log_log_logendoffset` = the high watermarks;
  `kafka_consumergroup_lag` = high watermark - committed offset per partition (the
  group's committed offsets as the admin client lists them); request counts and latency
  histograms exist for Produce and Fetch with `_count` = the `+Inf` bucket; one
  connection or more is open; the node is the active controller of its one-node cluster;
  every metric docs/grafana/gregor.json queries is in the scrape.
- `test_health_and_listener_options`: `/api/v1/health` answers JSON with the node and
  cluster id, the start line prints the console URL; `--http-listen none` serves no HTTP
  and prints none; an explicit address that is taken refuses the start with a sentence
  naming it, before the Kafka port is bound.
"""
from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.request

from pathlib import Path

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from conftest import broker_binary
from gregor_support import admin, confluent_producer, create_topic, produce_confluent
from test_cluster import free_ports


def scrape(port: int) -> dict:
    """{(sample name, frozenset(labels)): value} of one scrape."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


def test_metrics_match_what_the_kafka_api_reports(broker_factory):
    http = free_ports(1)[0]
    b = broker_factory().start(extra_args=["--http-listen", f"127.0.0.1:{http}"])
    create_topic(b.bootstrap, "metered", 2)
    p = confluent_producer(b.bootstrap, acks="all")
    produce_confluent(p, "metered", [{"value": f"v{i}".encode() * 10, "partition": i % 2} for i in range(300)])

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "metered-group", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("metered", 0, 0)])
    read = 0
    while read < 100:
        msgs = [m for m in c.consume(100 - read, 5) if m.error() is None]
        assert msgs, "consumer stalled"
        read += len(msgs)
    c.commit(offsets=[TopicPartition("metered", 0, 100), TopicPartition("metered", 1, 40)], asynchronous=False)
    c.close()

    a = admin(b.bootstrap)  # kept alive while its future runs
    listed = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions("metered-group")])
    committed = {tp.partition: tp.offset for tp in listed["metered-group"].result(15).topic_partitions}
    s = scrape(http)

    assert value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic="metered") == 300
    sizes = {p: value(s, "kafka_log_log_size", topic="metered", partition=str(p)) for p in (0, 1)}
    assert value(s, "kafka_server_brokertopicmetrics_bytesin_total", topic="metered") == sum(sizes.values())
    on_disk = {p: sum(f.stat().st_size for f in Path(b.data_dir, f"metered-{p}").glob("*.log")) for p in (0, 1)}
    assert sizes == on_disk, "the batches as written, byte for byte"
    # The consumer read partition 0 (all of it, or more than its first 100 records).
    assert value(s, "kafka_server_brokertopicmetrics_bytesout_total", topic="metered") >= sizes[0] * 100 / 150
    ends = {p: value(s, "kafka_log_log_logendoffset", topic="metered", partition=str(p)) for p in (0, 1)}
    assert ends == {0: 150, 1: 150}
    for part in (0, 1):
        lag = value(s, "kafka_consumergroup_lag", consumergroup="metered-group", topic="metered", partition=str(part))
        assert lag == ends[part] - committed[part], (part, lag, committed)
    assert value(s, "kafka_consumergroup_lag_sum", consumergroup="metered-group", topic="metered") == 50 + 110
    for request in ("Produce", "Fetch"):
        count = value(s, "kafka_network_requestmetrics_totaltimems_count", request=request)
        assert count >= 1
        assert value(s, "kafka_network_requestmetrics_totaltimems_bucket", request=request, le="+Inf") == count
        assert value(s, "kafka_network_requestmetrics_requests_total", request=request) == count
    assert value(s, "kafka_server_socket_server_metrics_connection_count") >= 1
    assert value(s, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(s, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert value(s, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert value(s, "kafka_server_replicamanager_leadercount") >= 2
    assert value(s, "kafka_coordinator_group_groupmetadatamanager_numgroups") == 1

    # The Grafana dashboard of the repo reads these names, none renamed.
    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "grafana" / "gregor.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for e in exprs for name in re.findall(r"\b(?:kafka|gregor)_[a-z_]+", e)}
    scraped = {name for name, _ in s}
    assert used and not used - scraped, f"dashboard names missing from /metrics: {sorted(used - scraped)}"


def test_health_and_listener_options(broker_factory):
    http, taken_port = free_ports(2)
    b = broker_factory("health").start(extra_args=["--http-listen", f"127.0.0.1:{http}"])
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/v1/health", timeout=10) as r:
        health = json.loads(r.read())
    assert health["status"] == "ok" and health["node_id"] == 0 and health["cluster_id"]
    assert f"console http://127.0.0.1:{http}/" in (b.log_dir / "broker-1.stdout").read_text()

    off = broker_factory("off").start(extra_args=["--http-listen", "none"])
    assert "console" not in (off.log_dir / "broker-1.stdout").read_text()

    holder = socket.socket()
    holder.bind(("127.0.0.1", taken_port))
    holder.listen()
    try:
        kafka_port = free_ports(1)[0]
        proc = subprocess.run(
            [str(broker_binary()), "serve", "--listen", f"127.0.0.1:{kafka_port}", "--data-dir",
             str(b.data_dir.parent / "refused"), "--http-listen", f"127.0.0.1:{taken_port}"],
            capture_output=True, text=True, timeout=30)
    finally:
        holder.close()
    assert proc.returncode != 0
    assert f"cannot listen for HTTP on 127.0.0.1:{taken_port}" in proc.stderr, proc.stderr
    assert not (b.data_dir.parent / "refused").exists(), "nothing is created before the refusal"
