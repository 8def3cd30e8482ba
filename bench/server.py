"""`python -m bench.server [--profile FILE]`: the embedded AWS the benchmarks run against.

LocalAWS (moto on 127.0.0.1 plus pocctl's pollers, executor and API Gateway data plane), with one
more WSGI middleware, outermost: it records every AWS API request (who sent it, service,
operation, mutating or not — counted on the server, like tests/support/__init__.py CallRecorder) and
answers a few control requests under /__bench/. Prints {"endpoint": URL} on its first stdout line
and runs until SIGTERM.

With --profile, every thread gets its own cProfile (CPU time), and the merged profile is written
to FILE when the server stops.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bench.common import BENCH_UA, REFERENCE_UA, use_fake_aws

READ_PREFIXES = ("Get", "List", "Describe", "Head")
# REST path words kept when naming an operation; any other segment is an ID or a name.
_PATH_WORDS = {
    "restapis",
    "resources",
    "methods",
    "integration",
    "responses",
    "stages",
    "deployments",
    "models",
    "requestvalidators",
    "functions",
    "event-source-mappings",
    "configuration",
    "code",
    "invocations",
    "tags",
    "policy",
}

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _tag(user_agent: str) -> str:
    if REFERENCE_UA in user_agent:
        return "reference"
    if BENCH_UA in user_agent:
        return "bench"
    if "pocctl" in user_agent:  # pocctl/aws.py: user_agent_extra="pocctl"
        return "pocctl"
    return "engine"  # the embedded AWS's pollers, log shipper, gateway, Lambda handlers


def _service(authorization: str) -> str:
    # "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ..."
    _, _, rest = authorization.partition("Credential=")
    parts = rest.split(",", 1)[0].split("/")
    return parts[3] if len(parts) >= 5 else "?"


_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # Lambda's "/2015-03-31/..."


def _rest_op(method: str, path: str) -> str:
    segments = [
        s if s in _PATH_WORDS or _API_VERSION.match(s) else "*" for s in path.split("/") if s
    ]
    return f"{method} /" + "/".join(segments)


class Recorder:
    """WSGI middleware: records each AWS API request with its HTTP status. ``control_step``
    answers /__bench/ (a step of the embedded AWS's request pipeline, before its signature
    check: the bench's control requests are not AWS API calls)."""

    def __init__(self, control: Callable[[str, str], Any]) -> None:
        self.calls: list[tuple[str, str, str, bool, int]] = []
        self._lock = threading.Lock()
        self._control = control

    def control_step(self, request: Any) -> Any:
        from pocctl.local.server import Answer

        environ = request.environ
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/__bench/"):
            return None
        try:
            out, status = json.dumps(self._control(request.op.method, path)).encode(), 200
        except Exception as exc:  # the bench process shows it
            out, status = json.dumps({"error": repr(exc)}).encode(), 500
        return Answer(status, out, [("Content-Type", "application/json")])

    def wrap(self, app: App) -> App:
        def middleware(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            method = environ.get("REQUEST_METHOD", "GET")
            if "/_user_request_" in path:  # the REST API's data plane: an order, not an API call
                key: tuple[str, str, str, bool] = ("dataplane", "execute-api", method, True)
            else:
                key = self._classify(environ, method, path)

            def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
                with self._lock:
                    self.calls.append((*key, int(status[:3])))
                return start_response(status, headers, exc_info)

            return app(environ, recording)

        return middleware

    def _classify(
        self, environ: dict[str, Any], method: str, path: str
    ) -> tuple[str, str, str, bool]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        op = target.rsplit(".", 1)[-1] if target else ""
        if not op and method == "POST" and "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            # Query protocol (IAM, SNS, STS): the operation is in the body; put it back after.
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            op = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        if op:
            mutating = not op.startswith(READ_PREFIXES)
        else:  # REST protocols (Lambda, API Gateway): the verb says it
            op = _rest_op(method, path)
            mutating = method not in ("GET", "HEAD")
        return (
            _tag(environ.get("HTTP_USER_AGENT", "")),
            _service(environ.get("HTTP_AUTHORIZATION", "")),
            op,
            mutating,
        )

    def snapshot(self, clear: bool = False) -> list[tuple[str, str, str, bool, int]]:
        with self._lock:
            out = list(self.calls)
            if clear:
                self.calls.clear()
            return out


def _workers_cpu() -> float:
    """CPU seconds of this process's children: reaped ones plus live ones (Linux /proc)."""
    t = os.times()
    total = t.children_user + t.children_system
    me = str(os.getpid())
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return total
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if fields[1] == me:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _rss() -> dict[str, float]:
    """This process's resident memory now (VmRSS) and at its peak (VmHWM), in MiB (Linux)."""
    out = {"now": 0.0, "peak": 0.0}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key = "now" if line.startswith("VmRSS") else "peak"
                    out[key] = int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return out


class GcPauses:
    """Time spent in the garbage collector, per generation: a full collection walks every live
    object, so its pauses grow with what the backends hold (items, records, log events)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def install(self) -> None:
        import gc

        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        gen = info["generation"]
        pause = time.perf_counter() - self._started
        self.count[gen] += 1
        self.total[gen] += pause
        self.longest[gen] = max(self.longest[gen], pause)

    def snapshot(self) -> dict[str, list[float]]:
        return {"count": list(self.count), "total": list(self.total), "longest": list(self.longest)}


class ThreadProfiles:
    """One cProfile per thread, measuring that thread's CPU time (not wall time, so waiting on
    a socket or a lock costs nothing and the numbers say where the CPU of the GIL went).

    Each thread's profile is merged when the thread ends: the server starts a thread per
    request, and keeping thousands of profiles to merge at exit would take minutes.
    """

    def __init__(self) -> None:
        self.stats: Any = None  # pstats.Stats, merged so far
        self._lock = threading.Lock()

    def install(self) -> None:
        import pstats

        # Thread._bootstrap_inner runs every thread's body, whatever its class overrides.
        original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
        profiles = self

        def bootstrap_inner(thread: threading.Thread) -> None:
            prof = cProfile.Profile(time.thread_time)
            prof.enable()
            try:
                original(thread)
            finally:
                prof.disable()
                prof.create_stats()
                if prof.stats:  # type: ignore[attr-defined]
                    with profiles._lock:
                        if profiles.stats is None:
                            profiles.stats = pstats.Stats(prof)
                        else:
                            profiles.stats.add(prof)

        threading.Thread._bootstrap_inner = bootstrap_inner  # type: ignore[attr-defined]

    def restart(self) -> None:
        """Forget what has been merged so far (the stack's set-up), to profile what follows.

        Threads still running (the pollers) keep what they measured before: a little set-up.
        """
        with self._lock:
            self.stats = None

    def dump(self, path: Path) -> None:
        """Write what the threads that have ended so far measured."""
        with self._lock:
            if self.stats is not None:
                self.stats.dump_stats(str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--profile", type=Path, help="write a merged cProfile here on exit")
    args = parser.parse_args(argv)
    use_fake_aws()
    # pocctl.local's own warnings and the server's "request failed" lines (INFO) go to the log.
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("pocctl").setLevel(logging.INFO)

    gc_pauses = GcPauses()
    gc_pauses.install()
    profiles = ThreadProfiles() if args.profile else None
    if profiles is not None:
        profiles.install()

    from pocctl.local.runtime import LocalAWS

    holder: dict[str, Any] = {}

    def control(method: str, path: str) -> Any:
        aws: LocalAWS = holder["aws"]
        if path == "/__bench/calls" and method == "GET":
            return {"calls": recorder.snapshot()}
        if path == "/__bench/calls/clear" and method == "POST":
            recorder.snapshot(clear=True)
            return {}
        if path == "/__bench/reset" and method == "POST":
            aws.reset()
            recorder.snapshot(clear=True)
            return {}
        if path == "/__bench/cpu" and method == "GET":
            return {"server": time.process_time(), "workers": _workers_cpu()}
        if path == "/__bench/profile/restart" and method == "POST" and profiles is not None:
            profiles.restart()
            return {}
        if path == "/__bench/rss" and method == "GET":
            return _rss()
        if path == "/__bench/gc" and method == "GET":
            return gc_pauses.snapshot()
        if path == "/__bench/memory-returns" and method == "GET":
            return {"returns": aws.server.memory.returns}
        if path == "/__bench/ping":
            return {}
        raise ValueError(f"unknown control request {method} {path}")

    recorder = Recorder(control)
    # Handler output and poller messages go to stderr (the bench keeps it in a log file).
    aws = LocalAWS(port=0, log=lambda line: print(line, file=sys.stderr, flush=True))
    # The recorder goes outermost, so it sees every request; EmbeddedAWS applies the list in order
    # at start() and LocalAWS has no public hook for one more middleware.
    aws.server._middleware.append(recorder.wrap)
    aws.server.pipeline.insert("bench-control", recorder.control_step, before="signature")
    holder["aws"] = aws
    aws.start()
    print(json.dumps({"endpoint": aws.endpoint_url}), flush=True)
    aws.serve_forever()  # until SIGTERM; stops pollers, workers and the server
    if profiles is not None:
        profiles.dump(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
