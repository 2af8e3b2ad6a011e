"""Progress lines on stderr and in the run dir's harness.log, stamped with the seconds
since the harness started."""
from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

START = time.monotonic()
_file = None
_lock = threading.Lock()


def elapsed() -> float:
    return time.monotonic() - START


CLIENTS = logging.getLogger("gchaos.clients")  # librdkafka's logs (the clients' `logger`)


def to_file(path: Path) -> None:
    """harness.log for our lines; clients.log beside it for librdkafka's and kafka-python's."""
    global _file
    _file = open(path, "a", buffering=1)
    handler = logging.FileHandler(path.with_name("clients.log"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("gchaos.clients", "kafka"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if name == "gchaos.clients" else logging.WARNING)
        logger.propagate = False


def log(message: str) -> None:
    line = f"[{elapsed():7.1f}s] {message}"
    with _lock:
        print(line, file=sys.stderr, flush=True)
        if _file is not None:
            _file.write(line + "\n")
