"""Fixtures of the Python compatibility suite: a real `gregor` process per test.

The binary is `$GREGOR_BIN`, else `target/release/gregor` when it is newer than
`target/debug/gregor`, else `target/debug/gregor`. Each test gets its own data dir
under pytest's tmp_path; every broker process a test started is killed at teardown,
and when a test fails the tail of each broker's stderr is printed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STDERR_TAIL_LINES = 60
_BANNER = re.compile(r"\(advertised (?P<host>[^)]+):(?P<port>\d+)\)")
_CLUSTER = re.compile(r"cluster (?P<cluster>[A-Za-z0-9_-]+)")


def broker_binary() -> Path:
    env = os.environ.get("GREGOR_BIN")
    if env:
        return Path(env)
    release = REPO / "target" / "release" / "gregor"
    debug = REPO / "target" / "debug" / "gregor"
    if release.exists() and (not debug.exists() or release.stat().st_mtime > debug.stat().st_mtime):
        return release
    return debug


class BrokerStartError(Exception):
    pass


class Broker:
    """One `gregor serve` process over one data dir, which survives stop/kill/restart."""

    def __init__(self, data_dir: Path, log_dir: Path, binary: Path | None = None, host: str = "127.0.0.1"):
        self.binary = binary or broker_binary()
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.host = host
        self.port = 0
        self.sets: dict[str, str] = {}
        self.extra_args: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.advertised: str | None = None
        self.cluster_id: str | None = None
        self.banner: str | None = None
        self.starts = 0
        self.stderr_paths: list[Path] = []
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ lifecycle

    def command(self, port: int | None = None, extra_args: list[str] | None = None) -> list[str]:
        port = self.port if port is None else port
        extra = list(self.extra_args if extra_args is None else extra_args)
        # A test giving its own --listen (several listeners) replaces the default one.
        listen = [] if "--listen" in extra else ["--listen", f"{self.host}:{port}"]
        cmd = [str(self.binary), "serve", *listen, "--data-dir", str(self.data_dir)]
        for k, v in self.sets.items():
            cmd += ["--set", f"{k}={v}"]
        cmd += extra
        return cmd

    def spawn(self, cmd: list[str]) -> tuple[subprocess.Popen, Path, Path]:
        """Starts `cmd` with stdout/stderr to fresh files; returns (process, stdout, stderr)."""
        if not self.binary.exists():
            pytest.fail(f"broker binary {self.binary} does not exist: run `cargo build -p gregor` (or set GREGOR_BIN)")
        self.starts += 1
        out = self.log_dir / f"broker-{self.starts}.stdout"
        err = self.log_dir / f"broker-{self.starts}.stderr"
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.stderr_paths.append(err)
        return proc, out, err

    def start(self, port: int | None = None, sets: dict[str, str] | None = None, extra_args: list[str] | None = None,
              timeout: float = 30.0, bind_retries: int = 20) -> "Broker":
        """Starts the broker and waits for its banner. `port` defaults to the last one used
        (0 on the first start, so the OS picks one); `sets` are added to earlier ones."""
        assert not self.running, "broker already running"
        if port is not None:
            self.port = port
        if sets:
            self.sets.update({k: str(v) for k, v in sets.items()})
        if extra_args is not None:
            self.extra_args = list(extra_args)
        for attempt in range(bind_retries):
            proc, out, err = self.spawn(self.command())
            self.proc = proc
            try:
                self._wait_banner(proc, out, err, timeout)
                return self
            except BrokerStartError as e:
                text = err.read_text(errors="replace")
                # A restart on the same port right after a kill can race the old socket.
                if self.port and "in use" in text.lower() and attempt + 1 < bind_retries:
                    time.sleep(0.25)
                    continue
                raise AssertionError(f"{e}\n--- broker stderr ---\n{self._tail(err)}") from None
        raise AssertionError("unreachable")

    def _wait_banner(self, proc: subprocess.Popen, out: Path, err: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = out.read_text(errors="replace")
            if "\n" in text:
                line = text.splitlines()[0]
                m = _BANNER.search(line)
                if not m:
                    self._reap(proc)
                    raise BrokerStartError(f"unexpected first stdout line: {line!r}")
                self.banner = line
                self.advertised = f"{m['host']}:{m['port']}"
                c = _CLUSTER.search(line)
                self.cluster_id = c["cluster"] if c else None
                self.port = int(m["port"])
                return
            if proc.poll() is not None:
                raise BrokerStartError(f"broker exited with code {proc.returncode} before printing its banner")
            time.sleep(0.02)
        self._reap(proc)
        raise BrokerStartError(f"no banner on stdout within {timeout}s")

    @staticmethod
    def _reap(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def bootstrap(self) -> str:
        assert self.advertised, "broker not started"
        return self.advertised

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code. Fails the test if it does not exit."""
        assert self.proc is not None, "broker not started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail(f"broker did not exit within {timeout}s of SIGTERM")
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the data dir can tell."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, clean: bool = True, **kwargs) -> "Broker":
        if clean:
            if self.running:
                self.stop()
        else:
            self.kill()
        return self.start(**kwargs)

    def cleanup(self) -> None:
        self.kill()

    # ------------------------------------------------------------ diagnostics

    @staticmethod
    def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"<cannot read {path}: {e}>"

    def stderr_text(self, start: int | None = None) -> str:
        """All stderr of the `start`-th start (1-based; default: the last one)."""
        if not self.stderr_paths:
            return ""
        path = self.stderr_paths[-1] if start is None else self.stderr_paths[start - 1]
        return path.read_text(errors="replace")

    def stderr_tails(self) -> str:
        parts = []
        for i, p in enumerate(self.stderr_paths, 1):
            parts.append(f"--- {p.name} (start {i}) ---\n{self._tail(p)}")
        return "\n".join(parts)


# ---------------------------------------------------------------- fixtures


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


class BrokerFactory:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.brokers: list[Broker] = []

    def __call__(self, name: str = "broker", host: str = "127.0.0.1") -> Broker:
        b = Broker(self.tmp_path / f"{name}-data", self.tmp_path / f"{name}-logs", host=host)
        self.brokers.append(b)
        return b


@pytest.fixture
def broker_factory(request, tmp_path):
    """Makes Broker objects (not started) with their own data dirs."""
    factory = BrokerFactory(tmp_path)
    yield factory
    for b in factory.brokers:
        b.cleanup()
    failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                 for w in ("setup", "call"))
    if failed:
        for b in factory.brokers:
            if b.stderr_paths:
                print(f"\n===== broker stderr tail ({b.data_dir}) =====\n{b.stderr_tails()}")


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A started broker on 127.0.0.1 with an OS-chosen port."""
    return broker_factory().start()


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


@pytest.fixture
def broker_9092(broker_factory) -> Broker:
    """A broker listening on localhost:9092, as the seed programs expect."""
    if port_in_use("127.0.0.1", 9092):
        pytest.fail("port 9092 on 127.0.0.1 is taken by another process; the seed programs connect to "
                    "localhost:9092 as written, so free that port to run tests/python/test_seeds.py")
    b = broker_factory(host="localhost")
    b.start(port=9092)
    return b
