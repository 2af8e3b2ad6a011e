"""A consume-transform-produce processor with exactly-once semantics (confluent-kafka),
run as a subprocess by test_transactions.py:

    python txn_processor.py BOOTSTRAP GROUP INPUT OUTPUT TRANSACTIONAL_ID [options]

It reads INPUT in consumer group GROUP (isolation.level=read_committed, no auto commit)
and, for every batch it consumes, runs one transaction: for each input record k<i> = "<i>"
it produces k<i> = "<2*i>" to OUTPUT (same partition, header `src` = "partition:offset"),
then send_offsets_to_transaction(position(assignment), consumer_group_metadata()) and
commit_transaction(). A restarted instance with the same TRANSACTIONAL_ID fences the
previous one in init_transactions() (which aborts its open transaction).

An abortable error aborts the transaction and rewinds the consumer to the committed
offsets; a retriable commit/abort error is retried; a fatal error exits 2.

stdout gets one JSON line per event: {"ev": "ready"}, {"ev": "committed", "n": records,
"pos": {partition: offset}}, {"ev": "aborted", "error": ...}, {"ev": "done"}, ...

Exit codes: 0 when it has consumed nothing for --idle-exit seconds while owning every
partition of INPUT at its high watermark (everything processed); 2 fatal error; 3 its
own --deadline passed; 5 it could not rewind after an abort (a restart is the fix).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

FAST_RECONNECT = {
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "retry.backoff.ms": 50,
    "retry.backoff.max.ms": 500,
    "socket.connection.setup.timeout.ms": 5000,
    # With one broker, a broker restart leaves "no usable brokers", on which librdkafka
    # 2.16 re-bootstraps and decommissions the known broker; a group coordinator cached on
    # that broker then makes send_offsets_to_transaction() hang forever, past its timeout
    # (librdkafka issues #5511 and #5456). Without re-bootstrap the broker object survives
    # the restart and simply reconnects.
    "metadata.recovery.strategy": "none",
}

EXIT_DONE = 0
EXIT_FATAL = 2
EXIT_DEADLINE = 3
EXIT_REWIND = 5


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def err_of(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def err_json(err: KafkaError | None, exc: BaseException | None = None) -> dict:
    if err is None:
        return {"exception": repr(exc)}
    return {"code": err.code(), "name": err.name(), "str": err.str(), "fatal": err.fatal(),
            "retriable": err.retriable(), "abort": err.txn_requires_abort()}


class Fatal(Exception):
    def __init__(self, where: str, err: KafkaError | None, exc: BaseException | None = None):
        super().__init__(where)
        self.where = where
        self.err = err
        self.exc = exc


class Processor:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.deadline
        self.client_errors: list[KafkaError] = []
        self.consumer = Consumer({
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "max.poll.interval.ms": 60000,
            "fetch.wait.max.ms": 100,
            **({"group.instance.id": args.instance_id} if args.instance_id else {}),
            "error_cb": self.on_client_error,
            **FAST_RECONNECT,
            **({"debug": args.debug} if args.debug else {}),
        })
        self.producer = Producer({
            "bootstrap.servers": args.bootstrap,
            "transactional.id": args.transactional_id,
            "transaction.timeout.ms": args.transaction_timeout_ms,
            "linger.ms": 5,
            "error_cb": self.on_client_error,
            **FAST_RECONNECT,
            **({"debug": args.debug} if args.debug else {}),
        })
        self.partitions: set[int] | None = None

    def on_client_error(self, err: KafkaError) -> None:
        emit({"ev": "client_error", **err_json(err)})
        if err.fatal():
            self.client_errors.append(err)

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            emit({"ev": "deadline"})
            sys.exit(EXIT_DEADLINE)

    # ------------------------------------------------------------ transactional calls with retries

    def retrying(self, where: str, fn, timeout: float = 30.0):
        """Calls fn(timeout) until it succeeds; retriable errors are retried, an abortable
        error is raised as KafkaException, anything else is Fatal."""
        while True:
            self.check_time()
            try:
                return fn(timeout)
            except KafkaException as e:
                err = err_of(e)
                if err is not None and err.retriable() and not err.fatal():
                    emit({"ev": "retry", "where": where, **err_json(err)})
                    time.sleep(0.1)
                    continue
                if err is not None and err.txn_requires_abort() and not err.fatal():
                    raise
                raise Fatal(where, err, e) from e

    def init(self) -> None:
        self.retrying("init_transactions", self.producer.init_transactions)
        self.consumer.subscribe([self.args.input])
        md = self.consumer.list_topics(self.args.input, timeout=30)
        self.partitions = set(md.topics[self.args.input].partitions)
        emit({"ev": "ready", "partitions": sorted(self.partitions)})

    def abort_and_rewind(self, why: KafkaError | None) -> None:
        emit({"ev": "aborting", **err_json(why)})
        try:
            self.retrying("abort_transaction", self.producer.abort_transaction)
        except KafkaException as e:  # abortable while aborting: fatal for us
            raise Fatal("abort_transaction", err_of(e), e) from e
        # Rewind to the committed offsets, as librdkafka's transactions example does.
        assignment = self.consumer.assignment()
        try:
            committed = self.consumer.committed(assignment, timeout=30) if assignment else []
            for tp in committed:
                offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        except KafkaException as e:
            emit({"ev": "rewind_failed", **err_json(err_of(e), e)})
            sys.exit(EXIT_REWIND)
        emit({"ev": "aborted", "rewound": {tp.partition: tp.offset for tp in committed}})

    def process(self, records) -> None:
        p = self.producer
        try:
            p.begin_transaction()
            for m in records:
                i = int(m.value())
                while True:
                    try:
                        p.produce(self.args.output, key=m.key(), value=str(2 * i).encode(), partition=m.partition(),
                                  headers=[("src", f"{m.partition()}:{m.offset()}".encode())])
                        break
                    except BufferError:
                        p.poll(0.05)
                p.poll(0)
            if self.args.delay_ms:
                time.sleep(self.args.delay_ms / 1000.0)  # "processing", inside the transaction
            positions = self.consumer.position(self.consumer.assignment())
            self.retrying("send_offsets_to_transaction",
                          lambda t: p.send_offsets_to_transaction(positions, self.consumer.consumer_group_metadata(), t))
            self.retrying("commit_transaction", p.commit_transaction)
        except KafkaException as e:
            err = err_of(e)
            if err is not None and err.fatal():
                raise Fatal("transaction", err, e) from e
            self.abort_and_rewind(err)
            return
        emit({"ev": "committed", "n": len(records),
              "pos": {tp.partition: tp.offset for tp in positions if tp.offset >= 0}})

    def caught_up(self) -> bool:
        assignment = self.consumer.assignment()
        if not assignment or {tp.partition for tp in assignment} != self.partitions:
            return False
        positions = {tp.partition: tp.offset for tp in self.consumer.position(assignment)}
        # A partition this instance has consumed nothing from has no position (-1001):
        # its committed offset is where it stands.
        unknown = [TopicPartition(self.args.input, p) for p, o in positions.items() if o < 0]
        if unknown:
            for tp in self.consumer.committed(unknown, timeout=10):
                positions[tp.partition] = tp.offset
        for p, offset in positions.items():
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(self.args.input, p), timeout=5, cached=False)
            if offset < 0 or offset < high:
                return False
        return True

    def run(self) -> int:
        self.init()
        last_input = time.monotonic()
        while True:
            self.check_time()
            if self.client_errors:
                raise Fatal("client", self.client_errors[0])
            msgs = self.consumer.consume(self.args.batch, 0.5)
            records = []
            for m in msgs:
                err = m.error()
                if err is None:
                    records.append(m)
                elif err.fatal():
                    raise Fatal("consume", err)
                elif err.code() != KafkaError._PARTITION_EOF:
                    emit({"ev": "consume_error", **err_json(err)})
            if records:
                last_input = time.monotonic()
                self.process(records)
                continue
            if time.monotonic() - last_input >= self.args.idle_exit:
                try:
                    if self.caught_up():
                        emit({"ev": "done"})
                        return EXIT_DONE
                except KafkaException as e:
                    emit({"ev": "caught_up_check_failed", **err_json(err_of(e), e)})
                last_input = time.monotonic() - self.args.idle_exit / 2  # check again a bit later

    def close(self) -> None:
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError):
            pass
        try:
            self.producer.close()
        except (KafkaException, RuntimeError):
            pass


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bootstrap")
    ap.add_argument("group")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("transactional_id")
    ap.add_argument("--batch", type=int, default=50, help="max records consumed per transaction")
    ap.add_argument("--delay-ms", type=int, default=0, help="sleep inside each transaction before committing")
    ap.add_argument("--idle-exit", type=float, default=4.0, help="exit 0 after this long idle and caught up")
    ap.add_argument("--transaction-timeout-ms", type=int, default=10000)
    ap.add_argument("--instance-id", default=None, help="group.instance.id (static membership)")
    ap.add_argument("--deadline", type=float, default=150.0, help="exit 3 after this many seconds")
    ap.add_argument("--debug", default=None, help="librdkafka debug contexts, e.g. eos,cgrp,fetch")
    args = ap.parse_args(argv)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a stack dump on stderr when stuck

    proc = Processor(args)
    try:
        code = proc.run()
    except Fatal as f:
        emit({"ev": "fatal", "where": f.where, **err_json(f.err, f.exc)})
        code = EXIT_FATAL
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else EXIT_FATAL
    if code != EXIT_DONE:
        # No clean close on the way out (it would abort the open transaction): the next
        # instance with the same transactional.id fences this one, or the broker times it out.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    proc.close()
    emit({"ev": "closed"})
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
