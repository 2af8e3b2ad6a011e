"""A Metadata v1 request sent to one given node over a raw socket: what that broker
itself believes (librdkafka's list_topics asks whichever broker it likes, and a broker
that was just cut off answers from a stale image)."""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

METADATA, VERSION = 3, 1


@dataclass(frozen=True)
class PartitionView:
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class MetadataView:
    brokers: tuple[int, ...]
    controller: int
    partitions: dict[tuple[str, int], PartitionView]


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0] if len(value) == 1 else value

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def array(self, item):
        return [item() for _ in range(self.take(">i"))]


def request() -> bytes:
    client = b"gchaos"
    body = struct.pack(">hhih", METADATA, VERSION, 1, len(client)) + client + struct.pack(">i", -1)
    return struct.pack(">i", len(body)) + body


def exchange(address: str, timeout: float) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(request())
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        return recv_exact(s, size)


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def metadata(address: str, timeout: float = 3.0) -> MetadataView:
    """Raises OSError (or struct.error on a garbled answer) when the node does not answer."""
    r = Reader(exchange(address, timeout))
    r.take(">i")  # correlation id
    brokers = r.array(lambda: (r.take(">i"), r.string(), r.take(">i"), r.string())[0])
    controller = r.take(">i")
    partitions = {}
    for _ in range(r.take(">i")):
        r.take(">h")  # topic error
        name = r.string()
        r.take(">?")  # is_internal
        for _ in range(r.take(">i")):
            r.take(">h")  # partition error
            index, leader = r.take(">ii")
            replicas = tuple(r.array(lambda: r.take(">i")))
            isr = tuple(r.array(lambda: r.take(">i")))
            partitions[(name, index)] = PartitionView(leader, replicas, isr)
    return MetadataView(tuple(sorted(brokers)), controller, partitions)
