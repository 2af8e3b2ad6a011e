"""Kafka wire format by hand, for the tests that must send exactly chosen bytes.

Only what the tests need: frames, request headers v1/v2, RecordBatch v2 (with CRC-32C),
Produce v3, ApiVersions v0/v3 and their responses. Every read has a timeout.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

import crc32c

API_PRODUCE = 0
API_FETCH = 1
API_LIST_OFFSETS = 2
API_METADATA = 3
API_API_VERSIONS = 18

ERROR_NONE = 0
ERROR_OFFSET_OUT_OF_RANGE = 1
ERROR_CORRUPT_MESSAGE = 2
ERROR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERROR_MESSAGE_TOO_LARGE = 10
ERROR_INVALID_TOPIC = 17
ERROR_UNSUPPORTED_VERSION = 35


# ---------------------------------------------------------------- primitives


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n: int) -> bytes:
    """Zig-zag signed varint (also used for varlong: Python ints are unbounded)."""
    return uvarint((n << 1) ^ (n >> 63))


def string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def request_header(api_key: int, version: int, correlation_id: int, client_id: str | None = "gregor-tests", flexible: bool = False) -> bytes:
    """Request header v1 (or v2 with the empty tagged-field section when `flexible`)."""
    head = struct.pack(">hhi", api_key, version, correlation_id) + string(client_id)
    return head + (uvarint(0) if flexible else b"")


# ---------------------------------------------------------------- record batches


@dataclass
class Record:
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_delta: int = 0


def _record(offset_delta: int, r: Record) -> bytes:
    body = bytearray()
    body += b"\x00"  # attributes
    body += varint(r.timestamp_delta)
    body += varint(offset_delta)
    if r.key is None:
        body += varint(-1)
    else:
        body += varint(len(r.key)) + r.key
    if r.value is None:
        body += varint(-1)
    else:
        body += varint(len(r.value)) + r.value
    body += varint(len(r.headers))
    for name, value in r.headers:
        nb = name.encode()
        body += varint(len(nb)) + nb
        body += varint(-1) if value is None else varint(len(value)) + value
    return varint(len(body)) + bytes(body)


def record_batch(records: list[Record], base_timestamp: int | None = None, corrupt_crc: bool = False) -> bytes:
    """A RecordBatch v2 (magic 2), uncompressed, no producer id, with its CRC-32C."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    recs = b"".join(_record(i, r) for i, r in enumerate(records))
    max_ts = base_timestamp + max((r.timestamp_delta for r in records), default=0)
    # Everything the CRC covers: attributes .. end.
    after_crc = (
        struct.pack(">hiqqqhii", 0, len(records) - 1, base_timestamp, max_ts, -1, -1, -1, len(records))
        + recs
    )
    crc = crc32c.crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    # batchLength counts from partitionLeaderEpoch to the end.
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def produce_v3(correlation_id: int, topic: str, partition: int, records: bytes, acks: int = 1, timeout_ms: int = 5000) -> bytes:
    """A whole Produce v3 request frame (non-flexible) for one partition."""
    body = (
        string(None)  # transactional_id
        + struct.pack(">hi", acks, timeout_ms)
        + struct.pack(">i", 1)
        + string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">i", partition)
        + struct.pack(">i", len(records))
        + records
    )
    return frame(request_header(API_PRODUCE, 3, correlation_id) + body)


@dataclass
class PartitionProduceResult:
    topic: str
    partition: int
    error_code: int
    base_offset: int
    log_append_time: int


def parse_produce_v3(payload: bytes) -> tuple[int, list[PartitionProduceResult]]:
    """(correlation id, partition results) of a Produce v3 response (frame payload)."""
    pos = 0
    (corr,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    (ntopics,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    results = []
    for _ in range(ntopics):
        (nlen,) = struct.unpack_from(">h", payload, pos)
        pos += 2
        name = payload[pos : pos + nlen].decode()
        pos += nlen
        (nparts,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        for _ in range(nparts):
            index, error, base, append_time = struct.unpack_from(">ihqq", payload, pos)
            pos += 22
            results.append(PartitionProduceResult(name, index, error, base, append_time))
    return corr, results


# ---------------------------------------------------------------- ApiVersions


def api_versions_request(version: int, correlation_id: int) -> bytes:
    if version >= 3:
        body = compact_string("gregor-tests") + compact_string("1.0") + uvarint(0)
        return frame(request_header(API_API_VERSIONS, version, correlation_id, flexible=True) + body)
    return frame(request_header(API_API_VERSIONS, version, correlation_id))


@dataclass
class ApiVersionsResult:
    correlation_id: int
    error_code: int
    apis: dict[int, tuple[int, int]]


def parse_api_versions(payload: bytes, version: int) -> ApiVersionsResult:
    """ApiVersions responses always use response header v0 (KIP-511)."""
    corr, error = struct.unpack_from(">ih", payload, 0)
    pos = 6
    apis: dict[int, tuple[int, int]] = {}
    if version >= 3:
        n, pos = read_uvarint(payload, pos)
        n -= 1
        for _ in range(n):
            key, lo, hi = struct.unpack_from(">hhh", payload, pos)
            pos += 6
            tags, pos = read_uvarint(payload, pos)
            assert tags == 0, "unexpected tagged fields in an ApiVersion entry"
            apis[key] = (lo, hi)
    else:
        (n,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        for _ in range(n):
            key, lo, hi = struct.unpack_from(">hhh", payload, pos)
            pos += 6
            apis[key] = (lo, hi)
    return ApiVersionsResult(corr, error, apis)


# ---------------------------------------------------------------- connection


class Closed(Exception):
    """The broker closed the connection."""


class RawConnection:
    """A blocking TCP connection with timeouts on every read."""

    def __init__(self, bootstrap: str, timeout: float = 10.0):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise Closed(f"connection closed after {len(out)} of {n} bytes")
            out += chunk
        return bytes(out)

    def read_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._read_exact(4))
        assert 0 <= size < 64 * 1024 * 1024, f"response frame size {size}"
        return self._read_exact(size)

    def request(self, data: bytes) -> bytes:
        self.send(data)
        return self.read_frame()

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """True when the peer closes (EOF or reset) within `timeout`; bytes it sends are discarded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
        return False


# ---------------------------------------------------------------- Fetch v4


def fetch_v4(correlation_id: int, topic: str, partition: int, offset: int, max_wait_ms: int = 100,
             max_bytes: int = 1 << 20) -> bytes:
    """A whole Fetch v4 request frame (read_uncommitted) for one partition."""
    body = (
        struct.pack(">iiiib", -1, max_wait_ms, 1, max_bytes, 0)
        + struct.pack(">i", 1)
        + string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">iqi", partition, offset, max_bytes)
    )
    return frame(request_header(API_FETCH, 4, correlation_id) + body)


@dataclass
class BatchHeader:
    base_offset: int
    length: int
    magic: int
    compression: int
    last_offset_delta: int
    record_count: int


@dataclass
class FetchPartition:
    error_code: int
    high_watermark: int
    records: bytes

    def batches(self) -> list[BatchHeader]:
        """Headers of the whole batches in `records` (a trailing partial batch is skipped)."""
        out = []
        pos = 0
        while pos + 61 <= len(self.records):
            base, length = struct.unpack_from(">qi", self.records, pos)
            if pos + 12 + length > len(self.records):
                break
            magic = self.records[pos + 16]
            attributes, last_delta = struct.unpack_from(">hi", self.records, pos + 21)
            (count,) = struct.unpack_from(">i", self.records, pos + 57)
            out.append(BatchHeader(base, length, magic, attributes & 0x7, last_delta, count))
            pos += 12 + length
        return out


def parse_fetch_v4(payload: bytes) -> tuple[int, FetchPartition]:
    """(correlation id, the single partition) of a Fetch v4 response."""
    corr, _throttle, ntopics = struct.unpack_from(">iii", payload, 0)
    assert ntopics == 1, ntopics
    pos = 12
    (nlen,) = struct.unpack_from(">h", payload, pos)
    pos += 2 + nlen
    (nparts,) = struct.unpack_from(">i", payload, pos)
    assert nparts == 1, nparts
    pos += 4
    _index, error, hw, _lso, naborted = struct.unpack_from(">ihqqi", payload, pos)
    pos += 26 + max(naborted, 0) * 16
    (rlen,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    records = payload[pos : pos + max(rlen, 0)]
    return corr, FetchPartition(error, hw, records)
