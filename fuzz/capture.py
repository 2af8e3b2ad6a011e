#!/usr/bin/env python3
"""Seed corpus of the fuzz targets, from real client traffic.

    capture.py run --gregor BIN --kafkajs DIR [--out fuzz/corpus]
        Starts BIN (`gregor serve` on a scratch data dir), a TCP proxy in front of it
        (the broker advertises the proxy, so every client connection goes through it),
        then drives librdkafka (confluent-kafka) and kafka-python from this interpreter
        and kafkajs (node, from DIR/node_modules) through produce (plain, keyed with
        headers, gzip/snappy/lz4/zstd, idempotent, transactional), consumer groups (classic
        and KIP-848), commits and admin calls. Each client->broker request frame is kept as
        `<client>-<ApiName>-v<version>-<n>` under OUT/request_frame (a few distinct frames
        per client, API and version), and the RecordBatch bytes of its Produce requests as
        OUT/record_batch/<client>-<codec>-<n>.

    capture.py programs [--out fuzz/corpus]
        Seeds of the program-driven targets (log_recovery, group_coordinator): fixed
        pseudo-random byte strings, so the fuzzer starts from several shapes at once.

Needs the project venv (`scripts/python-env`; run with .venv/bin/python) and, for
kafkajs, `npm install kafkajs kafkajs-snappy` in DIR (outside the repository).
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit", 32: "DescribeConfigs", 33: "AlterConfigs",
    35: "DescribeLogDirs", 37: "CreatePartitions", 42: "DeleteGroups", 44: "IncrementalAlterConfigs",
    47: "OffsetDelete", 60: "DescribeCluster", 61: "DescribeProducers", 65: "DescribeTransactions",
    66: "ListTransactions", 68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
    75: "DescribeTopicPartitions",
}
FRAMES_PER_KIND = 3          # distinct frames kept per (client, api, version)
MAX_FRAME_BYTES = 64 * 1024  # larger frames stay out of the corpus (it must stay small)
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


class Proxy:
    """Forwards 127.0.0.1:<port> to the broker and records client->broker frames."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.label = "unknown"
        self.frames = []  # (label, frame bytes without the length prefix)
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.server.accept()
            broker = socket.create_connection(self.upstream)
            threading.Thread(target=self._requests, args=(client, broker), daemon=True).start()
            threading.Thread(target=self._copy, args=(broker, client), daemon=True).start()

    @staticmethod
    def _read_exact(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _requests(self, client, broker):
        try:
            while True:
                prefix = self._read_exact(client, 4)
                body = prefix and self._read_exact(client, struct.unpack(">i", prefix)[0])
                if body is None:
                    break
                with self.lock:
                    self.frames.append((self.label, body))
                broker.sendall(prefix + body)
        except OSError:
            pass
        for s in (client, broker):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def _copy(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(binary, data_dir, port, advertised):
    args = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--advertised-listener", advertised,
            "--data-dir", data_dir, "--set", "group.initial.rebalance.delay.ms=0",
            "--set", "offsets.topic.num.partitions=1", "--set", "transaction.state.log.num.partitions=1"]
    log = open(os.path.join(os.path.dirname(data_dir), "broker.log"), "w")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("gregor did not start")


# ---------------------------------------------------------------- librdkafka (confluent-kafka)

def run_librdkafka(bootstrap, log):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                       NewPartitions, NewTopic)

    base = {"bootstrap.servers": bootstrap}
    admin = AdminClient(base)
    wait(admin.create_topics([NewTopic("rk-plain", 3, 1), NewTopic("rk-compact", 1, 1, config={"cleanup.policy": "compact"})]))
    wait(admin.describe_configs([ConfigResource("topic", "rk-plain")]))
    retention = ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
    wait(admin.incremental_alter_configs([ConfigResource("topic", "rk-plain", incremental_configs=[retention])]))
    wait(admin.create_partitions([NewPartitions("rk-plain", 4)]))
    admin.list_topics(timeout=10)
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        p = Producer({**base, "compression.type": codec, "linger.ms": 20})
        for i in range(20):
            p.produce("rk-plain", key=f"k{i}".encode() if i % 2 else None, value=b"v" * (i * 7),
                      headers=[("h", b"x")] if i % 3 == 0 else None)
        p.flush(10)
    p = Producer({**base, "enable.idempotence": True})
    for i in range(10):
        p.produce("rk-compact", key=b"key%d" % (i % 3), value=b"idem%d" % i)
    p.flush(10)
    consume_rdkafka(base, "rk-group", "classic", log)
    consume_rdkafka(base, "rk-group-848", "consumer", log)
    transactions_rdkafka(base)
    tp = TopicPartition("rk-plain", 0, int(time.time() * 1000) - 60000)
    c = Consumer({**base, "group.id": "rk-group"})
    c.offsets_for_times([tp], timeout=10)
    c.close()
    wait(admin.list_consumer_groups())
    wait(admin.describe_consumer_groups(["rk-group"]))
    wait(admin.delete_consumer_groups(["rk-group"]))
    wait(admin.delete_topics(["rk-compact"]))


def consume_rdkafka(base, group, protocol, log):
    from confluent_kafka import Consumer
    conf = {**base, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    conf["group.protocol"] = protocol
    if protocol == "classic":
        conf["session.timeout.ms"] = 6000
    c = Consumer(conf)
    c.subscribe(["rk-plain"])
    got, deadline = 0, time.time() + 20
    while got < 30 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    if got:
        c.commit(asynchronous=False)
    c.committed(c.assignment(), timeout=10)
    c.close()
    log(f"librdkafka {protocol} group consumed {got}")


def transactions_rdkafka(base):
    from confluent_kafka import Consumer, Producer, TopicPartition
    p = Producer({**base, "transactional.id": "rk-txn"})
    p.init_transactions(10)
    c = Consumer({**base, "group.id": "rk-txn-group", "auto.offset.reset": "earliest"})
    for commit in (True, False):
        p.begin_transaction()
        for i in range(5):
            p.produce("rk-plain", key=b"t", value=b"txn%d" % i)
        p.send_offsets_to_transaction([TopicPartition("rk-plain", 0, 3)],
                                      c.consumer_group_metadata(), 10)
        (p.commit_transaction if commit else p.abort_transaction)(10)
    c.close()


def wait(futures):
    values = futures.values() if isinstance(futures, dict) else [futures]
    for f in values:
        try:
            f.result(10)
        except Exception as e:  # a refused call is traffic too
            print(f"  (admin call failed: {e})", file=sys.stderr)


# ---------------------------------------------------------------- kafka-python

def run_kafka_python(bootstrap, log):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try_(lambda: admin.create_topics([NewTopic("kp-plain", 2, 1)]))
    try_(lambda: admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-plain")]))
    for codec in [None, "gzip", "snappy", "lz4", "zstd"]:
        p = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, linger_ms=20)
        for i in range(15):
            p.send("kp-plain", key=b"k%d" % i if i % 2 else None, value=b"w" * (i * 5),
                   headers=[("h", b"y")] if i % 3 == 0 else None)
        p.flush(10)
        p.close()
    try_(lambda: idempotent_kafka_python(bootstrap))
    try_(lambda: transactions_kafka_python(bootstrap))
    c = KafkaConsumer("kp-plain", bootstrap_servers=bootstrap, group_id="kp-group",
                      auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=8000)
    got = sum(1 for _ in zip(range(40), c))
    c.commit()
    c.close()
    log(f"kafka-python group consumed {got}")
    try_(lambda: admin.list_consumer_groups())
    try_(lambda: admin.describe_consumer_groups(["kp-group"]))
    try_(lambda: admin.list_consumer_group_offsets("kp-group"))
    try_(lambda: admin.delete_topics(["kp-plain"]))
    admin.close()


def idempotent_kafka_python(bootstrap):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    for i in range(5):
        p.send("kp-plain", value=b"idem%d" % i)
    p.flush(10)
    p.close()


def transactions_kafka_python(bootstrap):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-txn")
    p.init_transactions()
    for commit in (True, False):
        p.begin_transaction()
        p.send("kp-plain", value=b"kp-txn")
        (p.commit_transaction if commit else p.abort_transaction)()
    p.close()


def try_(f):
    try:
        return f()
    except Exception as e:
        print(f"  (call failed: {e})", file=sys.stderr)


# ---------------------------------------------------------------- kafkajs

KAFKAJS = r"""
const { Kafka, CompressionTypes, CompressionCodecs } = require('kafkajs');
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy');
const kafka = new Kafka({ clientId: 'kafkajs-capture', brokers: [process.argv[2]], logLevel: 1 });
const topic = 'js-plain';
async function main() {
  const admin = kafka.admin(); await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  await admin.fetchTopicMetadata({ topics: [topic] });
  await admin.describeConfigs({ resources: [{ type: 2, name: topic }], includeSynonyms: false });
  for (const compression of [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.Snappy]) {
    const p = kafka.producer(); await p.connect();
    const messages = [...Array(12).keys()].map(i => ({ key: i % 2 ? `k${i}` : null, value: 'j'.repeat(i * 3), headers: i % 3 ? {} : { h: 'z' } }));
    await p.send({ topic, compression, messages });
    await p.disconnect();
  }
  const idem = kafka.producer({ idempotent: true, maxInFlightRequests: 1 }); await idem.connect();
  await idem.send({ topic, messages: [{ value: 'idem' }], acks: -1 }); await idem.disconnect();
  const tp = kafka.producer({ transactionalId: 'js-txn', idempotent: true, maxInFlightRequests: 1 }); await tp.connect();
  for (const commit of [true, false]) {
    const txn = await tp.transaction();
    await txn.send({ topic, messages: [{ value: 'js-txn' }] });
    await txn.sendOffsets({ consumerGroupId: 'js-txn-group', topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }] });
    await (commit ? txn.commit() : txn.abort());
  }
  await tp.disconnect();
  const consumer = kafka.consumer({ groupId: 'js-group', sessionTimeout: 6000 });
  await consumer.connect(); await consumer.subscribe({ topic, fromBeginning: true });
  let got = 0;
  await consumer.run({ autoCommit: false, eachMessage: async ({ partition, message }) => {
    got++; await consumer.commitOffsets([{ topic, partition, offset: (Number(message.offset) + 1).toString() }]);
  } });
  await new Promise(r => setTimeout(r, 6000));
  await consumer.disconnect();
  console.error(`kafkajs group consumed ${got}`);
  await admin.listGroups(); await admin.describeGroups(['js-group']);
  await admin.fetchOffsets({ groupId: 'js-group', topics: [topic] });
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
}
main().catch(e => { console.error(e); process.exit(1); });
"""


def run_kafkajs(bootstrap, modules_dir, log):
    script = os.path.join(modules_dir, "capture.js")
    with open(script, "w") as f:
        f.write(KAFKAJS)
    subprocess.run(["node", script, bootstrap], cwd=modules_dir, timeout=180, check=False)


# ---------------------------------------------------------------- corpus

def header(frame):
    key, version = struct.unpack(">hh", frame[:4])
    return key, version


def produce_batches(frame):
    """RecordBatch bytes of every partition of a Produce (v3+) request frame."""
    key, version = header(frame)
    flexible = version >= 9
    pos = 8
    # header: client_id (nullable i16 string), then tagged fields in header v2
    (n,) = struct.unpack(">h", frame[pos:pos + 2])
    pos += 2 + max(n, 0)
    if flexible:
        pos += 1  # empty tagged fields
    r = Reader(frame, pos, flexible)
    r.string()  # transactional_id
    r.skip(2 + 4)  # acks, timeout
    out = []
    for _ in range(r.count()):
        r.string()
        for _ in range(r.count()):
            r.skip(4)
            records = r.bytes()
            if records:
                out.append(records)
            r.tags()
        r.tags()
    return out


class Reader:
    def __init__(self, buf, pos, flexible):
        self.buf, self.pos, self.flexible = buf, pos, flexible

    def skip(self, n):
        self.pos += n

    def varint(self):
        shift = value = 0
        while True:
            b = self.buf[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def count(self):
        if self.flexible:
            return self.varint() - 1
        (n,) = struct.unpack(">i", self.buf[self.pos:self.pos + 4])
        self.pos += 4
        return n

    def string(self):
        n = self.varint() - 1 if self.flexible else struct.unpack(">h", self.buf[self.pos:self.pos + 2])[0]
        if not self.flexible:
            self.pos += 2
        self.pos += max(n, 0)

    def bytes(self):
        n = self.varint() - 1 if self.flexible else struct.unpack(">i", self.buf[self.pos:self.pos + 4])[0]
        if not self.flexible:
            self.pos += 4
        data = self.buf[self.pos:self.pos + max(n, 0)]
        self.pos += max(n, 0)
        return data

    def tags(self):
        if self.flexible:
            for _ in range(self.varint()):
                self.varint()
                self.pos += self.varint()


def write_corpus(frames, out):
    request_dir, batch_dir = os.path.join(out, "request_frame"), os.path.join(out, "record_batch")
    os.makedirs(request_dir, exist_ok=True)
    os.makedirs(batch_dir, exist_ok=True)
    kept, seen = {}, set()
    for label, frame in frames:
        if len(frame) < 8 or len(frame) > MAX_FRAME_BYTES:
            continue
        key, version = header(frame)
        if key == 0 and version >= 3:
            write_batches(label, produce_batches(frame), batch_dir, kept, seen)
        # The correlation id differs in every frame; it says nothing about the body.
        digest = hashlib.sha1(frame[:4] + frame[8:]).digest()
        kind = (label, key, version)
        if digest in seen or kept.get(kind, 0) >= FRAMES_PER_KIND:
            continue
        seen.add(digest)
        n = kept[kind] = kept.get(kind, 0) + 1
        with open(os.path.join(request_dir, f"{label}-{API_NAMES.get(key, key)}-v{version}-{n - 1}"), "wb") as f:
            f.write(struct.pack(">i", len(frame)) + frame)
    return kept


def write_batches(label, batches, batch_dir, kept, seen):
    """A few batches per client, codec and producer kind (plain, idempotent, transactional)."""
    for batch in batches:
        if len(batch) < 61 or hashlib.sha1(batch[12:]).digest() in seen:
            continue
        attributes, producer_id = struct.unpack(">h", batch[21:23])[0], struct.unpack(">q", batch[43:51])[0]
        producer = "txn" if attributes & 0x10 else "idempotent" if producer_id >= 0 else "plain"
        kind = (label, "batch", CODECS.get(attributes & 7, "x"), producer)
        if kept.get(kind, 0) >= FRAMES_PER_KIND:
            continue
        seen.add(hashlib.sha1(batch[12:]).digest())
        n = kept[kind] = kept.get(kind, 0) + 1
        with open(os.path.join(batch_dir, f"{label}-{kind[2]}-{producer}-{n - 1}"), "wb") as f:
            f.write(batch)


def programs(out):
    rng = random.Random(20260521)
    for target, count, sizes in [("log_recovery", 12, (16, 200)), ("group_coordinator", 12, (64, 600))]:
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for i in range(count):
            size = rng.randint(*sizes)
            with open(os.path.join(d, f"random-{i}"), "wb") as f:
                f.write(bytes(rng.getrandbits(8) for _ in range(size)))


def capture(args):
    work = tempfile.mkdtemp(prefix="gregor-capture-")
    port = free_port()
    proxy = Proxy(("127.0.0.1", port))
    bootstrap = f"127.0.0.1:{proxy.port}"
    broker = start_broker(args.gregor, os.path.join(work, "data"), port, bootstrap)
    log = lambda msg: print(msg, file=sys.stderr)
    try:
        for label, run in [("librdkafka", lambda: run_librdkafka(bootstrap, log)),
                           ("kafka-python", lambda: run_kafka_python(bootstrap, log)),
                           ("kafkajs", lambda: run_kafkajs(bootstrap, args.kafkajs, log))]:
            proxy.label = label
            log(f"== {label}")
            try_(run)
            time.sleep(1)
    finally:
        broker.terminate()
        broker.wait(30)
    kept = write_corpus(list(proxy.frames), args.out)
    summary = {" ".join(map(str, kind)): n for kind, n in sorted(kept.items(), key=str)}
    print(json.dumps(summary, indent=1))
    shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--gregor", required=True, help="gregor binary (a copy: it runs during the capture)")
    run.add_argument("--kafkajs", required=True, help="directory with node_modules/kafkajs")
    run.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "corpus"))
    prog = sub.add_parser("programs")
    prog.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "corpus"))
    args = parser.parse_args()
    capture(args) if args.command == "run" else programs(args.out)


if __name__ == "__main__":
    main()
