"""Shared by the benchmarks: fake AWS environment, the embedded-AWS server process, deadline-bound
waits, statistics and the Markdown the results are written as."""

from __future__ import annotations

import http.client
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"

# The same as FAKE_ENV in tests/support (the bench does not import the test suite): never a real
# key, profile or config file, whatever the developer's shell has.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_COLOR": "1",
}

# User-Agent suffixes that tell, on the server, whose call it was: pocctl's clients add "pocctl"
# (pocctl/aws.py), the reference adds REFERENCE_UA; the embedded AWS's own pollers add nothing.
REFERENCE_UA = "bench-reference"
BENCH_UA = "bench-client"


def use_fake_aws() -> None:
    """Point this process at fake credentials only; call before any boto3 client is made."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[key]
    os.environ.update(FAKE_ENV)
    # Loopback traffic must never go through a proxy a developer's shell may set.
    for key in ("NO_PROXY", "no_proxy"):
        have = os.environ.get(key, "")
        os.environ[key] = ",".join(p for p in (have, "127.0.0.1,localhost") if p)


def child_env(endpoint: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a subprocess: this one's (already faked) plus the loopback endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_ENV)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(extra)
    return env


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host != "127.0.0.1":
        raise RuntimeError(f"the benchmarks only talk to 127.0.0.1, not {host!r} ({url})")


# -- waiting and statistics -------------------------------------------------------------------


def wait_until(
    condition: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``condition`` until it is truthy; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: wait() is an interruptible, bounded pause
    result = condition()
    while not result:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what or condition}")
        pause.wait(interval)
        result = condition()
    return result


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def pct(values: Sequence[float], p: int) -> float:
    """The p-th percentile (inclusive method, as pocctl.orders computes it)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    return float(statistics.quantiles(ordered, n=100, method="inclusive")[p - 1])


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# -- the server process -----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One AWS API request as the server saw it."""

    tag: str  # "pocctl", "reference", "bench", "dataplane" (an order POSTed to the REST API)
    # or "engine" (what the embedded AWS calls itself: pollers, handlers, gateway, log shipper)
    service: str
    op: str
    mutating: bool
    status: int


@dataclass
class Counts:
    """API calls of one run, by operation ("service.Operation"; REST ones as "VERB /path")."""

    mutating_ops: dict[str, int] = field(default_factory=dict)
    read_ops: dict[str, int] = field(default_factory=dict)

    @property
    def mutating(self) -> int:
        return sum(self.mutating_ops.values())

    @property
    def reads(self) -> int:
        return sum(self.read_ops.values())

    @property
    def total(self) -> int:
        return self.mutating + self.reads

    @classmethod
    def of(cls, calls: Iterable[Call], tag: str) -> Counts:
        out = cls()
        for c in calls:
            if c.tag == tag:
                ops = out.mutating_ops if c.mutating else out.read_ops
                key = f"{c.service}.{c.op}"
                ops[key] = ops.get(key, 0) + 1
        return out


def _discard(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


class Server:
    """`python -m bench.server` in its own process: LocalAWS (moto on 127.0.0.1, pocctl's
    pollers, executor and API Gateway) plus a call recorder and a few control endpoints.

    A separate process so that the load generators and pocctl's own CLI code do not share a GIL
    with the server: as with `pocctl local` in one terminal and pocctl in another.
    """

    def __init__(self, proc: subprocess.Popen[bytes], endpoint: str, log_path: Path) -> None:
        self.proc = proc
        self.endpoint = endpoint
        self.log_path = log_path
        self._discarder: threading.Thread | None = None
        parts = urlsplit(endpoint)
        self._host, self._port = str(parts.hostname), int(parts.port or 80)

    @classmethod
    def start(cls, workdir: Path, *, profile: Path | None = None, timeout: float = 60.0) -> Server:
        log_path = workdir / f"server-{time.monotonic_ns()}.log"
        argv = [sys.executable, "-m", "bench.server"]
        if profile is not None:
            argv += ["--profile", str(profile)]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(  # noqa: S603 (our own module)
                argv, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=log
            )
        assert proc.stdout is not None
        # The first stdout line is {"endpoint": ...}; read it with a deadline, not a blocking read.
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                proc.kill()
                proc.wait(timeout=10)
                raise RuntimeError(f"bench.server did not start; see {log_path}")
            if sel.select(timeout=left):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                line += chunk
        sel.close()
        # Nothing else should come on stdout, but a full pipe would block the server: drain it.
        discarder = threading.Thread(target=_discard, args=(proc.stdout.fileno(),), daemon=True)
        discarder.start()
        endpoint = json.loads(line.split(b"\n", 1)[0])["endpoint"]
        check_loopback(endpoint)
        server = cls(proc, endpoint, log_path)
        server._discarder = discarder
        return server

    def _request(self, method: str, path: str, timeout: float = 60.0) -> Any:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {body[:300]!r}")
        return json.loads(body) if body else None

    def calls(self) -> list[Call]:
        return [Call(*c) for c in self._request("GET", "/__bench/calls")["calls"]]

    def clear_calls(self) -> None:
        self._request("POST", "/__bench/calls/clear")

    def reset(self) -> None:
        """An empty account: moto reset, pollers paused and resumed, warm workers killed."""
        self._request("POST", "/__bench/reset")

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: the server process, and the Lambda workers it started."""
        return dict(self._request("GET", "/__bench/cpu"))

    def gc(self) -> dict[str, list[float]]:
        """The server's garbage collections so far, per generation: count, total and longest
        pause in seconds."""
        return dict(self._request("GET", "/__bench/gc"))

    def memory_returns(self) -> int:
        """How many times the server has given memory back after deletions."""
        return int(self._request("GET", "/__bench/memory-returns")["returns"])

    def restart_profile(self) -> None:
        """A server started with a profile: profile only what comes next."""
        self._request("POST", "/__bench/profile/restart")

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # LocalAWS.serve_forever stops cleanly on it
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._discarder is not None:
            self._discarder.join(timeout=5)  # EOF once the server has exited
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- running the benchmarks ---------------------------------------------------------------------


@dataclass
class Bench:
    """What every benchmark gets: the server, the run mode and a scratch directory."""

    server: Server
    quick: bool
    workdir: Path
    log: Callable[[str], None]

    def runs(self, full: int, quick: int) -> int:
        return quick if self.quick else full


# The stage throttle raised to AWS's account-level default. With the lab's 50 requests/s
# (burst 100), API Gateway answers 429 to the rest of a spike, on AWS as in the embedded AWS:
# the load benchmarks would measure that throttle, not the pipeline. A real load test raises it.
LOAD_TEST_CONFIG = "api:\n  throttling_rate_limit: 10000\n  throttling_burst_limit: 5000\n"


def new_app(endpoint: str, state: Path, config: str | None = None) -> Any:
    """A pocctl App for in-process runs (as `pocctl demo` makes one): lab defaults (no
    config.yaml beside ``state``, unless ``config`` is its text), the bundled handlers, the
    given endpoint, quiet output."""
    from pocctl.cli.app import App, Options

    check_loopback(endpoint)
    if config is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
        (state.parent / "config.yaml").write_text(config, encoding="utf-8")
    return App(
        Options(
            config=state.parent / "config.yaml",
            state=state,
            endpoint_url=endpoint,
            local=True,  # dummy credentials and us-east-1, as `pocctl --local`
            quiet=True,
        )
    )


# -- Markdown ---------------------------------------------------------------------------------


@dataclass
class Section:
    name: str
    title: str
    lines: list[str] = field(default_factory=list)
    goals: list[tuple[str, str, bool]] = field(default_factory=list)  # (goal, measured, met)

    def goal(self, what: str, measured: str, ok: bool) -> bool:
        """Record a goal for the summary at the top of the file; returns ``ok``."""
        self.goals.append((what, measured, ok))
        return ok

    def para(self, text: str) -> None:
        self.lines += [text, ""]

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        self.lines.append("| " + " | ".join(headers) + " |")
        self.lines.append("|" + "|".join("---" for _ in headers) + "|")
        for row in rows:
            self.lines.append("| " + " | ".join(str(c) for c in row) + " |")
        self.lines.append("")

    def markdown(self) -> str:
        return "\n".join([f"## {self.title}", "", *self.lines]).rstrip() + "\n"


def secs(v: float) -> str:
    return f"{v:.3f} s" if v < 10 else f"{v:.1f} s"


def ms(v: float | None) -> str:
    return "—" if v is None else f"{v * 1000:.0f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "—"


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"
